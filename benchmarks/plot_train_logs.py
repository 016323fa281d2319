"""Training curves of several nmt-train runs, read from their train_log.jsonl: tables and a PNG.

For comparisons where the question is *whether* a run trains (the paper's Post-LN without
warm-up against Post-LN with warm-up and Pre-LN): the training loss of every update, the
validation loss and BLEU against updates and against training minutes (validation excluded).

    python benchmarks/plot_train_logs.py /tmp/mech/postln_nowarmup.ckpt \\
        /tmp/mech/postln_warmup.ckpt /tmp/mech/preln_nowarmup.ckpt \\
        --names "Post-LN no warm-up,Post-LN warm-up,Pre-LN no warm-up" --block 20 \\
        --png docs/figures/mechanism_d512.png --csv docs/figures/mechanism_d512.csv

Prints two Markdown tables: the mean training loss (bits per token, label-smoothed) over blocks
of ``--block`` updates, and every validation (loss, BLEU, training minutes at that point).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Curves:
    """What one run's train_log.jsonl says, in update order."""

    name: str
    train: list[dict] = field(default_factory=list)  # one record per logged update
    valid: list[dict] = field(default_factory=list)  # one record per validation


def read_log(run_dir: Path, name: str) -> Curves:
    """The records of ``run_dir/train_log.jsonl`` (a directory or the file itself).

    Raises:
        SystemExit: the file is missing, or a line is not a JSON object (naming the line).
    """
    path = run_dir if run_dir.is_file() else run_dir / "train_log.jsonl"
    if not path.is_file():
        sys.exit(f"plot_train_logs.py: error: {path}: no such file")
    curves = Curves(name)
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                sys.exit(f"plot_train_logs.py: error: {path}: line {number}: not JSON")
            if not isinstance(record, dict):
                sys.exit(f"plot_train_logs.py: error: {path}: line {number}: not an object")
            if record.get("split") == "train":
                curves.train.append(record)
            elif record.get("split") == "valid":
                curves.valid.append(record)
    return curves


def block_means(curves: Curves, block: int) -> dict[int, float]:
    """Mean training loss of updates ``k*block+1 .. (k+1)*block``, keyed by the block's last update.

    A block with a non-finite loss is NaN (the run diverged there); incomplete blocks count.
    """
    sums: dict[int, list[float]] = {}
    for r in curves.train:
        end = ((int(r["update"]) - 1) // block + 1) * block
        sums.setdefault(end, []).append(float(r["loss"]))
    return {
        end: (math.fsum(v) / len(v) if all(math.isfinite(x) for x in v) else math.nan)
        for end, v in sorted(sums.items())
    }


def tables(runs: list[Curves], block: int) -> list[str]:
    """The two Markdown tables (training loss by block, every validation)."""
    means = {c.name: block_means(c, block) for c in runs}
    ends = sorted({end for m in means.values() for end in m})
    lines = [
        f"training loss (bits/token), mean over each block of {block} updates",
        "",
        "| run | " + " | ".join(f"{e - block + 1}-{e}" for e in ends) + " |",
        "|---|" + "---|" * len(ends),
    ]
    for c in runs:
        cells = [f"{means[c.name][e]:.2f}" if e in means[c.name] else "" for e in ends]
        lines.append(f"| {c.name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| run | update | valid loss | valid BLEU | training min |",
        "|---|---|---|---|---|",
    ]
    for c in runs:
        for r in c.valid:
            bleu = f"{r['bleu']:.2f}" if "bleu" in r else ""
            minutes = float(r.get("train_wall", 0.0)) / 60
            lines.append(f"| {c.name} | {r['update']} | {r['loss']:.3f} | {bleu} | {minutes:.1f} |")
    return lines


def write_csv(runs: list[Curves], path: Path) -> None:
    """One row per training update and per validation: run, split, update, minutes, loss, bleu."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["run", "split", "update", "train_minutes", "loss", "gnorm", "bleu"])
        for c in runs:
            for r in c.train + c.valid:
                out.writerow(
                    [
                        c.name,
                        r["split"],
                        r["update"],
                        round(float(r.get("train_wall", 0.0)) / 60, 3),
                        r["loss"],
                        r.get("gnorm", ""),
                        r.get("bleu", ""),
                    ]
                )


def plot(runs: list[Curves], png: Path, title: str) -> None:
    """Training loss and gradient norm per update; valid loss against updates and minutes; BLEU."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    train_ax, valid_ax, minutes_ax, bleu_ax = axes
    for c in runs:
        (line,) = train_ax.plot(
            [r["update"] for r in c.train], [r["loss"] for r in c.train], lw=0.8, label=c.name
        )
        updates = [r["update"] for r in c.valid]
        minutes = [float(r.get("train_wall", 0.0)) / 60 for r in c.valid]
        losses = [r["loss"] for r in c.valid]
        valid_ax.plot(updates, losses, marker="o", color=line.get_color(), label=c.name)
        minutes_ax.plot(minutes, losses, marker="o", color=line.get_color(), label=c.name)
        bleu = [r.get("bleu", math.nan) for r in c.valid]
        bleu_ax.plot(updates, bleu, marker="o", color=line.get_color(), label=c.name)
    train_ax.set(xlabel="update", ylabel="training loss (bits/token)")
    valid_ax.set(xlabel="update", ylabel="valid loss (bits/token)")
    minutes_ax.set(xlabel="training minutes (validation excluded)", ylabel="valid loss")
    bleu_ax.set(xlabel="update", ylabel="valid BLEU (greedy)")
    for ax in axes:
        ax.grid(alpha=0.3)
    train_ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="save_dir of each run (or its train_log.jsonl)")
    ap.add_argument("--names", default="", help="comma-separated names (default: folder names)")
    ap.add_argument("--block", type=int, default=20, help="updates per training-loss block")
    ap.add_argument("--png", default="", help="draw the curves here")
    ap.add_argument("--csv", default="", help="write every record's numbers here")
    ap.add_argument("--title", default="", help="the figure's title")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.names.split(",")] if args.names else []
    if names and len(names) != len(args.runs):
        ap.error(f"--names gives {len(names)} names for {len(args.runs)} runs")
    if args.block < 1:
        ap.error("--block must be >= 1")
    runs = [
        read_log(Path(r), names[i] if names else Path(r).name.removesuffix(".ckpt"))
        for i, r in enumerate(args.runs)
    ]
    print("\n".join(tables(runs, args.block)))
    if args.csv:
        write_csv(runs, Path(args.csv))
    if args.png:
        plot(runs, Path(args.png), args.title)
        print(f"figure: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
