"""nmt-train's command line as a user types it: fairseq flags, typos, --help, exit codes, data=toy.

Everything runs through the console script's ``main(argv)`` in-process (torch starts once).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers.corpus import WORDS, preprocess_dir, reversed_order, write_corpus
from nmt_preln.cli.train import main

from nmt_preln.config import TrainConfig
from nmt_preln.config_tree import settings
from nmt_preln.fairseq_flags import FLAGS

# A 16-wide 1+1-layer model, written the fairseq way.
TINY_FAIRSEQ = [
    "+arch=preln_tiny", "--encoder-layers", "1", "--decoder-layers", "1",
    "--encoder-embed-dim", "16", "--encoder-ffn-embed-dim", "32", "--encoder-attention-heads", "2",
    "--lr", "3e-3", "--lr-scheduler", "fixed", "--max-tokens", "160", "--num-workers", "0",
    "--cpu", "--num-threads", "1", "--log-interval", "1", "--no-progress-bar",
    "log_layer_grad_norms=false", "tensorboard_dir=null",
]  # fmt: skip


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``nmt-train argv``."""
    try:
        main(argv)
        code = 0
    except SystemExit as stop:
        code = int(stop.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("nmt-train: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding ``demo/data-bin``, where ``make demo`` puts the data of ``data=toy``."""
    root = tmp_path_factory.mktemp("checkout")
    write_corpus(
        root,
        sizes={"train": 120, "valid": 20},
        seed=1,
        words=WORDS[:20],
        lengths=(2, 7),
        target=reversed_order,
    )
    preprocess_dir(root, root / "demo" / "data-bin", splits=("train", "valid"))
    return root


def test_fairseq_flags_and_data_toy_train_from_the_current_directory(
    checkout: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(checkout)
    argv = ["data=toy", *TINY_FAIRSEQ, "--max-update", "3", "--save-dir", "ckpt", "--seed", "7"]
    with torch.random.fork_rng():
        code, _, err = run(argv, capsys)
    assert code == 0, err
    records = [json.loads(ln) for ln in (checkout / "ckpt" / "train_log.jsonl").open()]
    assert [r["update"] for r in records if r["split"] == "train"] == [1, 2, 3]
    state = torch.load(checkout / "ckpt" / "checkpoint_last.pt", weights_only=True)
    config = state["config"]
    assert config["data"]["path"] == "demo/data-bin" and config["max_update"] == 3
    assert config["arch"]["encoder_layers"] == 1 and config["arch"]["d_model"] == 16
    assert config["optim"]["lr"] == 3e-3 and config["seed"] == 7


def test_data_toy_elsewhere_names_the_setting_and_the_resolved_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["data=toy", *TINY_FAIRSEQ], capsys)
    line = one_error_line(err)
    assert code == 1
    assert "data.path=demo/data-bin (set by data=toy)" in line
    assert str(tmp_path / "demo" / "data-bin") in line


def test_a_directory_without_manifest_is_named_with_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run([str(tmp_path), *TINY_FAIRSEQ], capsys)  # fairseq's positional DATA
    assert code == 1 and f"data.path={tmp_path}: " in one_error_line(err)
    assert "manifest.json" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["+max_epochs=5"], "unknown setting 'max_epochs' (did you mean 'max_epoch'?)"),
        (["max_epochs=5"], "unknown setting 'max_epochs' (did you mean 'max_epoch'?)"),
        (["+optim.learning_rate=1e-3"], "unknown setting 'optim.learning_rate' (did you mean"),
        (["++arch.bogus=1"], "unknown setting 'arch.bogus'"),
        (["hydra.run.dir=x"], "hydra settings have no effect"),
        (["--max-updates", "100"], "write the override max_update=100"),
        (["--max-update", "ten"], "--max-update ten: expects an integer"),
        (["optim.lr=abc"], "optim.lr"),
        (["optim.lr=1e-3)"], "cannot parse the override 'optim.lr=1e-3)'"),
        (["--cfg", "all"], "--cfg job"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["+arch=preln_tiny", "data.path=/nonexistent", *args], capsys)
    assert message in one_error_line(err)
    assert code == 2


def test_a_value_out_of_range_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["+arch=preln_tiny", "data.path=/nonexistent", "--lr", "-1"], capsys)
    assert code == 1 and "optim.lr" in one_error_line(err)


def test_help_lists_every_setting_group_option_and_fairseq_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for s in settings(TrainConfig):
        line = next(ln for ln in out.splitlines() if ln.split()[:1] == [s.key])
        assert s.default_text() in line, line
    assert "optim.lr" in out and "peak learning rate" in out  # help text from the dataclass
    assert all(f.flag in out for f in FLAGS)
    assert "preln_tiny" in out and "step_decay" in out  # group options
    assert "Exit status" in out and " 2 usage error" in out


def test_cfg_job_prints_what_the_fairseq_flags_compose(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["data-bin/x", "--arch", "transformer_iwslt_de_en", "--max-update", "7"]
    code, out, err = run([*args, "--cfg", "job"], capsys)
    assert code == 0, err
    assert "max_update: 7" in out and "norm_position: post" in out and "dropout: 0.1" in out
