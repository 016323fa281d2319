"""GPU check of issue 6: bf16 matmul rate, training throughput and MFU, decoding speed.

Each section runs in its own process under a time limit (a crash, out-of-memory or timeout
loses that section only, and peak memory is the section's own); the markdown tables come at
the end and every number also goes to ``OUT/results.json``.

1. ``matmul``: ``torch.matmul`` of two random (8192, 8192) bf16 matrices; 10 untimed products,
   then 10 groups of 5 timed with CUDA events; the median gives TFLOP/s (2 n^3 FLOPs a
   product). This measured rate is the MFU denominator (the issue: "at least 50% model-FLOP
   utilisation at transformer_base with bf16, measured against the card's measured bf16
   matmul rate").
2. ``train-eager``, ``train-compiled``: transformer_base (6+6 layers, d_model 512, FFN 2048,
   8 heads, Pre-LN, dropout 0.1, all embeddings shared, 32,000 joined vocabulary) trained
   with bf16 autocast through the real update path: ``build_session`` (fused Adam, label
   smoothing 0.1; ``hardware.compile=true`` for the compiled variant) and ``train_update``.
   The data are random tokens in an nmt-preprocess directory: source lengths uniform in
   10..60, target = source +- 5 (within 10..60), batched by ``batch_by_size`` (length
   buckets, shuffled) at each ``--max-tokens``. Warm-up updates (the compile included) are
   excluded from the rates; each timed update ends in ``torch.cuda.synchronize``. Tokens are
   non-pad tokens, </s> included. Model FLOPs of an update, from the real (unpadded) lengths
   s_i, t_i of its sentences, d = d_model, f = ffn_dim, V = vocabulary::

       P_src = L_enc (4 d^2 + 2 d f) + L_dec 2 d^2     # per source token (cross-attn K, V too)
       P_tgt = L_dec (6 d^2 + 2 d f) + d V             # per target token (output projection)
       FLOPs = 6 (P_src sum_i s_i + P_tgt sum_i t_i)
             + 12 d (L_enc sum_i s_i^2 + L_dec sum_i (t_i^2 / 2 + t_i s_i))   # QK^T and AV

   6 = 2 (forward) + 4 (backward) FLOPs per weight and token; causal self-attention counts
   half its square; embedding lookups, norms, softmax, loss and optimizer are not counted.
   MFU = FLOPs / step time / measured matmul rate.
3. ``decode``: ``Translator`` (what nmt-generate runs) with the checkpoint and test split of
   ``--gpu-dir``, beam 4, batches of 64 and 128 sentences, fp32 and bf16 (``precision``); one
   untimed warm-up batch each; sentences/s, tokens/s (best hypotheses without </s>),
   sacreBLEU, and how many best hypotheses equal the first row's. CTranslate2 on CUDA too
   when it is installed.

    python3 benchmarks/bench_gpu.py --gpu-dir .gpu --out OUT     # on the GPU: about 5 min
    python benchmarks/bench_gpu.py --smoke --gpu-dir .gpu         # CPU, tiny model
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nmt_preln.config import (
    CheckpointConfig,
    DataConfig,
    Device,
    HardwareConfig,
    ModelConfig,
    Precision,
    SearchConfig,
    TrainConfig,
)

SECTIONS = ("matmul", "train-eager", "decode", "train-compiled")
LIMITS_S = {"matmul": 60, "train-eager": 120, "decode": 150}  # train-compiled: what is left
Row = dict[str, Any]


def _device(args: argparse.Namespace) -> torch.device:
    return torch.device("cpu" if args.smoke else "cuda")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"[:200]


def section_matmul(args: argparse.Namespace) -> list[Row]:
    device = _device(args)
    n, dtype = (256, torch.float32) if args.smoke else (8192, torch.bfloat16)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(10):
        torch.matmul(a, b)
    _sync(device)
    times = []
    for _ in range(10):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(5):
                torch.matmul(a, b)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1000 / 5)
        else:
            t = time.perf_counter()
            for _ in range(5):
                torch.matmul(a, b)
            times.append((time.perf_counter() - t) / 5)
    sec = float(np.median(times))
    return [{"n": n, "dtype": str(dtype), "ms": 1000 * sec, "tflops": 2 * n**3 / sec / 1e12}]


def write_synthetic_data(dest: str, *, vocab: int, sentences: int, seed: int = 1) -> None:
    """An nmt-preprocess directory of random tokens (train and valid, joined dictionary)."""
    from nmt_preln.data.dictionary import Dictionary
    from nmt_preln.data.indexed_dataset import IndexedDatasetBuilder

    os.makedirs(dest, exist_ok=True)
    dictionary = Dictionary()
    for i in range(vocab - len(dictionary)):
        dictionary.add_symbol(f"w{i}")
    for lang in ("de", "en"):
        dictionary.save(os.path.join(dest, f"dict.{lang}.txt"))
    rng = np.random.default_rng(seed)
    splits = {"train": sentences, "valid": 64}
    for split, count in splits.items():
        src_sizes = rng.integers(10, 61, size=count)
        tgt_sizes = np.clip(src_sizes + rng.integers(-5, 6, size=count), 10, 60)
        for lang, sizes in (("de", src_sizes), ("en", tgt_sizes)):
            tokens = rng.integers(dictionary.nspecial, vocab, size=int(sizes.sum()))
            tokens[np.cumsum(sizes) - 1] = dictionary.eos  # every sentence ends in </s>
            with IndexedDatasetBuilder(f"{dest}/{split}.de-en.{lang}", vocab_size=vocab) as b:
                b.add_items(tokens, sizes)
                b.finalize()
    manifest = {"format_version": 1, "source_lang": "de", "target_lang": "en", "splits": splits}
    manifest |= {"segmentation": "none", "spm_models": {}, "joined_dictionary": True}
    Path(dest, "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def model_flops(arch: ModelConfig, vocab: int, src: np.ndarray, tgt: np.ndarray) -> float:
    """Training FLOPs of one update on sentences of lengths ``src``, ``tgt`` (see above)."""
    d, f, le, ld = arch.d_model, arch.ffn_dim, arch.encoder_layers, arch.decoder_layers
    s, t = src.astype(np.float64), tgt.astype(np.float64)
    p_src = le * (4 * d * d + 2 * d * f) + ld * 2 * d * d
    p_tgt = ld * (6 * d * d + 2 * d * f) + d * vocab
    attention = 12 * d * (le * (s * s).sum() + ld * (t * t / 2 + t * s).sum())
    return float(6 * (p_src * s.sum() + p_tgt * t.sum()) + attention)


def _train_config(args: argparse.Namespace, *, compiled: bool, save_dir: str) -> TrainConfig:
    layers, d, ffn = (1, 64, 128) if args.smoke else (6, 512, 2048)  # transformer_base
    arch = ModelConfig(
        name="smoke" if args.smoke else "transformer_base", encoder_layers=layers,
        decoder_layers=layers, d_model=d, ffn_dim=ffn, num_heads=8, dropout=0.1,
        share_all_embeddings=True,
    )  # fmt: skip
    device = Device(_device(args).type)
    hardware = HardwareConfig(device=device, precision=Precision.bf16, compile=compiled)
    return TrainConfig(
        arch=arch, data=DataConfig(path=args.synthetic, num_workers=0), hardware=hardware,
        checkpoint=CheckpointConfig(save_dir=save_dir), log_interval=10**9,
        log_layer_grad_norms=False, progress_bar=False,
    )  # fmt: skip


def section_train(args: argparse.Namespace, *, compiled: bool) -> list[Row]:
    from nmt_preln.data.collate import collate_indices
    from nmt_preln.train.batch_plan import batch_by_size
    from nmt_preln.train.distributed import DistributedContext
    from nmt_preln.train.session import build_session

    device, rows = _device(args), []
    with tempfile.TemporaryDirectory() as save_dir:
        cfg = _train_config(args, compiled=compiled, save_dir=save_dir)
        session = build_session(cfg, DistributedContext(), device.type)
        data, pad = session.train_data, session.train_data.src_dict.pad
        assert data.tgt_sizes is not None
        for max_tokens in args.max_tokens:
            order = batch_by_size(data.src_sizes, data.tgt_sizes, max_tokens=max_tokens,
                                  max_sentences=0, seed=1, epoch=1)  # fmt: skip
            chosen = order[: args.warmup + args.steps]
            batches = [collate_indices(data, b).to(device) for b in chosen]  # type: ignore[arg-type]
            row = _time_updates(args, session, batches, compiled=compiled)
            timed = slice(args.warmup, args.warmup + row["steps"])
            sec = row.pop("seconds")
            flops = sum(
                model_flops(cfg.arch, len(data.src_dict), data.src_sizes[b], data.tgt_sizes[b])
                for b in chosen[timed]
            )
            row.update(
                variant="compiled" if compiled else "eager", max_tokens=max_tokens,
                sentences=int(np.mean([len(b) for b in batches[timed]])),
                tgt_tok_s=sum(b.ntokens for b in batches[timed]) / sec,
                src_tok_s=sum(int(b.src_tokens.ne(pad).sum()) for b in batches[timed]) / sec,
                model_tflops=flops / sec / 1e12,
            )  # fmt: skip
            print(f"train {row}", file=sys.stderr, flush=True)
            rows.append(row)
        session.metrics.close()
    return rows


def _time_updates(
    args: argparse.Namespace, session: Any, batches: list[Any], *, compiled: bool
) -> Row:
    """Warm-up updates, then timed ones until ``args.steps`` or ``args.step_budget_s``."""
    from nmt_preln.train.trainer import PlannedUpdate, train_update

    device = session.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def update(batch: Any) -> None:
        planned = PlannedUpdate(batches=[], ntokens=batch.ntokens, nsentences=len(batch), end=0)
        train_update(session, [batch], planned)
        session.metrics.pending.clear()  # keep no history

    start = time.perf_counter()
    for batch in batches[: args.warmup]:
        update(batch)
    _sync(device)
    warmup_s, times = time.perf_counter() - start, []
    for batch in batches[args.warmup :]:
        t = time.perf_counter()
        update(batch)
        _sync(device)
        times.append(time.perf_counter() - t)
        if sum(times) > args.step_budget_s:
            break
    return {
        "steps": len(times), "seconds": sum(times), "step_ms": 1000 * float(np.median(times)),
        "warmup_s": warmup_s,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
        "graphs": torch._dynamo.utils.counters["stats"]["unique_graphs"] if compiled else 0,
    }  # fmt: skip


def section_decode(args: argparse.Namespace) -> list[Row]:
    import sacrebleu
    import sentencepiece as spm

    from nmt_preln.data.dataset import LanguagePairDataset
    from nmt_preln.search.source_items import SourceItem
    from nmt_preln.search.translator import Translator, load_ensemble

    device = _device(args)
    data_dir, path = os.path.join(args.gpu_dir, "data"), os.path.join(args.gpu_dir, "model.pt")
    data = LanguagePairDataset(data_dir, "test")
    count = min(args.sentences, len(data))
    items = [SourceItem(id=i, src=data.src[i]) for i in range(count)]
    ensemble = load_ensemble(path, device=device)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(data_dir, "spm.model"))
    tgt_dict, eos = ensemble.tgt_dict, ensemble.tgt_dict.eos
    assert data.tgt is not None
    refs = [sp.decode([tgt_dict[int(t)] for t in data.tgt[i][:-1]]) for i in range(count)]

    def row(engine: str, precision: str, batch: int, sec: float, pieces: list[list[str]]) -> Row:
        bleu = sacrebleu.corpus_bleu([sp.decode(p) for p in pieces], [refs]).score
        r = {"engine": engine, "precision": precision, "batch": batch, "seconds": sec}
        r |= {"sent_s": count / sec, "tok_s": sum(map(len, pieces)) / sec, "bleu": bleu}
        print(f"decode {r}", file=sys.stderr, flush=True)
        return r | {"pieces": pieces}

    rows: list[Row] = []
    deadline = time.perf_counter() + args.decode_budget_s
    for precision in (Precision.fp32, Precision.bf16):
        for batch_size in args.decode_batch:
            if time.perf_counter() > deadline:
                rows.append({"engine": "nmt-preln", "error": "skipped: --decode-budget-s"})
                continue
            translator = Translator(
                ensemble, search=SearchConfig(beam=4, max_len_b=200), device=device,
                batch_size=batch_size, precision=precision,
            )  # fmt: skip
            translator.translate(items[:batch_size])  # warm-up: kernels, allocator
            _sync(device)
            t = time.perf_counter()
            hyps = translator.translate(items)
            _sync(device)
            sec = time.perf_counter() - t
            best = [[tgt_dict[tok] for tok in h[0].tokens if tok != eos] for h in hyps]
            rows.append(row("nmt-preln", precision.value, batch_size, sec, best))
    sources = [[data.src_dict[int(t)] for t in data.src[i][:-1]] for i in range(count)]
    rows += _ctranslate2(args, path, sources, row)
    first: list[list[str]] = next((r["pieces"] for r in rows if "pieces" in r), [])
    for r in rows:
        if "pieces" in r:
            r["same"] = sum(a == b for a, b in zip(r.pop("pieces"), first, strict=True))
    return rows


def _ctranslate2(args: argparse.Namespace, path: str, sources: list[list[str]], row: Any) -> list:
    try:
        import ctranslate2
    except ImportError:
        print("ctranslate2: not available on this machine", file=sys.stderr, flush=True)
        return [{"engine": "ctranslate2", "error": "not available on this machine"}]
    from nmt_preln.export.ctranslate2 import export_ctranslate2

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(export_ctranslate2(path, os.path.join(tmp, "ct2")))
        for compute_type in ("float32", "bfloat16"):
            for batch in args.decode_batch:
                try:
                    translator = ctranslate2.Translator(
                        model_dir, device=_device(args).type, compute_type=compute_type
                    )
                    options = {"beam_size": 4, "max_batch_size": batch, "max_decoding_length": 200}
                    translator.translate_batch(sources[:batch], **options)  # warm-up
                    t = time.perf_counter()
                    out = [r.hypotheses[0] for r in translator.translate_batch(sources, **options)]
                    rows.append(
                        row("ctranslate2", compute_type, batch, time.perf_counter() - t, out)
                    )
                except Exception as e:  # e.g. no bfloat16 on this device
                    rows.append({"engine": "ctranslate2", "precision": compute_type,
                                 "batch": batch, "error": _one_line(e)})  # fmt: skip
    return rows


def run_section(args: argparse.Namespace) -> None:
    """In the child process: run ``args.section``, write its rows (or its error) as JSON."""
    if args.smoke:
        torch.set_num_threads(1)  # spinning OpenMP threads crawl on shared, loaded cores
    try:
        if args.section == "matmul":
            result: dict[str, Any] = {"rows": section_matmul(args)}
        elif args.section == "decode":
            result = {"rows": section_decode(args)}
        else:
            result = {"rows": section_train(args, compiled=args.section == "train-compiled")}
    except Exception as e:  # one line in the table, the traceback in the log
        traceback.print_exc()
        result = {"error": _one_line(e)}
    Path(args.result).write_text(json.dumps(result), encoding="utf-8")


def _spawn(args: argparse.Namespace, section: str, *, timeout: float, workdir: str) -> dict:
    result = os.path.join(workdir, f"{section}.json")
    cmd = [sys.executable, __file__, *sys.argv[1:], "--section", section, "--result", result,
           "--synthetic", args.synthetic]  # fmt: skip
    print(f"\n## {section} (limit {timeout:.0f} s)", flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, start_new_session=True)  # its compile workers die with it
    try:
        proc.wait(timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    sec = time.perf_counter() - start
    print(f"{section}: {sec:.0f} s, exit status {proc.returncode}", flush=True)
    if os.path.exists(result):
        return {**json.loads(Path(result).read_text(encoding="utf-8")), "wall_s": sec}
    reason = f"killed after {sec:.0f} s (time limit)" if proc.returncode == -9 else "crashed"
    return {"error": f"{reason}, exit status {proc.returncode}", "wall_s": sec}


def _f(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(results: dict[str, dict], args: argparse.Namespace) -> str:
    """The markdown tables of every section (a failed section is one line)."""
    mm = (results.get("matmul", {}).get("rows") or [{}])[0]
    rate = mm.get("tflops")
    where = "smoke, CPU" if args.smoke else torch.cuda.get_device_name()
    lines = [f"# GPU check: {where}, torch {torch.__version__}, CUDA {torch.version.cuda}", "",
             f"measured matmul: {_f(rate, '.1f')} TFLOP/s ({mm.get('dtype')}, n={mm.get('n')}, "
             f"{_f(mm.get('ms'), '.3f')} ms a product)"]  # fmt: skip
    lines += [f"\n{name}: ERROR {r['error']}" for name, r in results.items() if "error" in r]
    lines += ["", "| train | max_tokens | sent/batch | step ms | tgt tok/s | src tok/s | model "
              f"TFLOP/s | MFU | peak GiB | warm-up s ({args.warmup} upd.) | steps | graphs |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in [
        r for s in ("train-eager", "train-compiled") for r in results.get(s, {}).get("rows", [])
    ]:
        mfu = r["model_tflops"] / rate if rate else None
        lines.append(
            f"| {r['variant']} | {r['max_tokens']} | {r['sentences']} | {r['step_ms']:.1f} | "
            f"{r['tgt_tok_s']:.0f} | {r['src_tok_s']:.0f} | {r['model_tflops']:.2f} | "
            f"{_f(mfu, '.1%')} | {_f(r['peak_gib'], '.1f')} | {r['warmup_s']:.1f} | "
            f"{r['steps']} | {r['graphs']} |"
        )
    lines += ["", "| decode | precision | batch | seconds | sent/s | tok/s | BLEU | same as "
              "row 1 |", "|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in results.get("decode", {}).get("rows", []):
        head = f"| {r['engine']} | {r.get('precision', '-')} | {r.get('batch', '-')} |"
        if "error" in r:
            lines.append(f"{head} {r['error']} | | | | |")
        else:
            lines.append(f"{head} {r['seconds']:.2f} | {r['sent_s']:.0f} | {r['tok_s']:.0f} | "
                         f"{r['bleu']:.2f} | {r['same']} |")  # fmt: skip
    return "\n".join(lines)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--gpu-dir", default=".gpu", help="model.pt and data/ (its test split)")
    add("--out", help="write results.json here")
    add("--smoke", action="store_true", help="CPU, tiny model, few steps and sentences")
    add("--budget-s", type=float, default=320, help="all sections together")
    add("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    add("--max-tokens", type=int, nargs="+")
    add("--warmup", type=int, help="untimed updates at each --max-tokens")
    add("--steps", type=int, help="timed updates at each --max-tokens")
    add("--step-budget-s", type=float, default=30, help="stop timing updates after this")
    add("--sentences", type=int, help="test sentences to translate")
    add("--decode-batch", type=int, nargs="+")
    add("--decode-budget-s", type=float, default=90, help="start no configuration after this")
    for hidden in ("--section", "--result", "--synthetic"):
        add(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    smoke = {"max_tokens": [2000, 4000], "warmup": 1, "steps": 3, "sentences": 24,
             "decode_batch": [8, 16]}  # fmt: skip
    full = {"max_tokens": [12000, 32000], "warmup": 3, "steps": 20, "sentences": 1000,
            "decode_batch": [64, 128]}  # fmt: skip
    for key, value in (smoke if args.smoke else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main() -> None:
    args = _parse()
    if args.section:
        return run_section(args)
    if not args.smoke and not torch.cuda.is_available():
        sys.exit("bench_gpu.py: no CUDA device (use --smoke on a CPU)")
    start, results = time.perf_counter(), {}
    with tempfile.TemporaryDirectory() as workdir:
        args.synthetic = os.path.join(workdir, "synthetic")
        vocab, sentences = (1000, 3000) if args.smoke else (32000, 60000)
        write_synthetic_data(args.synthetic, vocab=vocab, sentences=sentences)
        for section in args.sections:
            left = args.budget_s - (time.perf_counter() - start)
            limit = min(LIMITS_S.get(section, left), left)
            results[section] = _spawn(args, section, timeout=limit, workdir=workdir)
    print(f"\n{report(results, args)}\n\ntotal {time.perf_counter() - start:.0f} s", flush=True)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        Path(args.out, "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
