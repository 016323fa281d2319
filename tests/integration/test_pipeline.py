"""End to end, as a user types it: toy corpus -> nmt-preprocess -> nmt-train -> nmt-generate."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers.scripts import run_script


def run(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_script(*args, cwd=cwd, stdin=stdin, timeout=600)  # the training takes a while


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("pipeline")
    run(
        "nmt-toy-corpus",
        "--out",
        "raw",
        "--train",
        "2000",
        "--valid",
        "50",
        "--test",
        "50",
        cwd=work,
    )
    run(
        "nmt-preprocess",
        "--source-lang",
        "de",
        "--target-lang",
        "en",
        "--trainpref",
        "raw/train",
        "--validpref",
        "raw/valid",
        "--testpref",
        "raw/test",
        "--destdir",
        "data-bin",
        "--joined-dictionary",
        "--spm-vocab-size",
        "300",
        cwd=work,
    )
    run(
        "nmt-train",
        "+arch=preln_tiny",
        "data.path=data-bin",
        "schedule=constant",
        "optim.lr=3e-3",
        "max_update=30",
        "data.max_tokens=1024",
        "log_interval=10",
        "checkpoint.save_dir=ckpt",
        "progress_bar=false",
        "hardware=cpu",
        cwd=work,
    )
    return work


def test_training_writes_checkpoints(trained: Path) -> None:
    assert (trained / "ckpt" / "checkpoint_last.pt").is_file()
    assert (trained / "ckpt" / "checkpoint_best.pt").is_file()


def test_generate_scores_the_test_set(trained: Path) -> None:
    proc = run(
        "nmt-generate",
        "data-bin",
        "--path",
        "ckpt/checkpoint_last.pt",
        "--beam",
        "2",
        "--max-len-b",
        "40",
        cwd=trained,
    )
    hyps = [ln for ln in proc.stdout.splitlines() if ln.startswith("D-")]
    assert len(hyps) == 50
    assert "BLEU" in proc.stdout + proc.stderr


def test_generate_translates_stdin_in_order(trained: Path) -> None:
    lines = (trained / "raw" / "test.de").read_text(encoding="utf-8").splitlines()[:5]
    proc = run(
        "nmt-generate",
        "data-bin",
        "--path",
        "ckpt/checkpoint_last.pt",
        "--input",
        "-",
        "--output-format",
        "plain",
        "--beam",
        "2",
        "--max-len-b",
        "40",
        cwd=trained,
        stdin="\n".join(lines) + "\n",
    )
    assert len(proc.stdout.splitlines()) == 5
