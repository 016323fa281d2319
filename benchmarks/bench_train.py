"""Training throughput: our training step against a plain PyTorch baseline, same batches.

The baseline is what a user would write with ``torch.nn.Transformer``: the same dimensions
and norm placement, learned embeddings scaled by sqrt(d_model) plus sinusoidal positions, a
tied output projection, ``F.cross_entropy(label_smoothing=0.1)`` and ``torch.optim.Adam``. Ours
is :func:`nmt_preln.train.trainer.train_update` on a session built by ``build_session``: the
real step (schedule, label-smoothed loss, normalization, grad norm, fused Adam).

Each variant runs in its own process (so peak RSS is its own), variants interleaved over
``--repeats`` rounds; the table reports the best round (least disturbed by other load).

    python benchmarks/bench_train.py --data /tmp/m30k/bin            # a preprocessed directory
    python benchmarks/bench_train.py                                  # toy corpus in a temp dir

Tokens/s count non-pad target tokens, as fairseq's ``wps``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt_preln.config import (
    CheckpointConfig,
    DataConfig,
    Device,
    HardwareConfig,
    ModelConfig,
    NormPosition,
    Precision,
    ScheduleConfig,
    TrainConfig,
)
from nmt_preln.data.collate import Batch, collate_indices
from nmt_preln.data.dataset import LanguagePairDataset
from nmt_preln.models.placement import placement_of
from nmt_preln.train.batch_plan import batch_by_size
from nmt_preln.train.distributed import DistributedContext
from nmt_preln.train.session import build_session
from nmt_preln.train.trainer import PlannedUpdate, train_update
from nmt_preln.train.validation import autocast

VARIANTS = ("ours", "baseline", "baseline_no_attn_dropout")


def _arch(args: argparse.Namespace) -> ModelConfig:
    return ModelConfig(
        encoder_layers=args.layers,
        decoder_layers=args.layers,
        d_model=args.d_model,
        ffn_dim=args.ffn_dim,
        num_heads=args.heads,
        dropout=args.dropout,
        norm_position=NormPosition(args.norm),
    )


def _batches(args: argparse.Namespace) -> tuple[LanguagePairDataset, list[Batch]]:
    data = LanguagePairDataset(args.data, "train")
    order = batch_by_size(
        data.src_sizes, data.tgt_sizes, max_tokens=args.max_tokens, max_sentences=0,
        seed=1, epoch=1,
    )  # fmt: skip
    chosen = order[: args.warmup + args.steps]
    return data, [collate_indices(data, b) for b in chosen]  # type: ignore[arg-type]


def _sinusoids(length: int, dim: int) -> Tensor:
    position = torch.arange(length, dtype=torch.float32)[:, None]  # (L, 1)
    rate = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2], table[:, 1::2] = torch.sin(position * rate), torch.cos(position * rate)
    return table  # (L, D)


class BaselineModel(nn.Module):
    """``nn.Transformer`` with embeddings, positions and a tied output layer."""

    def __init__(self, arch: ModelConfig, *, vocab: tuple[int, int], pad: int, dropout: float):
        super().__init__()
        placement = placement_of(arch.norm_position)
        if not placement.plain:
            raise SystemExit(f"bench_train: nn.Transformer has no {placement.title} blocks")
        d = arch.d_model
        self.pad, self.scale = pad, math.sqrt(d)
        self.src_embed = nn.Embedding(vocab[0], d, padding_idx=pad)
        self.tgt_embed = nn.Embedding(vocab[1], d, padding_idx=pad)
        self.register_buffer("positions", _sinusoids(1024, d), persistent=False)
        self.drop = nn.Dropout(dropout)
        self.transformer = nn.Transformer(
            d_model=d, nhead=arch.num_heads, num_encoder_layers=arch.encoder_layers,
            num_decoder_layers=arch.decoder_layers, dim_feedforward=arch.ffn_dim,
            dropout=dropout, batch_first=True, norm_first=placement.pre_norm,
        )  # fmt: skip
        self.out = nn.Linear(d, vocab[1], bias=False)
        self.out.weight = self.tgt_embed.weight

    def forward(self, src: Tensor, prev: Tensor) -> Tensor:
        """src (B, S), prev (B, T) -> logits (B, T, V)."""
        pos: Tensor = self.positions  # type: ignore[assignment]
        x = self.drop(self.src_embed(src) * self.scale + pos[: src.size(1)])  # (B, S, D)
        y = self.drop(self.tgt_embed(prev) * self.scale + pos[: prev.size(1)])  # (B, T, D)
        causal = nn.Transformer.generate_square_subsequent_mask(prev.size(1), device=prev.device)
        h = self.transformer(
            x, y, tgt_mask=causal, src_key_padding_mask=src.eq(self.pad),
            tgt_key_padding_mask=prev.eq(self.pad), memory_key_padding_mask=src.eq(self.pad),
            tgt_is_causal=True,
        )  # fmt: skip
        return self.out(h)  # (B, T, V)


def _baseline_step(args: argparse.Namespace, *, attn_dropout: bool) -> Callable[[Batch], None]:
    data = LanguagePairDataset(args.data, "train")
    torch.manual_seed(1)
    arch = _arch(args)
    vocab = (len(data.src_dict), len(data.tgt_dict))
    model = BaselineModel(arch, vocab=vocab, pad=data.tgt_dict.pad, dropout=args.dropout)
    if not attn_dropout:  # nn.Transformer has one dropout; zero it inside attention only
        for module in model.modules():
            if isinstance(module, nn.MultiheadAttention):
                module.dropout = 0.0
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.98), eps=1e-8)
    precision = Precision(args.precision)

    def step(batch: Batch) -> None:
        assert batch.prev_output_tokens is not None and batch.target is not None
        optimizer.zero_grad(set_to_none=True)
        with autocast(precision, torch.device("cpu")):
            logits = model(batch.src_tokens, batch.prev_output_tokens)
            loss = F.cross_entropy(
                logits.reshape(-1, logits.size(-1)).float(), batch.target.reshape(-1),
                ignore_index=model.pad, label_smoothing=0.1,
            )  # fmt: skip
        loss.backward()
        optimizer.step()

    return step


def _our_step(args: argparse.Namespace, save_dir: str) -> Callable[[Batch], None]:
    cfg = TrainConfig(
        arch=_arch(args),
        data=DataConfig(path=args.data, max_tokens=args.max_tokens, num_workers=0),
        schedule=ScheduleConfig(warmup_updates=4000),
        hardware=HardwareConfig(device=Device.cpu, precision=Precision(args.precision)),
        checkpoint=CheckpointConfig(save_dir=save_dir),
        log_interval=10**9,  # the timed loop measures the step, not the log writer
        log_layer_grad_norms=False,
        progress_bar=False,
    )
    session = build_session(cfg, DistributedContext(), "cpu")

    def step(batch: Batch) -> None:
        planned = PlannedUpdate(
            batches=[np.empty(0)], ntokens=batch.ntokens, nsentences=len(batch), end=0
        )
        train_update(session, [batch], planned)
        session.metrics.pending.clear()  # keep no history: the baseline keeps none either

    return step


def run_variant(args: argparse.Namespace) -> dict[str, Any]:
    """Time ``args.only`` on the batches; runs in its own process."""
    torch.set_num_threads(args.threads)
    _, batches = _batches(args)
    with tempfile.TemporaryDirectory() as save_dir:
        if args.only == "ours":
            step = _our_step(args, save_dir)
        else:
            step = _baseline_step(args, attn_dropout=args.only == "baseline")
        for batch in batches[: args.warmup]:
            step(batch)
        times, cpu_times = [], []
        for batch in batches[args.warmup :]:
            start, cpu_start = time.perf_counter(), time.process_time()
            step(batch)
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    ntokens = sum(b.ntokens for b in batches[args.warmup :])
    return {
        "variant": args.only,
        "tokens_per_s": ntokens / sum(times),
        # CPU seconds barely depend on other processes' load (wall time does, a lot).
        "tokens_per_cpu_s": ntokens / sum(cpu_times),
        "median_step_ms": 1000 * float(np.median(times)),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "steps": len(times),
        "tokens": ntokens,
    }


def _toy_data(workdir: str) -> str:
    """Generate and preprocess the toy corpus (when no --data is given)."""
    bin_dir = Path(sys.executable).parent
    raw, dest = os.path.join(workdir, "raw"), os.path.join(workdir, "bin")
    subprocess.run([bin_dir / "nmt-toy-corpus", "--out", raw, "--train", "20000", "--valid",
                    "200", "--test", "200", "--seed", "1"], check=True)  # fmt: skip
    preprocess = [str(bin_dir / "nmt-preprocess"), "--source-lang", "de", "--target-lang", "en",
                  "--trainpref", f"{raw}/train", "--validpref", f"{raw}/valid", "--destdir", dest,
                  "--joined-dictionary", "--spm-vocab-size", "2000"]  # fmt: skip
    subprocess.run(preprocess, check=True)
    return dest


def _table(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    best = {v: max((r for r in results if r["variant"] == v), key=lambda r: r["tokens_per_s"])
            for v in VARIANTS}  # fmt: skip
    base = best["baseline"]["tokens_per_s"]
    lines = [
        f"{args.layers}+{args.layers} layers, d_model {args.d_model}, {args.heads} heads, "
        f"FFN {args.ffn_dim}, {args.norm}-LN, dropout {args.dropout}, max_tokens "
        f"{args.max_tokens}, {args.precision}, {args.threads} threads, {args.steps} timed steps "
        f"after {args.warmup}, best of {args.repeats}; torch {torch.__version__}",
        "",
        "| step | target tok/s (best) | all rounds | vs baseline | tok per CPU-s (best) "
        "| vs baseline | median step ms | peak RSS MiB |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    cpu_best = {v: max(r["tokens_per_cpu_s"] for r in results if r["variant"] == v)
                for v in VARIANTS}  # fmt: skip
    for v in VARIANTS:
        r = best[v]
        rounds = ", ".join(f"{x['tokens_per_s']:.0f}" for x in results if x["variant"] == v)
        lines.append(
            f"| {v} | {r['tokens_per_s']:.0f} | {rounds} | {r['tokens_per_s'] / base:.2f}x | "
            f"{cpu_best[v]:.0f} | {cpu_best[v] / cpu_best['baseline']:.2f}x | "
            f"{r['median_step_ms']:.0f} | {r['peak_rss_mib']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="nmt-preprocess directory (default: toy corpus)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=4096)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--ffn-dim", type=int, default=1024)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--norm", choices=[p.value for p in NormPosition], default="pre")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--only", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        print(json.dumps(run_variant(args)))
        return
    with tempfile.TemporaryDirectory() as workdir:
        if args.data is None:
            args.data = _toy_data(workdir)
        results = []
        for _ in range(args.repeats):
            for variant in VARIANTS:
                cmd = [sys.executable, __file__, *sys.argv[1:], "--data", args.data]
                out = subprocess.run([*cmd, "--only", variant], check=True, capture_output=True,
                                     text=True).stdout  # fmt: skip
                results.append(json.loads(out.strip().splitlines()[-1]))
                print(json.dumps(results[-1]), file=sys.stderr)
    print(_table(results, args))


if __name__ == "__main__":
    main()
