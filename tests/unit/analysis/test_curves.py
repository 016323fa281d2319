"""Reading validation curves from train_log.jsonl."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from nmt_preln.analysis.curves import read_validation_curve, write_curves_csv
from nmt_preln.errors import UserError


def write_log(path: Path, records: list[dict]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_only_validations_in_update_order_last_repeat_wins(tmp_path: Path) -> None:
    resumed = {"split": "valid", "epoch": 2, "update": 20, "loss": 4.5, "nll": 3.5, "bleu": 2.5}
    write_log(
        tmp_path,
        [
            {"split": "train", "epoch": 1, "update": 1, "loss": 9.9},
            {"split": "valid", "epoch": 2, "update": 20, "loss": 5.0, "nll": 4.0},
            {"split": "valid", "epoch": 1, "update": 10, "loss": 6.0, "nll": 5.0, "bleu": 1.5},
            resumed,  # repeats (2, 20) after a resume: the later record wins
            {"split": "valid", "epoch": 3, "update": 30, "loss": "NaN", "nll": None},
        ],
    )
    points = read_validation_curve(str(tmp_path))
    assert [(p.epoch, p.update) for p in points] == [(1, 10), (2, 20), (3, 30)]
    assert (points[0].bleu, points[1].loss, points[1].bleu) == (1.5, 4.5, 2.5)
    assert math.isnan(points[2].loss) and math.isnan(points[2].nll) and points[2].bleu is None


def test_missing_log_is_an_empty_curve(tmp_path: Path) -> None:
    assert read_validation_curve(str(tmp_path / "nothing")) == []


def test_corrupt_line_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "train_log.jsonl").write_text(
        '{"split": "valid", "epoch": 1, "update": 2}\n{oops\n'
    )
    with pytest.raises(UserError, match=r"train_log.jsonl: line 2"):
        read_validation_curve(str(tmp_path))


def test_csv_has_a_row_per_point(tmp_path: Path) -> None:
    write_log(tmp_path / "a", [{"split": "valid", "epoch": 1, "update": 5, "loss": 3, "nll": 2}])
    curves = {"a": read_validation_curve(str(tmp_path / "a")), "b": []}
    write_curves_csv(curves, str(tmp_path / "c.csv"))
    lines = (tmp_path / "c.csv").read_text().splitlines()
    assert lines == ["run,epoch,update,loss,nll,bleu", "a,1,5,3.0000,2.0000,"]


def test_validation_without_update_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "train_log.jsonl").write_text(
        '{"split": "train"}\n{"split": "valid", "epoch": 1}\n'
    )
    with pytest.raises(UserError, match=r"line 2: not a validation record"):
        read_validation_curve(str(tmp_path))
