"""Time to BLEU: valid BLEU against training wall time, nmt-train and fairseq-train (issue 11).

``run`` trains one recipe in a child process and turns its log into one CSV row per validation;
``report`` reads such CSVs, prints when each run first reached the given BLEU thresholds (and its
BLEU at given minutes), and draws BLEU and valid loss against training time in one PNG.

Training time is the trainer's wall clock minus the time it spent validating and saving
checkpoints (reported separately, in ``valid_s``): for nmt-train the ``train_wall`` that
train_log.jsonl records (from the first update on), for fairseq-train (``--log-format json
--log-interval 1``) its ``wall`` minus its start-up and the gaps around each validation. Both
toolkits score validation BLEU the same way: their own greedy or beam search (as the run's options
say) on the valid split, the pieces joined back into text with the SentencePiece model, and
sacreBLEU's defaults (cased, 13a) against the references.

    python benchmarks/bench_time_to_bleu.py run --name preln_fast --out /tmp/ttb \\
        -- .venv/bin/nmt-train +experiment=multi30k/preln_fast data.path=/tmp/m30k/bin
    python benchmarks/bench_time_to_bleu.py run --name fairseq --out /tmp/ttb --toolkit fairseq \\
        --budget-minutes 30 -- /opt/peers/fairseq/bin/fairseq-train /tmp/m30k/fsq-bin ...
    python benchmarks/bench_time_to_bleu.py report /tmp/ttb/*.csv --thresholds 30,34,36,38 \\
        --minutes 10,20,30,60 --png /tmp/ttb/time_to_bleu.png

With ``--budget-minutes`` the child gets SIGTERM once its training time passes the budget (the
last row is then the last validation before it; nmt-train's own ``stop_time_hours`` validates at
the limit instead). A run stopped by hand (SIGINT or SIGTERM to ``run``) stops the trainer and
still writes the rows it logged, with the signal in ``NAME.json``. The machine's 1-minute load
average is sampled during the run and written to ``NAME.json`` beside the CSV; ``report`` prints
it beside every run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path


@dataclass
class Row:
    """One validation of one run."""

    run: str
    train_s: float  # training wall seconds, validation and saving excluded
    updates: int
    target_tokens: int  # target tokens trained on so far
    valid_loss: float  # label-smoothed loss, bits per target token
    valid_bleu: float
    valid_s: float  # seconds this validation (and the save after it) took


COLUMNS = [f.name for f in fields(Row)]


def nmt_rows(log: Path, run: str) -> tuple[list[Row], float]:
    """Rows from nmt-train's train_log.jsonl, and the training seconds of its last record."""
    rows: list[Row] = []
    tokens, last = 0, 0.0
    for line in log.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["split"] == "train":
            tokens += record["ntokens"]
            last = record.get("train_wall", record["wall"])
        elif record["split"] == "valid" and "bleu" in record:
            rows.append(
                Row(
                    run=run,
                    train_s=record["train_wall"],
                    updates=record["update"],
                    target_tokens=tokens,
                    valid_loss=record["loss"],
                    valid_bleu=record["bleu"],
                    valid_s=record["valid_seconds"],
                )
            )
            last = record["train_wall"]
    return rows, last


def _fairseq_records(log: Path) -> list[tuple[str, dict[str, str]]]:
    """(tag, record) of fairseq's JSON log lines ``... | INFO | train_inner | {...}``."""
    out = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split(" | ", 3)
        if len(parts) == 4 and parts[2] in ("train_inner", "valid") and parts[3].startswith("{"):
            try:
                out.append((parts[2], json.loads(parts[3])))
            except json.JSONDecodeError:
                continue  # a line cut off by the budget's SIGTERM
    return out


def fairseq_rows(log: Path, run: str) -> tuple[list[Row], float]:
    """Rows from fairseq-train's stdout (``--log-format json --log-interval 1``).

    fairseq's ``wall`` (whole seconds since the start) includes validation and saving; a
    validation's cost is the step of ``wall`` across it minus one typical update.
    """
    records = _fairseq_records(log)
    steps = [
        (int(r["num_updates"]), float(r["wall"]), float(r["wpb"]))
        for tag, r in records
        if tag == "train_inner"
    ]
    if not steps:
        return [], 0.0
    first = next(r for tag, r in records if tag == "train_inner")
    # fairseq's clock starts before data loading; ours at the first update: drop start-up.
    startup = float(first["wall"]) - float(first["train_wall"])
    jumps: dict[int, float] = {}  # update after which a validation ran -> wall step across it
    wall_at = {u: w for u, w, _ in steps}
    valid_updates = [int(r["valid_num_updates"]) for tag, r in records if tag == "valid"]
    for u in valid_updates:
        if u in wall_at and u + 1 in wall_at:
            jumps[u] = wall_at[u + 1] - wall_at[u]
    span = steps[-1][1] - steps[0][1] - sum(jumps.values())
    per_update = max(span, 0.0) / max(len(steps) - 1 - len(jumps), 1)
    pauses = {u: max(j - per_update, 0.0) for u, j in jumps.items()}
    rows, tokens_at, tokens = [], {}, 0.0
    for u, _, wpb in steps:
        tokens += wpb
        tokens_at[u] = tokens
    for tag, r in records:
        if tag != "valid" or "valid_bleu" not in r:
            continue
        u = int(r["valid_num_updates"])
        paused_before = sum(p for v, p in pauses.items() if v < u)
        rows.append(
            Row(
                run=run,
                train_s=wall_at.get(u, steps[-1][1]) - startup - paused_before,
                updates=u,
                target_tokens=int(tokens_at.get(u, tokens)),
                valid_loss=float(r["valid_loss"]),
                valid_bleu=float(r["valid_bleu"]),
                valid_s=round(pauses.get(u, 0.0), 1),
            )
        )
    return rows, steps[-1][1] - startup - sum(pauses.values())


# nmt-train's reasons to stop (its last line, ``done (REASON): ...``) that mean the run
# finished what it planned, as opposed to a time budget (stop_time) or an interruption.
FINISHED = ("max_update", "max_epoch", "patience")


def stop_reason(stdout_log: Path, toolkit: str) -> str | None:
    """Why nmt-train stopped (``max_update``, ``stop_time``, ...), from its ``done (...)``
    line; None for fairseq or when the line is missing (killed, crashed)."""
    if toolkit != "nmt" or not stdout_log.is_file():
        return None
    found = re.findall(r"\| done \((\w+)\): ", stdout_log.read_text(errors="replace"))
    return found[-1] if found else None


def load_average() -> float:
    """The machine's 1-minute load average."""
    return os.getloadavg()[0]


def run(args: argparse.Namespace) -> int:
    """Train one recipe, watch its budget and load, write NAME.csv and NAME.json."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        sys.exit("bench_time_to_bleu.py run: error: no training command after --")
    stdout_log = out / f"{args.name}.log"
    if args.toolkit == "nmt":
        save_dir = out / f"{args.name}.ckpt"
        command = [*command, f"checkpoint.save_dir={save_dir}", "progress_bar=false"]
        log, parse = save_dir / "train_log.jsonl", nmt_rows
    else:
        log, parse = stdout_log, fairseq_rows
    loads, started = [load_average()], time.time()
    interrupted: list[signal.Signals] = []
    with open(stdout_log, "w", encoding="utf-8") as sink:
        child = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)

        def stop_child(signum: int, _frame: object) -> None:
            # A probe stopped early (Ctrl-C, kill) still gets its CSV and JSON: the trainer is
            # asked to stop, and the rows it logged are written below, as for a finished run.
            interrupted.append(signal.Signals(signum))
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

        previous = {s: signal.signal(s, stop_child) for s in (signal.SIGINT, signal.SIGTERM)}
        stopped = False
        try:
            while child.poll() is None:
                time.sleep(args.poll_seconds)
                loads.append(load_average())
                if args.budget_minutes and not stopped and log.exists():
                    _, trained = parse(log, args.name)
                    if trained >= args.budget_minutes * 60:
                        child.send_signal(signal.SIGTERM)
                        stopped = True
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
    rows, trained = parse(log, args.name) if log.exists() else ([], 0.0)
    with open(out / f"{args.name}.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    meta = {
        "name": args.name,
        "toolkit": args.toolkit,
        "command": command,
        "exit_status": child.returncode,
        "stopped_by_budget": stopped,
        "stopped_by_signal": interrupted[0].name if interrupted else None,
        "stop_reason": stop_reason(stdout_log, args.toolkit),
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "train_s": round(trained, 1),
        "load_1min": {"min": min(loads), "median": statistics.median(loads), "max": max(loads)},
    }
    (out / f"{args.name}.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(
        f"{args.name}: {len(rows)} validations, {trained / 60:.1f} training minutes, "
        f"exit status {child.returncode}; {out / (args.name + '.csv')}"
    )
    if interrupted:
        return 128 + interrupted[0].value  # as a shell reports a process ended by that signal
    ok = child.returncode == 0 or (stopped and child.returncode is not None)
    return 0 if ok and rows else 1


def read_rows(path: Path) -> list[Row]:
    """The rows of one CSV written by ``run``."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = []
        for n, record in enumerate(csv.DictReader(f), start=2):
            try:
                rows.append(
                    Row(
                        run=record["run"],
                        train_s=float(record["train_s"]),
                        updates=int(record["updates"]),
                        target_tokens=int(record["target_tokens"]),
                        valid_loss=float(record["valid_loss"]),
                        valid_bleu=float(record["valid_bleu"]),
                        valid_s=float(record["valid_s"]),
                    )
                )
            except (KeyError, TypeError, ValueError) as e:
                sys.exit(f"bench_time_to_bleu.py report: error: {path}:{n}: bad row ({e})")
    return rows


def first_reaching(rows: list[Row], threshold: float) -> Row | None:
    """The first validation (in training time) whose BLEU is at least ``threshold``."""
    return next(
        (r for r in sorted(rows, key=lambda r: r.train_s) if r.valid_bleu >= threshold), None
    )


def bleu_at(rows: list[Row], minutes: float) -> float | None:
    """Best BLEU of the validations within the first ``minutes`` of training; None if none
    had run that long (the run ended before)."""
    if not rows or max(r.train_s for r in rows) < minutes * 60 * 0.97:
        return None
    within = [r.valid_bleu for r in rows if r.train_s <= minutes * 60 * 1.03]
    return max(within) if within else None


def report_lines(
    runs: dict[str, list[Row]], meta: dict[str, dict], thresholds: list[float], minutes: list[float]
) -> list[str]:
    """The report's Markdown tables: time to each threshold, BLEU at each minute mark."""
    head = ["run", "best BLEU", "at min", "updates", "tok/s", "valid s", "load (min/med/max)"]
    head += [f"min to {t:g}" for t in thresholds] + [f"BLEU at {m:g} min" for m in minutes]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, rows in runs.items():
        best = max(rows, key=lambda r: r.valid_bleu)
        last = max(rows, key=lambda r: r.train_s)
        load = meta.get(name, {}).get("load_1min")
        cells = [
            name,
            f"{best.valid_bleu:.2f}",
            f"{best.train_s / 60:.1f}",
            str(last.updates),
            f"{last.target_tokens / max(last.train_s, 1e-9):,.0f}",
            f"{sum(r.valid_s for r in rows):.0f}",
            f"{load['min']:.1f}/{load['median']:.1f}/{load['max']:.1f}" if load else "?",
        ]
        for t in thresholds:
            hit = first_reaching(rows, t)
            cells.append(f"{hit.train_s / 60:.1f}" if hit else "-")
        # A run that ended before a mark keeps its best BLEU there only if it finished its
        # plan; after a time budget or a crash, what it would have reached is unknown.
        finished = meta.get(name, {}).get("stop_reason") in FINISHED
        for m in minutes:
            b = bleu_at(rows, m)
            if b is not None:
                cells.append(f"{b:.2f}")
            elif finished:
                cells.append(f"{best.valid_bleu:.2f} (done at {last.train_s / 60:.1f})")
            else:
                cells.append("not run")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def ratio_lines(runs: dict[str, list[Row]], pairs: list[tuple[str, str]]) -> list[str]:
    """``A vs B``: A's time to B's best BLEU over B's time to it."""
    lines = []
    for a, b in pairs:
        if a not in runs or b not in runs:
            sys.exit(f"bench_time_to_bleu.py report: error: --compare {a}:{b}: no such run")
        target = max(r.valid_bleu for r in runs[b])
        hit_a, hit_b = first_reaching(runs[a], target), first_reaching(runs[b], target)
        assert hit_b is not None
        if hit_a is None:
            lines.append(
                f"{a} never reached {b}'s best BLEU {target:.2f} "
                f"({b}: {hit_b.train_s / 60:.1f} min)"
            )
        else:
            lines.append(
                f"{a} reached {b}'s best BLEU {target:.2f} in {hit_a.train_s / 60:.1f} "
                f"min, {b} in {hit_b.train_s / 60:.1f} min: "
                f"{hit_a.train_s / hit_b.train_s:.2f}x"
            )
    return lines


def plot(runs: dict[str, list[Row]], png: Path) -> None:
    """BLEU and valid loss against training minutes, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, rows in runs.items():
        rows = sorted(rows, key=lambda r: r.train_s)
        minutes = [r.train_s / 60 for r in rows]
        left.plot(minutes, [r.valid_bleu for r in rows], marker=".", label=name)
        right.plot(minutes, [r.valid_loss for r in rows], marker=".", label=name)
    left.set(xlabel="training minutes (validation excluded)", ylabel="valid BLEU")
    right.set(xlabel="training minutes (validation excluded)", ylabel="valid loss (bits/token)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def report(args: argparse.Namespace) -> int:
    """Print the tables (and ratios) of the given CSVs; draw the PNG."""
    runs: dict[str, list[Row]] = {}
    meta: dict[str, dict] = {}
    for path in map(Path, args.csv):
        if not path.is_file():
            sys.exit(f"bench_time_to_bleu.py report: error: {path}: no such file")
        rows = read_rows(path)
        if not rows:
            sys.exit(f"bench_time_to_bleu.py report: error: {path}: no validations")
        runs[rows[0].run] = rows
        side = path.with_suffix(".json")
        if side.is_file():
            meta[rows[0].run] = json.loads(side.read_text(encoding="utf-8"))
    thresholds = [float(t) for t in args.thresholds.split(",") if t]
    minutes = [float(m) for m in args.minutes.split(",") if m]
    lines = report_lines(runs, meta, thresholds, minutes)
    pairs = [tuple(p.split(":", 1)) for p in args.compare]
    if any(len(p) != 2 for p in pairs):
        sys.exit("bench_time_to_bleu.py report: error: --compare takes RUN:BASELINE")
    lines += ["", *ratio_lines(runs, pairs)] if pairs else []  # type: ignore[arg-type]
    print("\n".join(lines))
    if args.png:
        plot(runs, Path(args.png))
        print(f"figure: {args.png}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    r = sub.add_parser("run", help="train one recipe, write NAME.csv and NAME.json")
    r.add_argument("--name", required=True, help="the run's name in tables and plots")
    r.add_argument("--out", required=True, help="folder for NAME.csv/.json/.log (and checkpoints)")
    r.add_argument("--toolkit", choices=["nmt", "fairseq"], default="nmt")
    r.add_argument(
        "--budget-minutes",
        type=float,
        default=0.0,
        help="SIGTERM the trainer after this much training time (0: none)",
    )
    r.add_argument("--poll-seconds", type=float, default=5.0)
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- the training command")
    p = sub.add_parser("report", help="tables and a PNG from CSVs of `run`")
    p.add_argument("csv", nargs="+")
    p.add_argument("--thresholds", default="30,34,36,38", help="BLEU values, comma-separated")
    p.add_argument("--minutes", default="10,20,30,60", help="minute marks, comma-separated")
    p.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="RUN:BASELINE",
        help="print RUN's time to BASELINE's best BLEU over BASELINE's (repeatable)",
    )
    p.add_argument("--png", default="", help="draw BLEU and loss against training time here")
    args = ap.parse_args(argv)
    return run(args) if args.verb == "run" else report(args)


if __name__ == "__main__":
    sys.exit(main())
