"""Properties of the training loop on a tiny generated task (CPU, 16-dim models)."""

from __future__ import annotations

import io
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from trainer_helpers import read_log

from nmt_preln.checkpoint.store import LAST, load_checkpoint, load_model_from_checkpoint
from nmt_preln.config import Optimizer, Precision, TrainConfig
from nmt_preln.data.collate import collate_indices
from nmt_preln.data.dataset import LanguagePairDataset
from nmt_preln.errors import UserError
from nmt_preln.models.transformer import build_model
from nmt_preln.train import trainer
from nmt_preln.train.batch_plan import batch_by_size
from nmt_preln.train.distributed import DistributedContext
from nmt_preln.train.loss import label_smoothed_cross_entropy
from nmt_preln.train.metrics import TrainMetrics, UpdateStats, layer_grad_norms
from nmt_preln.train.session import seed_everything
from nmt_preln.train.trainer import train
from nmt_preln.train.validation import Validator

pytestmark = pytest.mark.usefixtures("one_thread")
MakeConfig = Callable[..., TrainConfig]
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \| "  # the local time, as fairseq's log lines
    r"epoch \d{3} \| update \d{6} \| loss \d+\.\d{3} \| nll \d+\.\d{3} \| ppl [\d.]+ \| "
    r"lr [\d.e-]+ \| gnorm \d+\.\d{3} \| tok/s \d+$"
)


def test_training_lowers_validation_loss_and_writes_everything(
    make_config: MakeConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = make_config(max_epoch=3)
    result = train(cfg)
    save_dir = Path(cfg.checkpoint.save_dir)

    valid = read_log(save_dir, "valid")
    assert [r["epoch"] for r in valid] == [1, 2, 3]
    assert valid[-1]["loss"] < valid[0]["loss"] - 0.3
    assert result["valid_loss"] == pytest.approx(valid[-1]["loss"])
    updates = [r["update"] for r in read_log(save_dir)]
    assert updates == list(range(1, int(result["num_updates"]) + 1))

    lines = capsys.readouterr().out.splitlines()
    assert any(LOG_LINE.match(line) for line in lines), lines[:3]
    names = set(os.listdir(save_dir))
    assert {"checkpoint1.pt", "checkpoint3.pt", "checkpoint_best.pt", LAST} <= names
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(save_dir / "tensorboard"))

    state = load_checkpoint(save_dir / LAST)
    required = {"format_version", "model", "optimizer", "scheduler", "scaler", "rng", "iterator"}
    required |= {"num_updates", "best_metric", "config", "src_dict", "tgt_dict", "spm_models"}
    assert required | {"source_lang", "target_lang"} <= set(state)
    assert state["num_updates"] == result["num_updates"]
    assert state["iterator"]["epoch"] == 3 and state["iterator"]["batch_index"] > 0
    assert state["config"]["arch"]["norm_position"] == "pre"
    assert (state["source_lang"], state["target_lang"], state["spm_models"]) == ("de", "en", {})
    data = LanguagePairDataset(cfg.data.path, "train")
    assert state["tgt_dict"] == data.tgt_dict.symbols
    model, _ = load_model_from_checkpoint(save_dir / "checkpoint_best.pt", device="cpu")
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_update_normalizes_by_all_target_tokens_of_the_update(make_config: MakeConfig) -> None:
    # Plain SGD makes the step proportional to the gradient, so any wrong normalization shows.
    cfg = make_config(
        update_freq=3,
        max_update=1,
        arch={"dropout": 0.0},
        optim={"name": Optimizer.sgd, "lr": 0.5},
    )
    train(cfg)
    trained = load_checkpoint(Path(cfg.checkpoint.save_dir) / LAST)["model"]

    data = LanguagePairDataset(cfg.data.path, "train")
    seed_everything(cfg.seed)
    model = build_model(cfg.arch, data.src_dict, data.tgt_dict)
    batches = batch_by_size(
        data.src_sizes, data.tgt_sizes, max_tokens=cfg.data.max_tokens, max_sentences=0,
        seed=cfg.seed, epoch=1,
    )[:3]  # fmt: skip
    total = torch.zeros(())
    ntokens = 0
    for indices in batches:
        batch = collate_indices(data, indices)  # type: ignore[arg-type]
        assert batch.target is not None
        logits = model(batch.src_tokens, batch.prev_output_tokens)
        loss, _ = label_smoothed_cross_entropy(logits, batch.target, epsilon=0.1, pad=1)
        total, ntokens = total + loss, ntokens + batch.ntokens
    (total / ntokens).backward()
    with torch.no_grad():
        for name, param in model.named_parameters():
            assert param.grad is not None
            expected = param - 0.5 * param.grad
            torch.testing.assert_close(trained[name], expected, atol=1e-6, rtol=1e-5)


def test_non_finite_losses_are_skipped_then_stop_training(
    make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def poisoned(*args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        loss, nll = label_smoothed_cross_entropy(*args, **kwargs)
        return loss * float("nan"), nll

    monkeypatch.setattr(trainer, "label_smoothed_cross_entropy", poisoned)
    cfg = make_config()
    with pytest.raises(UserError, match=r"update 1: .*non-finite.*lr too high"):
        train(cfg)
    skipped = [r for r in caplog.records if "non-finite" in r.getMessage()]
    assert len(skipped) == trainer.MAX_NONFINITE_UPDATES
    assert not (Path(cfg.checkpoint.save_dir) / LAST).exists()


def test_non_finite_weights_never_overwrite_a_good_checkpoint(
    make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    train(make_config(max_update=2))
    real_step = trainer._step

    def corrupting_step(s: Any, gnorm: torch.Tensor) -> bool:
        taken = real_step(s, gnorm)
        if s.progress.num_updates == 3:  # update 4, the last one, is followed by a save
            next(s.model.parameters()).data.fill_(float("nan"))
        return taken

    monkeypatch.setattr(trainer, "_step", corrupting_step)
    cfg = make_config(max_update=4)
    with pytest.raises(UserError, match="no longer finite"):
        train(cfg)
    state = load_checkpoint(Path(cfg.checkpoint.save_dir) / LAST)
    assert state["num_updates"] == 2
    assert all(torch.isfinite(w).all() for w in state["model"].values())


def test_sigterm_finishes_the_update_saves_and_exits_143(
    make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def signalling(*args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(1)
        if len(calls) == 3:  # during the forward of update 3
            os.kill(os.getpid(), signal.SIGTERM)
        return label_smoothed_cross_entropy(*args, **kwargs)

    monkeypatch.setattr(trainer, "label_smoothed_cross_entropy", signalling)
    before = signal.getsignal(signal.SIGTERM)
    cfg = make_config()
    with pytest.raises(SystemExit) as exit_info:
        train(cfg)
    assert exit_info.value.code == 143
    assert load_checkpoint(Path(cfg.checkpoint.save_dir) / LAST)["num_updates"] == 3
    assert signal.getsignal(signal.SIGTERM) == before


def test_patience_stops_after_validations_without_improvement(
    make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    losses = iter([5.0, 4.0, 4.5, 4.2, 3.0, 1.0])

    def fake_run(self: Validator, model: nn.Module) -> dict[str, float]:
        loss = next(losses)
        return {"loss": loss, "nll": loss, "ppl": 2**loss}

    monkeypatch.setattr(Validator, "run", fake_run)
    cfg = make_config(patience=2, validate_interval_updates=2, max_epoch=5)
    result = train(cfg)
    assert result["num_updates"] == 8  # validations at 2, 4 (best), 6, 8: two without gain
    assert result["best_metric"] == 4.0
    assert (Path(cfg.checkpoint.save_dir) / "checkpoint_best.pt").exists()


def test_stop_time_hours_counts_training_time_only(
    make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    def slow_run(self: Validator, model: nn.Module) -> dict[str, float]:
        time.sleep(0.15)  # validation time: must not count towards the limit
        return {"loss": 1.0, "nll": 1.0, "ppl": 2.0}

    monkeypatch.setattr(Validator, "run", slow_run)
    limit = 0.4  # seconds
    cfg = make_config(
        stop_time_hours=limit / 3600, validate_interval_updates=3, max_epoch=10_000, log_interval=1
    )
    result = train(cfg)
    updates, valid = read_log(cfg.checkpoint.save_dir), read_log(cfg.checkpoint.save_dir, "valid")
    assert valid[-1]["update"] == result["num_updates"] == updates[-1]["update"]  # validated last
    assert updates[-2]["train_wall"] < limit <= valid[-1]["train_wall"]  # stopped when reached
    assert len(valid) >= 2 and all(v["valid_seconds"] >= 0.15 for v in valid)
    paused = updates[-1]["wall"] - updates[-1]["train_wall"]
    assert paused >= 0.15 * (len(valid) - 1)  # every validation before the last was excluded
    assert [v["train_wall"] for v in valid] == sorted(v["train_wall"] for v in valid)


@pytest.mark.parametrize("precision", [Precision.bf16, Precision.fp16])
def test_half_precision_autocast_trains_on_cpu(
    make_config: MakeConfig, precision: Precision
) -> None:
    cfg = make_config(max_update=4, hardware={"precision": precision})
    result = train(cfg)
    records = read_log(cfg.checkpoint.save_dir)
    assert np.isfinite(result["valid_loss"])
    assert len(records) == 4 or precision == Precision.fp16  # fp16 may skip overflowing steps
    assert all(("loss_scale" in r) == (precision == Precision.fp16) for r in records)


def test_validation_bleu_and_bad_options(make_config: MakeConfig) -> None:
    result = train(make_config(max_update=2, validate_bleu=True))
    assert 0.0 <= result["valid_bleu"] <= 100.0
    with pytest.raises(UserError, match="best_metric=bleu needs validate_bleu"):
        make_config(checkpoint={"best_metric": "bleu"}).validate()
    with pytest.raises(UserError, match="update_freq"):
        make_config(update_freq=0).validate()


def test_layer_grad_norms_use_the_models_layer_names(make_config: MakeConfig) -> None:
    cfg = make_config()
    data = LanguagePairDataset(cfg.data.path, "train")
    model = build_model(cfg.arch, data.src_dict, data.tgt_dict)
    batch = collate_indices(data, np.arange(4))  # type: ignore[arg-type]
    model(batch.src_tokens, batch.prev_output_tokens).sum().backward()
    norms = layer_grad_norms(model)
    assert {"encoder.0.ffn.fc1", "decoder.0.cross_attn.q_proj"} <= set(norms)
    assert all(v > 0 for v in norms.values())

    class Plain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.norm = nn.Linear(3, 3), nn.LayerNorm(3)

    plain = Plain()
    plain.norm(plain.fc1(torch.ones(2, 3))).sum().backward()
    assert set(layer_grad_norms(plain)) == {"fc1"}


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_plain_lines_otherwise(tmp_path: Path) -> None:
    def run(stream: io.StringIO) -> str:
        metrics = TrainMetrics(
            DistributedContext(), save_dir=str(tmp_path), tensorboard_dir=None,
            progress_bar=True, stream=stream,
        )  # fmt: skip
        metrics.progress(epoch=1, done=1, total=2)
        one = torch.tensor(7.0)
        metrics.add(UpdateStats(update=1, epoch=1, loss_sum=one, nll_sum=one, ntokens=10,
                                nsentences=2, gnorm=one, lr=1e-3))  # fmt: skip
        metrics.flush()
        metrics.progress(epoch=1, done=2, total=2)
        metrics.close()
        return stream.getvalue()

    bar = run(_Terminal())
    assert "\r" in bar and "2/2" in bar and "update 000001" in bar
    plain = run(io.StringIO())
    assert "\r" not in plain and LOG_LINE.match(plain.splitlines()[0])
