"""nmt-analyze sweep: choosing experiments, skip/resume, failures, figures (fake nmt-train)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nmt_preln.analysis import sweep
from nmt_preln.analysis.sweep import RESULT, expand_experiments, read_result, run_sweep
from nmt_preln.errors import UserError
from nmt_preln.tools_config import SweepConfig

ADAM = "cpu/postln_adam_*"
TWO = "cpu/postln_adam_5e-4_warmup500,cpu/preln_adam_5e-4_stepdecay"


class FakeTrain:
    """Stands in for ``subprocess.run([... nmt_preln.cli.train ...])``: writes a train log."""

    def __init__(self, *, code: int = 0, epochs: int = 3, error: str | None = None) -> None:
        self.code, self.epochs, self.error = code, epochs, error
        self.calls: list[str] = []

    def __call__(
        self, command: list[str], *, stdout: Any, **_: Any
    ) -> subprocess.CompletedProcess[str]:
        save_dir = next(a.split("=", 1)[1] for a in command if a.startswith("checkpoint.save_dir="))
        experiment = next(a.split("=", 1)[1] for a in command if a.startswith("+experiment="))
        self.calls.append(experiment)
        with open(os.path.join(save_dir, "train_log.jsonl"), "a", encoding="utf-8") as f:
            for epoch in range(1, self.epochs + 1):
                f.write(
                    json.dumps(
                        {"split": "train", "epoch": epoch, "update": 10 * epoch, "loss": 9.0}
                    )
                    + "\n"
                )
                point = {"epoch": epoch, "update": 10 * epoch, "loss": 8.0 / epoch}
                valid = {"split": "valid", **point, "nll": 7.0 / epoch, "bleu": 5.0 * epoch}
                f.write(json.dumps(valid) + "\n")
        if self.error:
            stdout.write(f"nmt-train: error: {self.error}\n")
        return subprocess.CompletedProcess(command, self.code)


def sweep_cfg(out: Path, experiments: str = TWO, **changes: Any) -> SweepConfig:
    return SweepConfig(experiments=experiments, out=str(out), name="fig", **changes)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTrain:
    fake = FakeTrain()
    monkeypatch.setattr(sweep.subprocess, "run", fake)
    return fake


def test_expand_experiments_globs_and_order() -> None:
    adam = expand_experiments(ADAM)
    assert len(adam) == 6 and all(a.startswith("cpu/postln_adam_") for a in adam)
    both = expand_experiments(
        "cpu/preln_adam_5e-4_stepdecay," + ADAM + ",cpu/preln_adam_5e-4_stepdecay"
    )
    assert both[0] == "cpu/preln_adam_5e-4_stepdecay" and len(both) == 7  # no repeats
    assert "cpu/_base" not in expand_experiments("cpu/*")  # shared bases only by name
    assert expand_experiments("cpu/_base") == ["cpu/_base"]


@pytest.mark.parametrize("spec", ["cpu/nope", "zzz/*", " , "])
def test_unknown_experiment_is_a_user_error(spec: str) -> None:
    with pytest.raises(UserError, match="--experiments"):
        expand_experiments(spec)


def test_sweep_trains_each_run_once_then_skips(fake: FakeTrain, tmp_path: Path) -> None:
    written = run_sweep(sweep_cfg(tmp_path), overrides=["data.path=/nonexistent"])
    assert fake.calls == TWO.split(",")
    assert [os.path.basename(p) for p in written] == ["fig.png", "fig.csv", "fig_results.csv"]
    result = read_result(str(tmp_path / "cpu" / "preln_adam_5e-4_stepdecay"))
    assert result is not None and result.status == "finished"
    assert (result.epochs, result.updates, result.best_valid_loss, result.last_valid_bleu) == (
        3,
        30,
        2.6667,
        15.0,
    )
    run_sweep(sweep_cfg(tmp_path), overrides=["data.path=/nonexistent"])
    assert len(fake.calls) == 2  # finished runs are skipped
    run_sweep(sweep_cfg(tmp_path, rerun=True), overrides=["data.path=/nonexistent"])
    assert len(fake.calls) == 4
    with open(tmp_path / "cpu" / "preln_adam_5e-4_stepdecay" / "train_log.jsonl") as f:
        assert sum('"valid"' in line for line in f) == 3  # --rerun started from scratch


def test_run_without_result_is_trained_again(fake: FakeTrain, tmp_path: Path) -> None:
    run_sweep(sweep_cfg(tmp_path), overrides=["data.path=d"])
    os.remove(tmp_path / "cpu" / "postln_adam_5e-4_warmup500" / RESULT)
    run_sweep(sweep_cfg(tmp_path), overrides=["data.path=d"])
    assert fake.calls == [*TWO.split(","), "cpu/postln_adam_5e-4_warmup500"]


def test_figure_and_csvs_hold_every_run(fake: FakeTrain, tmp_path: Path) -> None:
    run_sweep(sweep_cfg(tmp_path), overrides=["data.path=d"])
    with open(tmp_path / "fig.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["run"] for r in rows} == {"postln_adam_5e-4_warmup500", "preln_adam_5e-4_stepdecay"}
    assert len(rows) == 2 * 3 and rows[0].keys() >= {"epoch", "update", "loss", "bleu"}
    with open(tmp_path / "fig_results.csv", newline="") as f:
        results = list(csv.DictReader(f))
    assert [r["experiment"] for r in results] == TWO.split(",")
    with open(tmp_path / "fig.png", "rb") as f:
        assert f.read(4) == b"\x89PNG"
    os.remove(tmp_path / "fig.png")
    run_sweep(sweep_cfg(tmp_path, plot_only=True), overrides=["data.path=d"])
    assert (tmp_path / "fig.png").exists() and len(fake.calls) == 2


def test_failed_run_is_recorded_not_fatal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = FakeTrain(code=1, epochs=1, error="update 57: the weights are no longer finite")
    monkeypatch.setattr(sweep.subprocess, "run", fake)
    run_sweep(sweep_cfg(tmp_path), overrides=["data.path=d"])
    result = read_result(str(tmp_path / "cpu" / "postln_adam_5e-4_warmup500"))
    assert result is not None and result.status == "failed"
    assert result.message == "nmt-train: error: update 57: the weights are no longer finite"
    assert len(fake.calls) == 2  # the sweep went on


@pytest.mark.parametrize("code", [130, 143, -9])
def test_interrupted_run_stops_the_sweep_without_a_result(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, code: int
) -> None:
    monkeypatch.setattr(sweep.subprocess, "run", FakeTrain(code=code))
    with pytest.raises(UserError, match="interrupted"):
        run_sweep(sweep_cfg(tmp_path), overrides=["data.path=d"])
    assert read_result(str(tmp_path / "cpu" / "postln_adam_5e-4_warmup500")) is None


def test_bad_override_fails_before_training(fake: FakeTrain, tmp_path: Path) -> None:
    with pytest.raises(UserError):
        run_sweep(sweep_cfg(tmp_path), overrides=["data.path=d", "optim.nosuchkey=1"])
    assert fake.calls == []


def test_bad_checkpoint_choice(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--checkpoint"):
        sweep_cfg(tmp_path, checkpoint="middle").validate()


@pytest.mark.slow
def test_real_tiny_run_trains_decodes_and_plots(tiny_data: str, tmp_path: Path) -> None:
    """Through the real nmt-train child process and the generator (about 30 s on 2 cores)."""
    shrink = "arch.encoder_layers=1 arch.decoder_layers=1 arch.d_model=16 arch.ffn_dim=32"
    shrink += " arch.num_heads=2 max_epoch=2 data.max_tokens=512"
    cfg = sweep_cfg(tmp_path, experiments="cpu/preln_adam_5e-4_stepdecay", beam=2)
    run_sweep(cfg, overrides=[f"data.path={tiny_data}", *shrink.split()])
    result = read_result(str(tmp_path / "cpu" / "preln_adam_5e-4_stepdecay"))
    assert result is not None and result.status == "finished", result
    assert result.epochs == 2 and result.updates > 0 and result.checkpoint == "checkpoint_best.pt"
    assert set(result.bleu) == {"valid", "test"} and result.last_valid_bleu is not None
    with open(tmp_path / "fig.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 2  # one validation per epoch


def test_a_run_owned_by_a_live_sweep_is_left_alone(fake: FakeTrain, tmp_path: Path) -> None:
    busy = tmp_path / "cpu" / "postln_adam_5e-4_warmup500"
    busy.mkdir(parents=True)
    (busy / sweep.LOCK).write_text(str(os.getpid()))  # a live process holds it
    run_sweep(sweep_cfg(tmp_path), overrides=["data.path=d"])
    assert fake.calls == ["cpu/preln_adam_5e-4_stepdecay"]
    assert (busy / sweep.LOCK).exists() and read_result(str(busy)) is None
    with open(tmp_path / "fig_results.csv", newline="") as f:
        assert [r["experiment"] for r in csv.DictReader(f)] == ["cpu/preln_adam_5e-4_stepdecay"]


def test_a_stale_lock_is_taken_over(fake: FakeTrain, tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid no longer runs
    stale = tmp_path / "cpu" / "postln_adam_5e-4_warmup500"
    stale.mkdir(parents=True)
    (stale / sweep.LOCK).write_text(str(dead.pid))
    run_sweep(sweep_cfg(tmp_path), overrides=["data.path=d"])
    assert len(fake.calls) == 2 and not (stale / sweep.LOCK).exists()
    assert read_result(str(stale)) is not None
