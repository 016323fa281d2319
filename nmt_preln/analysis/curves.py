"""Validation curves of finished or running training runs, read from ``train_log.jsonl``.

The trainer appends one JSON object per validation (``"split": "valid"``, with ``epoch``,
``update``, ``loss`` and ``nll`` in bits per token, and ``bleu`` when ``validate_bleu`` is on);
see :mod:`nmt_preln.train.metrics`. A resumed run may repeat a validation; the last record of
an (epoch, update) pair wins.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass

from nmt_preln.errors import UserError

LOG_NAME = "train_log.jsonl"  # the trainer's file name (nmt_preln.train.metrics.LOG_NAME)
CURVE_FIELDS = ("run", "epoch", "update", "loss", "nll", "bleu")


@dataclass(frozen=True)
class CurvePoint:
    """One validation of one run.

    Attributes:
        epoch: 1-based epoch at the end of which (or during which) it ran.
        update: optimizer updates done at that point.
        loss: label-smoothed validation loss, bits per token (inf/nan when training diverged).
        nll: validation NLL, bits per token.
        bleu: greedy validation BLEU, or None when the run did not decode.
    """

    epoch: int
    update: int
    loss: float
    nll: float
    bleu: float | None


def _number(value: object) -> float:
    """JSON has no inf/nan literals in strict mode; the trainer may write them as strings."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _point(record: dict[str, object]) -> CurvePoint:
    bleu = record.get("bleu")
    return CurvePoint(
        epoch=int(record["epoch"]),  # type: ignore[call-overload]
        update=int(record["update"]),  # type: ignore[call-overload]
        loss=_number(record.get("loss")),
        nll=_number(record.get("nll")),
        bleu=None if bleu is None else _number(bleu),
    )


def read_validation_curve(save_dir: str) -> list[CurvePoint]:
    """The validation points of the run in ``save_dir``, ordered by update.

    Returns:
        An empty list when the run has not validated yet (or has no log).

    Raises:
        UserError: a line of the log is not JSON (names the file and line).
    """
    path = os.path.join(save_dir, LOG_NAME)
    if not os.path.exists(path):
        return []
    points: dict[tuple[int, int], CurvePoint] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{path}: line {lineno}: not JSON ({e.msg})") from None
            if not isinstance(record, dict) or record.get("split") != "valid":
                continue
            try:
                point = _point(record)
            except (KeyError, TypeError, ValueError) as e:
                raise UserError(f"{path}: line {lineno}: not a validation record ({e})") from None
            points[point.epoch, point.update] = point
    return sorted(points.values(), key=lambda p: (p.update, p.epoch))


def write_curves_csv(curves: dict[str, list[CurvePoint]], path: str) -> None:
    """One row per (run, validation): ``run,epoch,update,loss,nll,bleu`` (bleu may be empty)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CURVE_FIELDS)
        for run, points in curves.items():
            for p in points:
                bleu = "" if p.bleu is None else f"{p.bleu:.2f}"
                writer.writerow([run, p.epoch, p.update, f"{p.loss:.4f}", f"{p.nll:.4f}", bleu])
