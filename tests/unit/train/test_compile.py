"""``hardware.compile=true`` (torch.compile) computes what the eager model computes (issue 6).

Two sessions are built by ``build_session`` from the same config but ``hardware.compile``, then
take the same updates through ``train_update``: the logits, per-update losses and gradient
norms, and the weights afterwards must agree. Dropout is 0, so both runs are deterministic.
The default tests swap in the ``aot_eager`` backend (dynamo's graph capture and AOT autograd,
no code generation, so no C++ compiler is needed) and check that batches of new shapes do not
compile again; the slow test runs the real default backend, inductor, which compiles C++ on CPU.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch import nn
from torch._dynamo.eval_frame import OptimizedModule
from torch._dynamo.testing import CompileCounterWithBackend

from nmt_preln.config import NormPosition, TrainConfig
from nmt_preln.data.collate import Batch, collate_indices
from nmt_preln.data.dataset import LanguagePairDataset
from nmt_preln.train.batch_plan import batch_by_size
from nmt_preln.train.distributed import DistributedContext
from nmt_preln.train.session import Session, build_session
from nmt_preln.train.trainer import PlannedUpdate, train_update

pytestmark = pytest.mark.usefixtures("one_thread")
MakeConfig = Callable[..., TrainConfig]
PLACEMENTS = [NormPosition.pre, NormPosition.post]
UPDATES = 3
# What inductor's CPU code generation calls (torch._inductor.config.cpp.cxx).
CXX = shutil.which(os.environ.get("CXX", "g++"))


@pytest.fixture(autouse=True)
def fresh_dynamo() -> Iterator[None]:
    """Each test compiles from scratch (dynamo caches code objects across tests)."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _config(make_config: MakeConfig, norm: NormPosition, *, compile: bool) -> TrainConfig:
    arch = {"d_model": 32, "ffn_dim": 64, "num_heads": 4, "dropout": 0.0, "norm_position": norm}
    return make_config(
        save=f"{norm.value}-{'compiled' if compile else 'eager'}",
        arch=arch,
        hardware={"compile": compile},
        log_interval=10**6,  # keep every update's statistics in metrics.pending
    )


def _batches(cfg: TrainConfig, count: int) -> list[Batch]:
    """The first ``count`` training batches with pairwise different (B, S, T) shapes."""
    data = LanguagePairDataset(cfg.data.path, "train")
    order = batch_by_size(
        data.src_sizes, data.tgt_sizes, max_tokens=cfg.data.max_tokens, max_sentences=0,
        seed=cfg.seed, epoch=1,
    )  # fmt: skip
    batches: dict[tuple[int, ...], Batch] = {}
    for indices in order:
        batch = collate_indices(data, indices)  # type: ignore[arg-type]
        assert batch.prev_output_tokens is not None
        shape = (*batch.src_tokens.shape, batch.prev_output_tokens.size(1))
        batches.setdefault(shape, batch)
    assert len(batches) >= count
    return list(batches.values())[:count]


def _run_updates(session: Session, batches: list[Batch]) -> list[tuple[float, float]]:
    """``train_update`` on each batch; the (loss_sum, gnorm) of every update."""
    for batch in batches:
        planned = PlannedUpdate(batches=[], ntokens=batch.ntokens, nsentences=len(batch), end=0)
        assert train_update(session, [batch], planned)
    stats = [(float(s.loss_sum), float(s.gnorm)) for s in session.metrics.pending]
    session.metrics.pending.clear()
    session.metrics.close()
    return stats


def _assert_same_training(
    make_config: MakeConfig,
    norm: NormPosition,
    *,
    rtol: float,
    atol: float,
    counter: CompileCounterWithBackend | None = None,
) -> None:
    """Eager and compiled sessions give the same logits, losses, gradient norms and weights.

    With ``counter`` (the backend), also check that only the first call compiled: the other
    batches, of other (batch, length) shapes, reuse its graph.
    """
    eager_cfg = _config(make_config, norm, compile=False)
    batches = _batches(eager_cfg, UPDATES)
    eager = build_session(eager_cfg, DistributedContext(), "cpu")
    compiled = build_session(_config(make_config, norm, compile=True), DistributedContext(), "cpu")
    assert eager.net is eager.model
    assert isinstance(compiled.net, OptimizedModule) and compiled.net._orig_mod is compiled.model

    first = batches[0]  # with autograd on, as training calls it (no_grad would compile again)
    torch.testing.assert_close(
        compiled.net(first.src_tokens, first.prev_output_tokens).detach(),
        eager.model(first.src_tokens, first.prev_output_tokens).detach(),
        rtol=rtol,
        atol=atol,
    )  # (B, T, V)
    compiles = None if counter is None else counter.frame_count
    eager_stats = _run_updates(eager, batches)
    compiled_stats = _run_updates(compiled, batches)
    assert len(compiled_stats) == UPDATES
    assert counter is None or counter.frame_count == compiles
    torch.testing.assert_close(compiled_stats, eager_stats, rtol=rtol, atol=atol)
    compiled_weights = dict(compiled.model.named_parameters())
    for name, param in eager.model.named_parameters():
        # The key bias cannot change the attention (softmax ignores a shift shared by all
        # keys): its gradient is rounding noise, which Adam scales up to steps of about lr.
        noise = name.endswith("k_proj.bias")
        bound = {"rtol": 0.0, "atol": 2 * UPDATES * eager_cfg.optim.lr} if noise else {}
        torch.testing.assert_close(
            compiled_weights[name], param, **({"rtol": rtol, "atol": atol} | bound), msg=name
        )


@pytest.mark.parametrize("norm", PLACEMENTS, ids=lambda n: n.value)
def test_compiled_session_trains_like_eager(
    make_config: MakeConfig, norm: NormPosition, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_compile = torch.compile
    calls: list[dict[str, Any]] = []
    counter = CompileCounterWithBackend("aot_eager")

    def aot_eager_compile(model: nn.Module, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real_compile(model, **{**kwargs, "backend": counter})

    monkeypatch.setattr(torch, "compile", aot_eager_compile)
    _assert_same_training(make_config, norm, rtol=1e-5, atol=1e-6, counter=counter)
    assert calls == [{"dynamic": True}]  # session.py's settings


@pytest.mark.slow  # 15-30 s per placement with a cold inductor cache
@pytest.mark.skipif(CXX is None, reason="inductor needs a C++ compiler ($CXX or g++)")
@pytest.mark.parametrize("norm", PLACEMENTS, ids=lambda n: n.value)
def test_compiled_session_trains_like_eager_with_inductor(
    make_config: MakeConfig, norm: NormPosition
) -> None:
    # Inductor fuses and reorders floating-point operations: equal up to rounding.
    _assert_same_training(make_config, norm, rtol=1e-4, atol=1e-5)
