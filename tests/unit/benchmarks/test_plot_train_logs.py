"""benchmarks/plot_train_logs.py: block means, the validation table, the CSV and bad logs."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "plot_train_logs.py"
sys.path.insert(0, str(SCRIPT.parent))
import plot_train_logs as ptl  # noqa: E402


def write_log(run_dir: Path, losses: list[float], valid: dict[int, tuple[float, float]]) -> Path:
    run_dir.mkdir(parents=True)
    records: list[dict] = []
    for update, loss in enumerate(losses, start=1):
        records.append({"split": "train", "update": update, "loss": loss, "gnorm": 1.0,
                        "train_wall": 6.0 * update})  # fmt: skip
        if update in valid:
            records.append({"split": "valid", "update": update, "loss": valid[update][0],
                            "bleu": valid[update][1], "train_wall": 6.0 * update})  # fmt: skip
    (run_dir / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run_dir


def test_block_means_and_tables(tmp_path: Path) -> None:
    a = write_log(tmp_path / "a.ckpt", [10, 8, 6, 4, 2], {4: (5.5, 1.25)})
    b = write_log(tmp_path / "b.ckpt", [9, 9, float("nan"), 9], {})
    runs = [ptl.read_log(a, "a"), ptl.read_log(b, "b")]
    assert ptl.block_means(runs[0], 2) == {2: 9.0, 4: 5.0, 6: 2.0}
    means_b = ptl.block_means(runs[1], 2)
    assert means_b[2] == 9.0 and math.isnan(means_b[4])  # a diverged block is NaN, not a number
    lines = ptl.tables(runs, 2)
    assert "| run | 1-2 | 3-4 | 5-6 |" in lines
    assert "| a | 9.00 | 5.00 | 2.00 |" in lines
    assert "| b | 9.00 | nan |  |" in lines  # b has no update 5-6
    assert "| a | 4 | 5.500 | 1.25 | 0.4 |" in lines  # 24 s of training = 0.4 min


def test_main_writes_csv_and_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_log(tmp_path / "a.ckpt", [10, 8, 6], {3: (5.0, 2.0)})
    out = tmp_path / "curves.csv"
    png = tmp_path / "curves.png"
    assert ptl.main([str(a), "--names", "A", "--csv", str(out), "--png", str(png)]) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["run"], r["split"], r["update"]) for r in rows] == [
        ("A", "train", "1"), ("A", "train", "2"), ("A", "train", "3"), ("A", "valid", "3"),
    ]  # fmt: skip
    assert rows[-1]["bleu"] == "2.0" and png.stat().st_size > 0
    assert "| A | 3 | 5.000 | 2.00 | 0.3 |" in capsys.readouterr().out


def test_bad_logs_and_options_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no\.such: no such file|no such file"):
        ptl.read_log(tmp_path / "no.such", "x")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train_log.jsonl").write_text('{"split": "train"}\n[1]\n')
    with pytest.raises(SystemExit, match=r"train_log.jsonl: line 2: not an object"):
        ptl.read_log(bad, "bad")
    with pytest.raises(SystemExit):
        ptl.main([str(bad), "--names", "a,b"])  # two names for one run: argparse error, status 2
