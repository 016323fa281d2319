"""Benchmark nmt-preprocess on Tatoeba de-en against SentencePiece's own batch encoding.

    .venv/bin/python benchmarks/bench_preprocess.py [--workers 0] [--repeat 3]

The gzipped corpus is decompressed into a temporary directory, shuffled with a fixed seed and
split into train/valid/test there (never inside the repository). The full pipeline (learn a
joint SentencePiece model, segment, clean, build the dictionary, binarize) then runs ``--repeat``
times; each stage reports its best time. The floor is SentencePiece's batch ``encode`` of the
same lines (already in memory, int output, same threads) with the learned model:

    ratio = (read + encode + collect + binarize) / floor

i.e. everything our encode-and-binarize path costs, reading and UTF-8 checks included, over the
bare C++ encoding. The target is ratio <= 1.5.
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import sentencepiece as spm

from nmt_preln.config import PreprocessConfig
from nmt_preln.data.preprocess import preprocess
from nmt_preln.data.tokenizer import available_cores

DATA = Path("/work/shared/data/tatoeba-de-en")
OURS = ("read", "encode", "collect", "binarize")


def make_splits(tmp: Path, *, seed: int, held_out: int) -> dict[str, str]:
    """Write shuffled train/valid/test PREFIX.{de,en} files into ``tmp``; return the prefixes."""
    sides = {}
    for lang in ("de", "en"):
        with gzip.open(DATA / f"tatoeba.{lang}.gz", "rt", encoding="utf-8") as f:
            sides[lang] = f.read().splitlines()
    order = list(range(len(sides["de"])))
    random.Random(seed).shuffle(order)  # the file is sorted by length: shuffle before splitting
    parts = {
        "valid": order[:held_out],
        "test": order[held_out : 2 * held_out],
        "train": order[2 * held_out :],
    }
    prefixes = {}
    for name, rows in parts.items():
        prefixes[name] = str(tmp / name)
        for lang, lines in sides.items():
            Path(f"{tmp / name}.{lang}").write_text(
                "".join(lines[i] + "\n" for i in rows), encoding="utf-8"
            )
    return prefixes


def spm_floor(
    sp: spm.SentencePieceProcessor, texts: list[list[str]], *, threads: int
) -> dict[str, float]:
    """Seconds of SentencePiece's batch encode (int and str output) over ``texts``."""
    seconds = {}
    for out_type in (int, str):
        start = time.perf_counter()
        for lines in texts:
            sp.encode(lines, out_type=out_type, num_threads=threads)
        seconds[out_type.__name__] = time.perf_counter() - start
    return seconds


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    cpu = names[0] if names else cpu
    return (
        f"{cpu}, {available_cores()} cores available to this process; Python "
        f"{platform.python_version()}, numpy {np.__version__}, sentencepiece {spm.__version__}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=0, help="threads, 0 = all cores")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--held-out", type=int, default=2000, help="valid and test sizes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--spm-vocab-size", type=int, default=8000)
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"{DATA} not found: nothing to benchmark", file=sys.stderr)
        return 2
    threads = args.workers or available_cores()
    with tempfile.TemporaryDirectory(prefix="bench-preprocess-") as tmp:
        prefixes = make_splits(Path(tmp), seed=args.seed, held_out=args.held_out)
        files = [f"{p}.{lang}" for p in prefixes.values() for lang in ("de", "en")]
        texts = [Path(f).read_text(encoding="utf-8").splitlines() for f in files]
        stages: dict[str, list[float]] = {"floor_int": [], "floor_str": []}
        totals, report = [], None
        for i in range(args.repeat):  # alternate ours and the floor so both see the same load
            cfg = PreprocessConfig(
                source_lang="de",
                target_lang="en",
                trainpref=prefixes["train"],
                validpref=prefixes["valid"],
                testpref=prefixes["test"],
                destdir=os.path.join(tmp, f"bin{i}"),
                joined_dictionary=True,
                spm_vocab_size=args.spm_vocab_size,
                workers=args.workers,
            )
            report = preprocess(cfg)
            totals.append(report.total_seconds)
            for stage, seconds in report.timings.items():
                stages.setdefault(stage, []).append(seconds)
            sp = spm.SentencePieceProcessor(model_file=os.path.join(cfg.destdir, "spm.model"))
            for out_type, seconds in spm_floor(sp, texts, threads=threads).items():
                stages[f"floor_{out_type}"].append(seconds)
        assert report is not None
    best = {stage: min(times) for stage, times in stages.items()}
    floor = {"int": best.pop("floor_int"), "str": best.pop("floor_str")}
    ours = sum(best[s] for s in OURS)
    pairs = sum(split.lines for split in report.splits)
    print(f"machine: {machine()}; {threads} SentencePiece threads; best of {args.repeat} runs")
    sizes = ", ".join(f"{split.name} {split.lines}" for split in report.splits)
    print(f"corpus: Tatoeba de-en, {pairs} pairs ({sizes})")
    print("| stage | seconds |")
    print("|---|---:|")
    for stage, seconds in best.items():
        print(f"| {stage} | {seconds:.3f} |")
    print(f"| **total pipeline** | {min(totals):.3f} |")
    print(f"| our encode+binarize ({' + '.join(OURS)}) | {ours:.3f} |")
    print(f"| floor: SentencePiece batch encode, int ids | {floor['int']:.3f} |")
    print(f"| (SentencePiece batch encode, str pieces) | {floor['str']:.3f} |")
    print(
        f"sentences/s: pipeline {pairs / min(totals):,.0f} pairs/s; "
        f"encode+binarize {2 * pairs / ours:,.0f} sentences/s"
    )
    print(f"ratio (our encode+binarize / floor): {ours / floor['int']:.2f} (target <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
