"""Decoding speed: beam search on the Multi30k test set, with and without the decoder KV cache.

Without ``--checkpoint`` the script prepares Multi30k de->en from /work/shared/data into
``--work`` (never into the repository), preprocesses it and trains a small Pre-LN model with the
trainer, briefly (CPU time is scarce: 60 updates by default, enough for sentence-like output,
not for good translations); both are reused by later runs. It then translates the test set (or
its first ``--sentences``) at each batch size, once with incremental decoding (``decode_step``
on the cache) and once recomputing the whole decoder on the prefix each step, checks that both
give the same hypotheses, and prints sentences/s and target tokens/s (best hypothesis, ``</s>``
included, as fairseq's summary counts them).

    python benchmarks/bench_decode.py
    python benchmarks/bench_decode.py --checkpoint ckpt/checkpoint_best.pt --data /tmp/m30k-bin
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
from nmt_preln.data_prep.multi30k import prepare

from nmt_preln.config import (
    CheckpointConfig,
    DataConfig,
    Device,
    HardwareConfig,
    ModelConfig,
    PreprocessConfig,
    ScheduleName,
    SearchConfig,
    TrainConfig,
)
from nmt_preln.data.dataset import LanguagePairDataset
from nmt_preln.data.preprocess import preprocess
from nmt_preln.search.source_items import SourceItem
from nmt_preln.search.translator import Translator, load_ensemble
from nmt_preln.train.trainer import train

MULTI30K = Path("/work/shared/data/multi30k-en-de")


def prepare_data(work: Path) -> Path:
    """Raw Multi30k -> ``work/bin`` (de->en, joint 8k SentencePiece), once."""
    data = work / "bin"
    if (data / "manifest.json").is_file():
        return data
    if not MULTI30K.is_dir():
        raise SystemExit(f"{MULTI30K} is missing: pass --checkpoint and --data")
    prepare(raw_dir=MULTI30K, out_dir=work / "raw")
    raw = work / "raw"
    preprocess(
        PreprocessConfig(
            source_lang="de",
            target_lang="en",
            trainpref=str(raw / "train"),
            validpref=str(raw / "valid"),
            testpref=str(raw / "test"),
            destdir=str(data),
            joined_dictionary=True,
            spm_vocab_size=8000,
        )
    )
    return data


def train_model(work: Path, data: Path, *, updates: int) -> Path:
    """Train ``transformer_small`` (Pre-LN, 3+3 layers, d=256) for ``updates`` updates, once."""
    save_dir = work / f"ckpt{updates}"
    last = save_dir / "checkpoint_last.pt"
    if last.is_file():
        return last
    arch = ModelConfig(
        name="transformer_small",
        encoder_layers=3,
        decoder_layers=3,
        d_model=256,
        ffn_dim=1024,
        num_heads=4,
        dropout=0.1,
    )
    cfg = TrainConfig(
        arch=arch,
        data=DataConfig(path=str(data), max_tokens=4096),
        hardware=HardwareConfig(device=Device.cpu),
        checkpoint=CheckpointConfig(save_dir=str(save_dir)),
        max_update=updates,
        log_interval=50,
        progress_bar=False,
        log_layer_grad_norms=False,
    )
    cfg.optim.lr = 1e-3
    cfg.schedule.name = ScheduleName.constant  # Pre-LN needs no warm-up (the paper's point)
    cfg.schedule.warmup_updates = 0
    train(cfg)
    return last


def measure(translator: Translator, items: list[SourceItem]) -> tuple[float, int, list[list[int]]]:
    """Seconds, generated tokens, and the best hypotheses of one pass over ``items``."""
    start = time.perf_counter()
    hyps = translator.translate(items)
    seconds = time.perf_counter() - start
    best = [h[0].tokens for h in hyps]
    return seconds, sum(len(b) for b in best), best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/nmt_bench_decode"))
    parser.add_argument("--data", type=Path, help="a preprocessed de-en directory")
    parser.add_argument("--checkpoint", type=Path, help="default: train one in --work")
    parser.add_argument("--train-updates", type=int, default=60)
    parser.add_argument("--batch-sizes", default="1,32,128")
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--sentences", type=int, default=0, help="first N test sentences, 0 all")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = args.data or prepare_data(args.work)
    checkpoint = args.checkpoint or train_model(args.work, data, updates=args.train_updates)
    test = LanguagePairDataset(str(data), "test")
    count = args.sentences or len(test)
    items = [SourceItem(id=i, src=test.src[i]) for i in range(count)]
    device = torch.device("cpu")
    ensemble = load_ensemble(str(checkpoint), device=device)
    print(
        f"{checkpoint}: {sum(p.numel() for p in ensemble.models[0].parameters()):,} parameters; "
        f"{count} sentences of {data}/test, beam {args.beam}, max len 1.2 * src + 10; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}"
    )
    print("| batch size | KV cache | seconds | sentences/s | target tokens/s | speed-up |")
    print("|---:|---|---:|---:|---:|---:|")
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        search = SearchConfig(beam=args.beam, max_len_a=1.2, max_len_b=10)
        runs = {}
        for use_cache in (True, False):
            translator = Translator(
                ensemble, search=search, device=device, batch_size=batch_size, use_cache=use_cache
            )
            runs[use_cache] = measure(translator, items)
        if runs[True][2] != runs[False][2]:
            print(f"WARNING: batch {batch_size}: cached and uncached hypotheses differ")
        for use_cache in (True, False):
            seconds, tokens, _ = runs[use_cache]
            speedup = runs[False][0] / runs[True][0] if use_cache else 1.0
            print(
                f"| {batch_size} | {'yes' if use_cache else 'no'} | {seconds:.1f} | "
                f"{count / seconds:.1f} | {tokens / seconds:.0f} | {speedup:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
