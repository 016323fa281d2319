"""Two gloo ranks on the CPU: one DDP update equals one single-process update on the same data.

Each rank is a fresh ``python`` process with torchrun's environment variables, running
``train()`` exactly as ``nmt-train`` would under ``torchrun --nproc-per-node 2``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers.ranks import rank_envs
from trainer_helpers import read_log, tiny_config

from nmt_preln.checkpoint.store import LAST, load_checkpoint
from nmt_preln.config import Optimizer
from nmt_preln.train.trainer import train

pytestmark = pytest.mark.usefixtures("one_thread")
_RANK_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    sys.path.insert(0, {test_dir!r})
    import torch
    torch.set_num_threads(1)
    from trainer_helpers import tiny_config
    from nmt_preln.config import Optimizer
    from nmt_preln.errors import UserError
    from nmt_preln.train import trainer

    args = json.loads(sys.argv[1])
    if os.environ.get("DIE_ON_RANK") == os.environ["RANK"]:
        def die(*a, **k):
            os._exit(3)
        trainer.label_smoothed_cross_entropy = die
    overrides = args["overrides"]
    overrides["optim"] = {{"name": Optimizer(args["optim"]), "lr": 0.5}}
    cfg = tiny_config(args["data"], Path(args["save"]), **overrides)
    try:
        trainer.train(cfg)
    except UserError as err:
        print(f"nmt-train: error: {{err}}", file=sys.stderr)
        sys.exit(1)
    """
)
# One update of plain SGD: the step is the gradient itself, so the normalization must match.
_SHARED: dict[str, Any] = {"max_update": 1, "arch": {"dropout": 0.0}}


def _launch(
    tmp_path: Path, data_dir: Path, save: Path, *, extra_env: dict[str, str] | None = None
) -> list[subprocess.Popen[str]]:
    script = tmp_path / "rank.py"
    script.write_text(_RANK_SCRIPT.format(test_dir=str(Path(__file__).parent)), encoding="utf-8")
    args = json.dumps(
        {"data": str(data_dir), "save": str(save), "optim": "sgd", "overrides": dict(_SHARED)}
    )
    procs = []
    for rank_env in rank_envs(2):
        env = {**os.environ, **rank_env, **(extra_env or {})}
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return procs


def _wait(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    results = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
        results.append((proc.returncode, out + err))
    return results


def test_two_ranks_make_the_same_update_as_one_process(tmp_path: Path, data_dir: Path) -> None:
    ddp_dir = tmp_path / "ddp"
    procs = _launch(tmp_path, data_dir, ddp_dir)
    # Meanwhile: one process, both micro-batches in one update (ranks 0 and 1 take batches 0, 1).
    single = tiny_config(
        data_dir, tmp_path / "single", update_freq=2, optim={"name": Optimizer.sgd, "lr": 0.5},
        **_SHARED,
    )  # fmt: skip
    train(single)
    for code, output in _wait(procs):
        assert code == 0, output[-2000:]

    ddp_state = load_checkpoint(ddp_dir / LAST)
    single_state = load_checkpoint(tmp_path / "single" / LAST)
    assert not (ddp_dir / "checkpoint_last.pt.rank1").exists()
    for name, weight in single_state["model"].items():
        torch.testing.assert_close(ddp_state["model"][name], weight, atol=1e-6, rtol=1e-5)
    assert len(ddp_state["rng_ranks"]) == 2
    (ddp_log,), (single_log,) = read_log(ddp_dir), read_log(tmp_path / "single")
    assert ddp_log["ntokens"] == single_log["ntokens"]
    assert abs(ddp_log["loss"] - single_log["loss"]) < 1e-5
    ddp_valid, single_valid = (
        read_log(ddp_dir, "valid")[-1],
        read_log(tmp_path / "single", "valid")[-1],
    )
    assert abs(ddp_valid["loss"] - single_valid["loss"]) < 1e-5


def test_a_dying_rank_makes_the_other_fail_with_a_clear_error(
    tmp_path: Path, data_dir: Path
) -> None:
    procs = _launch(tmp_path, data_dir, tmp_path / "ddp", extra_env={"DIE_ON_RANK": "1"})
    (code0, output0), (code1, _) = _wait(procs)
    assert code1 == 3
    assert code0 == 1, output0[-2000:]
    assert "nmt-train: error: rank 0: another rank stopped" in output0
    assert "Traceback" not in output0
