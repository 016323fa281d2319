"""benchmarks/bench_time_to_bleu.py: its CSV on a real toy run, its report, its fairseq parser."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.checkpoints import TINY_TRAIN
from helpers.scripts import BIN, ENV

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_time_to_bleu.py"
sys.path.insert(0, str(SCRIPT.parent))
import bench_time_to_bleu as ttb  # noqa: E402


def bench(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=ENV, timeout=300
    )
    if ok:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_a_toy_run_gives_one_row_per_validation_from_train_log(
    data_dir: Path, tmp_path: Path
) -> None:
    train = [str(BIN / "nmt-train"), *TINY_TRAIN, f"data.path={data_dir}", "max_update=6"]
    train += ["validate_bleu=true", "validate_interval_updates=2", "log_interval=1"]
    bench("run", "--name", "toy", "--out", str(tmp_path), "--poll-seconds", "0.2", "--", *train)
    with open(tmp_path / "toy.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    log = [json.loads(line) for line in (tmp_path / "toy.ckpt" / "train_log.jsonl").open()]
    valid = [r for r in log if r["split"] == "valid"]
    assert [int(r["updates"]) for r in rows] == [v["update"] for v in valid]
    assert [int(r["updates"]) for r in rows][:3] == [2, 4, 6]
    for row, v in zip(rows, valid, strict=True):
        tokens = sum(
            r["ntokens"] for r in log if r["split"] == "train" and r["update"] <= v["update"]
        )
        assert int(row["target_tokens"]) == tokens
        assert float(row["valid_bleu"]) == v["bleu"] and float(row["valid_loss"]) == v["loss"]
        assert float(row["train_s"]) == v["train_wall"] and float(row["valid_s"]) > 0
    times = [float(r["train_s"]) for r in rows]
    assert times == sorted(times) and times[0] > 0
    meta = json.loads((tmp_path / "toy.json").read_text())
    assert meta["exit_status"] == 0 and meta["load_1min"]["max"] >= meta["load_1min"]["min"]
    assert meta["stop_reason"] == "max_update"
    out = bench("report", str(tmp_path / "toy.csv"), "--png", str(tmp_path / "t.png")).stdout
    assert out.splitlines()[2].startswith("| toy |") and (tmp_path / "t.png").stat().st_size > 0


def write_rows(path: Path, run: str, points: list[tuple[float, float]]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=ttb.COLUMNS)
        w.writeheader()
        for i, (seconds, bleu) in enumerate(points, start=1):
            w.writerow(
                dict(
                    run=run,
                    train_s=seconds,
                    updates=100 * i,
                    target_tokens=1000 * i,
                    valid_loss=5.0,
                    valid_bleu=bleu,
                    valid_s=2.0,
                )
            )
    return path


def test_report_gives_the_first_time_each_threshold_was_reached(tmp_path: Path) -> None:
    fast = write_rows(tmp_path / "fast.csv", "fast", [(60, 10), (120, 25), (180, 20), (240, 30)])
    slow = write_rows(tmp_path / "slow.csv", "slow", [(120, 5), (360, 22), (600, 24)])
    out = bench(
        "report",
        str(fast),
        str(slow),
        "--thresholds",
        "20,30,40",
        "--minutes",
        "3,10",
        "--compare",
        "fast:slow",
    ).stdout
    table = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in out.splitlines()[2:4]}
    # run, best, at min, updates, tok/s, valid s, load, min to 20/30/40, BLEU at 3/10 min
    assert table["fast"][1:4] == ["30.00", "4.0", "400"]
    assert table["fast"][7:10] == ["2.0", "4.0", "-"]
    assert table["fast"][10:] == ["25.00", "not run |"]  # the run ended after 4 minutes
    assert table["slow"][7:10] == ["6.0", "-", "-"] and table["slow"][10] == "5.00"
    assert "fast reached slow's best BLEU 24.00 in 2.0 min, slow in 10.0 min: 0.20x" in out


@pytest.mark.parametrize(
    ("reason", "cell"),
    [("max_update", "30.00 (done at 4.0)"), ("stop_time", "not run"), (None, "not run")],
)
def test_a_run_that_finished_its_plan_keeps_its_bleu_at_later_marks(
    tmp_path: Path, reason: str | None, cell: str
) -> None:
    # Finished after 4 minutes: its BLEU at 10 minutes is its final one. Stopped by a time
    # budget (or killed) after 4 minutes: what it would have reached by 10 is unknown.
    fast = write_rows(tmp_path / "fast.csv", "fast", [(60, 10), (120, 25), (240, 30)])
    (tmp_path / "fast.json").write_text(json.dumps({"stop_reason": reason}))
    out = bench("report", str(fast), "--thresholds", "20", "--minutes", "3,10").stdout
    cells = out.splitlines()[2].strip("| ").split(" | ")
    assert cells[-2:] == ["25.00", cell]


def test_stop_reason_is_read_from_nmt_trains_last_done_line(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text("2026-12-07 23:13:23 | done (stop_time): epoch 010 | update 009600 | ...\n")
    assert ttb.stop_reason(log, "nmt") == "stop_time"
    assert ttb.stop_reason(log, "fairseq") is None
    log.write_text("2026-12-07 23:13:13 | epoch 010 | update 009600 | loss 3.176\n")
    assert ttb.stop_reason(log, "nmt") is None  # killed before it could say


# Stands in for nmt-train: logs one validation, then trains until SIGTERM (exit status 0).
FAKE_TRAINER = """
import json, signal, sys, time
from pathlib import Path
save = Path(next(a.split("=", 1)[1] for a in sys.argv if a.startswith("checkpoint.save_dir=")))
save.mkdir(parents=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
records = [
    {"split": "train", "update": 1, "ntokens": 50, "wall": 1.0, "train_wall": 1.0},
    {"split": "valid", "update": 1, "loss": 9.5, "bleu": 1.5, "train_wall": 1.0,
     "valid_seconds": 0.5},
]
(save / "log.tmp").write_text("".join(json.dumps(r) + "\\n" for r in records))
(save / "log.tmp").rename(save / "train_log.jsonl")  # whole, for the test to wait on
end = time.monotonic() + 120  # never outlives a failed test for long
while time.monotonic() < end:
    time.sleep(0.05)
"""


def test_a_run_stopped_by_hand_stops_the_trainer_and_keeps_its_rows(tmp_path: Path) -> None:
    trainer = tmp_path / "trainer.py"
    trainer.write_text(FAKE_TRAINER)
    out = tmp_path / "out"
    args = ["run", "--name", "probe", "--out", str(out), "--poll-seconds", "0.1"]
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), *args, "--", sys.executable, str(trainer)],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (out / "probe.ckpt" / "train_log.jsonl").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM, proc.communicate()[0]
    with open(out / "probe.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["updates"], r["valid_bleu"]) for r in rows] == [("1", "1.5")]
    meta = json.loads((out / "probe.json").read_text())
    assert meta["stopped_by_signal"] == "SIGTERM" and meta["exit_status"] == 0


def test_bad_csv_and_missing_runs_are_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(ttb.COLUMNS) + "\nx,soon,1,1,1,1,1\n")
    proc = bench("report", str(bad), ok=False)
    assert proc.returncode != 0 and proc.stderr.strip() == (
        f"bench_time_to_bleu.py report: error: {bad}:2: bad row "
        "(could not convert string to float: 'soon')"
    )
    proc = bench("report", str(tmp_path / "none.csv"), ok=False)
    assert proc.returncode != 0 and "none.csv: no such file" in proc.stderr


def fairseq_line(tag: str, **record: str) -> str:
    """One line of fairseq-train's ``--log-format json`` output."""
    return f"2026-12-03 06:22:51 | INFO | {tag} | {json.dumps(record)}\n"


@pytest.mark.parametrize("startup", [0, 30])
def test_fairseq_rows_leave_out_start_up_and_validation(tmp_path: Path, startup: int) -> None:
    # Update 1 takes 2 s, the others 1 s; the validation after update 2 takes 10 s.
    log = tmp_path / "fairseq.log"
    walls, lines = [2, 3, 14, 15], []
    for update, (wall, spent) in enumerate(zip(walls, [2, 1, 1, 1], strict=True), start=1):
        lines.append(
            fairseq_line(
                "train_inner",
                num_updates=str(update),
                wpb=str(90 + 10 * update),
                train_wall=str(spent),
                wall=str(startup + wall),
            )
        )
        if update % 2 == 0:
            lines.append(
                fairseq_line(
                    "valid",
                    valid_loss="9.5",
                    valid_bleu=f"{update}.5",
                    valid_num_updates=str(update),
                )
            )
    log.write_text("".join(lines) + '2026-12-03 06:22:59 | INFO | valid | {"cut off\n')
    rows, trained = ttb.fairseq_rows(log, "fs")
    assert [(r.updates, r.train_s, r.target_tokens, r.valid_bleu) for r in rows] == [
        (2, 3.0, 210, 2.5),
        (4, 5.0, 460, 4.5),
    ]
    assert rows[0].valid_s == 10.0 and trained == 5.0
