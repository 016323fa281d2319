"""Scale: peak RSS of nmt-train as the corpus grows, and torchrun throughput (issue 6).

``rss``: synthetic corpora of ``--small`` and ``--large`` pairs (random ids of the reference
directory's dictionary, lengths 3-40) are binarized directly with IndexedDatasetBuilder into
``--work`` (never the repository), next to the reference directory's dictionaries and valid
split; ``nmt-train`` then runs ``--updates`` updates on each, in its own process, and the
table gives each run's peak RSS (the child's own ru_maxrss, from wait4) and, sampled every
20 ms from /proc/PID/status, the peaks of its anonymous memory (RssAnon: the heap, numpy and
torch arrays) and of its file-backed pages (RssFile: shared libraries and mapped data files,
counted in RSS although the kernel may drop them). The model is deliberately tiny
(preln_tiny): this measures what the data pipeline holds, not the activations.

``torchrun``: ``--updates`` updates of the same run with 1 process x 2 threads and with
``torchrun --nproc_per_node 2`` x 1 thread (gloo), target tokens/s from train_log.jsonl.

    python benchmarks/bench_scale.py rss --reference /tmp/m30k --small 50000 --large 5000000
    python benchmarks/bench_scale.py torchrun --reference /tmp/m30k --arch preln_small
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nmt_preln.data.indexed_dataset import IndexedDatasetBuilder

CHUNK = 1_000_000  # pairs generated and written at a time: the generator's memory stays flat


def make_corpus(reference: Path, dest: Path, *, pairs: int, seed: int = 1) -> Path:
    """A data directory like ``reference`` whose train split is ``pairs`` random pairs."""
    if (dest / "manifest.json").is_file():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((reference / "manifest.json").read_text())
    src, tgt = manifest["source_lang"], manifest["target_lang"]
    for f in reference.iterdir():
        if f.name.startswith(("dict.", "spm", "valid.")):
            shutil.copy(f, dest / f.name)
    vocab = manifest["vocab_sizes"][src]
    rng = np.random.default_rng(seed)
    for lang in (src, tgt):
        with IndexedDatasetBuilder(str(dest / f"train.{src}-{tgt}.{lang}"), vocab_size=vocab) as b:
            for start in range(0, pairs, CHUNK):
                n = min(CHUNK, pairs - start)
                sizes = rng.integers(3, 41, size=n)
                tokens = rng.integers(4, vocab, size=int(sizes.sum()), dtype=np.int32)
                ends = np.cumsum(sizes) - 1
                tokens[ends] = 2  # every sentence ends in </s>
                b.add_items(tokens, sizes)
            b.finalize()
    manifest["splits"] = {"train": pairs, "valid": manifest["splits"]["valid"]}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return dest


def train_command(
    data: Path, save_dir: Path, args: argparse.Namespace, *, threads: int
) -> list[str]:
    return [
        "-m", "nmt_preln.cli.train", f"+arch={args.arch}", f"data.path={data}",
        f"max_update={args.updates}", "hardware=cpu", f"hardware.num_threads={threads}",
        f"checkpoint.save_dir={save_dir}", "progress_bar=false", "log_interval=1",
        "log_layer_grad_norms=false", "schedule=no_warmup", "checkpoint.save_interval_updates=0",
    ]  # fmt: skip


SAMPLE_S = 0.02  # /proc sampling period of the child's memory


@dataclass
class Peaks:
    """Peak memory of one child process, in MiB."""

    rss: float  # ru_maxrss: the kernel's exact high-water mark of anon + file + shmem
    anon: float  # sampled
    file: float  # sampled


def _status_mib(pid: int) -> dict[str, float]:
    """RssAnon and RssFile of a running process in MiB ({} once it has exited)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    fields = (line.split(":") for line in lines)
    return {k: int(v.split()[0]) / 1024 for k, v in fields if k in ("RssAnon", "RssFile")}


def measure(cmd: list[str], *, log: Path) -> Peaks:
    """Run ``cmd`` (stderr to ``log``); raise SystemExit with its stderr tail if it fails."""
    with log.open("w") as err:
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    peak = {"RssAnon": 0.0, "RssFile": 0.0}
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        for key, mib in _status_mib(child.pid).items():
            peak[key] = max(peak[key], mib)
        time.sleep(SAMPLE_S)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen.wait
    if child.returncode:
        raise SystemExit(log.read_text()[-2000:])
    return Peaks(rss=usage.ru_maxrss / 1024, anon=peak["RssAnon"], file=peak["RssFile"])


def run_rss(args: argparse.Namespace) -> None:
    rows = []
    for pairs in (args.small, args.large):
        start = time.perf_counter()
        data = make_corpus(args.reference, args.work / f"synthetic-{pairs}", pairs=pairs)
        built = time.perf_counter() - start
        save = args.work / f"run-{pairs}"
        shutil.rmtree(save, ignore_errors=True)
        cmd = [sys.executable, *train_command(data, save, args, threads=2)]
        peaks = measure(cmd, log=args.work / f"train-{pairs}.log")
        size = sum(f.stat().st_size for f in data.glob("train.*")) / 2**20
        rows.append((pairs, size, built, peaks))
        print(f"{pairs} pairs: peak RSS {peaks.rss:.0f} MiB", flush=True)
    print(f"\n{args.arch}, {args.updates} updates, max_tokens 4096 (conf default), 2 threads")
    print(f"anon/file: peaks of RssAnon/RssFile sampled every {SAMPLE_S * 1000:.0f} ms\n")
    print(
        "| train pairs | .bin+.idx MiB | build s | peak RSS MiB | vs smallest "
        "| peak anon MiB | peak file MiB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    base = rows[0][3].rss
    for pairs, size, built, p in rows:
        print(
            f"| {pairs:,} | {size:.0f} | {built:.0f} | {p.rss:.0f} | {p.rss / base:.2f}x "
            f"| {p.anon:.0f} | {p.file:.0f} |"
        )


def _throughput(save: Path) -> tuple[float, int]:
    """Target tokens/s over the logged updates after the first (start-up excluded)."""
    lines = [json.loads(x) for x in (save / "train_log.jsonl").read_text().splitlines()]
    train = [x for x in lines if x["split"] == "train"]
    tokens = sum(x["ntokens"] for x in train[1:])
    return tokens / (train[-1]["wall"] - train[0]["wall"]), len(train)


def run_torchrun(args: argparse.Namespace) -> None:
    data = args.reference
    results: dict[str, tuple[float, int]] = {}
    launches = {
        "1 process x 2 threads": [sys.executable],
        "torchrun 2 processes x 1 thread": [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
        ],
    }
    for name, prefix in launches.items():
        save = args.work / f"torchrun-{len(results)}"
        shutil.rmtree(save, ignore_errors=True)
        threads = 2 if len(results) == 0 else 1
        cmd = [*prefix, *train_command(data, save, args, threads=threads)]
        child = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if child.returncode:
            raise SystemExit(child.stderr[-2000:])
        results[name] = _throughput(save)
        print(f"{name}: {results[name][0]:.0f} tok/s", flush=True)
    base = next(iter(results.values()))[0]
    print(
        f"\n{args.arch} on {data}, {args.updates} updates, load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| launch | target tok/s | vs 1 process |")
    print("|---|---:|---:|")
    for name, (rate, _) in results.items():
        print(f"| {name} | {rate:.0f} | {rate / base:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["rss", "torchrun"])
    parser.add_argument("--reference", type=Path, required=True, help="an nmt-preprocess dir")
    parser.add_argument("--work", type=Path, default=Path("/tmp/nmt_bench_scale"))
    parser.add_argument("--small", type=int, default=50_000)
    parser.add_argument("--large", type=int, default=5_000_000)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--arch", default="preln_tiny")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    run_rss(args) if args.mode == "rss" else run_torchrun(args)


if __name__ == "__main__":
    main()
