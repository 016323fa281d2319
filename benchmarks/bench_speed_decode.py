"""Decoding speed, nmt-generate against CTranslate2 on the same weights, in one run (issue 6).

The checkpoint is exported with ``nmt-export --format ctranslate2`` (float32) into a temporary
directory; then the test split is translated by our ``Translator`` (what nmt-generate runs) and
by ``ctranslate2.Translator`` with the same beam, batch size, length limit and thread count,
rounds interleaved (ours, CTranslate2, ours, ...); the table reports each engine's best round.
Tokens are the best hypotheses' tokens without ``</s>`` (CTranslate2 does not return it).

    python benchmarks/bench_speed_decode.py --data DIR --path CKPT [--beam 4 --batch-size 64]

``--sentences N`` translates the first N test sentences only (0: all).
"""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning: on a shared, loaded machine spinning threads
# wait for descheduled ones at every op (about 6x slower decoding here). Both engines read it
# at start-up; export OMP_WAIT_POLICY=ACTIVE to measure the default.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import platform
import tempfile
import time
from typing import Any

import torch

from nmt_preln.config import SearchConfig
from nmt_preln.data.dataset import LanguagePairDataset
from nmt_preln.export.ctranslate2 import export_ctranslate2
from nmt_preln.search.source_items import SourceItem
from nmt_preln.search.translator import Translator, load_ensemble


def _ours(args: argparse.Namespace, items: list[SourceItem]) -> Any:
    ensemble = load_ensemble(args.path, device=torch.device("cpu"))
    search = SearchConfig(beam=args.beam, max_len_a=0.0, max_len_b=args.max_len)
    translator = Translator(
        ensemble, search=search, device=torch.device("cpu"), batch_size=args.batch_size
    )
    eos = ensemble.tgt_dict.eos

    def run() -> list[list[str]]:
        with torch.inference_mode():
            hyps = translator.translate(items)
        return [[ensemble.tgt_dict[t] for t in h[0].tokens if t != eos] for h in hyps]

    return run


def _ctranslate2(args: argparse.Namespace, sources: list[list[str]], model_dir: str) -> Any:
    import ctranslate2

    translator = ctranslate2.Translator(
        model_dir, device="cpu", compute_type="float32", inter_threads=1,
        intra_threads=args.threads,
    )  # fmt: skip

    def run() -> list[list[str]]:
        results = translator.translate_batch(
            sources, beam_size=args.beam, max_batch_size=args.batch_size,
            batch_type="examples", max_decoding_length=args.max_len, min_decoding_length=1,
        )  # fmt: skip
        return [r.hypotheses[0] for r in results]

    return run


def _timed(run: Any) -> tuple[float, float, list[list[str]]]:
    start, cpu = time.perf_counter(), time.process_time()
    out = run()
    return time.perf_counter() - start, time.process_time() - cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="nmt-preprocess directory with a test split")
    parser.add_argument("--path", required=True, help="checkpoint")
    parser.add_argument("--subset", default="test")
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-len", type=int, default=200, help="max generated tokens")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sentences", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = LanguagePairDataset(args.data, args.subset)
    count = args.sentences or len(data)
    items = [SourceItem(id=i, src=data.src[i]) for i in range(count)]
    sources = [[data.src_dict[int(t)] for t in data.src[i][:-1]] for i in range(count)]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(export_ctranslate2(args.path, os.path.join(tmp, "ct2")))
        engines = {
            "nmt-generate": _ours(args, items),
            "ctranslate2": _ctranslate2(args, sources, model_dir),
        }
        rounds: dict[str, list[tuple[float, float, list[list[str]]]]] = {e: [] for e in engines}
        for _ in range(args.repeats):
            for name, run in engines.items():
                rounds[name].append(_timed(run))
                print(f"{name}: {rounds[name][-1][0]:.1f} s", flush=True)
    _report(args, rounds, count)


def _report(args: argparse.Namespace, rounds: dict[str, list[Any]], count: int) -> None:
    best = {e: min(r, key=lambda x: x[0]) for e, r in rounds.items()}
    outputs = {e: b[2] for e, b in best.items()}
    same = sum(a == b for a, b in zip(outputs["nmt-generate"], outputs["ctranslate2"], strict=True))
    tok = {e: sum(len(h) for h in outputs[e]) for e in best}
    rate = {e: tok[e] / best[e][0] for e in best}
    print(
        f"\n{args.path}: {count} sentences of {args.data}/{args.subset}, beam {args.beam}, batch "
        f"{args.batch_size} sentences, max {args.max_len} tokens, {args.threads} threads, best of "
        f"{args.repeats}; torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"load average {os.getloadavg()[0]:.1f}, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}"
    )
    print("\n| engine | seconds (all rounds) | sentences/s | tokens/s | tok per CPU-s | vs CT2 |")
    print("|---|---|---:|---:|---:|---:|")
    for e, (sec, cpu, _) in best.items():
        all_rounds = ", ".join(f"{r[0]:.1f}" for r in rounds[e])
        print(
            f"| {e} | {all_rounds} | {count / sec:.1f} | {rate[e]:.0f} | {tok[e] / cpu:.0f} | "
            f"{rate[e] / rate['ctranslate2']:.2f}x |"
        )
    print(f"\nidentical best hypotheses: {same}/{count}")


if __name__ == "__main__":
    main()
