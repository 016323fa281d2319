"""nmt-train's stdout: timestamped text lines, or one JSON object per line (log_format=json)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.train_log import without_clock
from trainer_helpers import read_log

from nmt_preln.config import LogFormat, TrainConfig
from nmt_preln.train.console import Console
from nmt_preln.train.trainer import train

MakeConfig = Callable[..., TrainConfig]
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \| \S")
# fairseq's json fields of a train_inner line (ours are numbers, not strings).
TRAIN_FIELDS = {"epoch", "update", "loss", "nll_loss", "ppl", "wps", "ups", "wpb", "bsz", "lr",
                "gnorm", "wall", "time", "split"}  # fmt: skip


def _without_wall(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return without_clock(records)


@pytest.mark.usefixtures("one_thread")
def test_json_lines_on_stdout_and_the_same_train_log(
    make_config: MakeConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    text_cfg = make_config("text", max_update=4, log_interval=2)
    train(text_cfg)
    text_out = capsys.readouterr().out.splitlines()
    json_cfg = make_config("json", max_update=4, log_interval=2, log_format=LogFormat.json)
    train(json_cfg)
    json_out = capsys.readouterr().out.splitlines()

    assert text_out and all(TIMESTAMP.match(line) for line in text_out), text_out
    records = [json.loads(line) for line in json_out]  # every line is one JSON object
    assert all(isinstance(r, dict) and "time" in r for r in records)
    train_lines = [r for r in records if r.get("split") == "train"]
    assert [r["update"] for r in train_lines] == [2, 4]
    assert set(train_lines[0]) == TRAIN_FIELDS
    assert train_lines[0]["epoch"] == 1 and train_lines[0]["wps"] > 0
    valid = [r for r in records if r.get("split") == "valid"]
    assert valid and {"loss", "nll_loss", "ppl", "best_loss"} <= set(valid[-1])
    assert any("message" in r and r["message"].startswith("model ") for r in records)
    # train_log.jsonl does not depend on the stdout format.
    for split in ("train", "valid"):
        text_log = read_log(Path(text_cfg.checkpoint.save_dir), split)
        json_log = read_log(Path(json_cfg.checkpoint.save_dir), split)
        assert _without_wall(text_log) == _without_wall(json_log)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("log_format", list(LogFormat))
def test_a_bar_only_for_text_on_a_terminal(log_format: LogFormat) -> None:
    stream = _Terminal()
    console = Console(stream, log_format=log_format, progress_bar=True)
    console.progress(epoch=1, done=1, total=2)
    console.info("a message")
    console.end_epoch()
    shown = stream.getvalue().replace("\033[K", "").replace("\r", "\n")
    lines = [ln for ln in shown.splitlines() if ln.strip()]
    if log_format == LogFormat.json:
        assert [json.loads(ln)["message"] for ln in lines] == ["a message"]
    else:
        assert any("1/2" in ln for ln in lines) and any(TIMESTAMP.match(ln) for ln in lines)
