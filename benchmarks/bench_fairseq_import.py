#!/usr/bin/env python3
"""The fairseq checkpoint import, proved on decoding: fairseq-generate vs nmt-generate.

A small fairseq transformer is trained on the pre-segmented toy corpus (fairseq 0.12.2 in its
own venv, never a dependency of nmt-preln), decoded by fairseq-generate, imported with
``nmt-import fairseq``, and decoded by nmt-generate with the same beam and length penalty.
The figure is the share of test sentences whose best hypotheses are identical token strings.

    python benchmarks/bench_fairseq_import.py --work /tmp/fairseq-import --variant pre
    python benchmarks/bench_fairseq_import.py --work /tmp/fairseq-import-post --variant post

``--variant pre``: transformer_iwslt_de_en, Pre-LN, all embeddings shared, sinusoidal
positions; ``post``: transformer, Post-LN, separate embeddings and output projection, learned
positions. Writes WORK/result.json; docs/FAIRSEQ.md quotes the figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NMT_BIN = Path(sys.executable).parent
VARIANTS = {
    "pre": ["--arch", "transformer_iwslt_de_en", "--encoder-normalize-before",
            "--decoder-normalize-before", "--share-all-embeddings"],
    "post": ["--arch", "transformer", "--encoder-learned-pos", "--decoder-learned-pos"],
}  # fmt: skip


def run(cmd: list[str], *, log: Path, threads: int) -> float:
    """Run a command with its output in ``log``; return its wall time (s)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    if proc.returncode:
        sys.exit(f"{cmd[0]} failed (exit {proc.returncode}), see {log}")
    return time.perf_counter() - start


def hypotheses(path: Path) -> dict[int, tuple[float, str]]:
    """id -> (score, pieces) of the H- lines (first = best) of a fairseq-format output."""
    best: dict[int, tuple[float, str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"H-(\d+)\t(\S+)\t?(.*)$", line):
            best.setdefault(int(m[1]), (float(m[2]), m[3]))
    return best


def segment_corpus(work: Path, *, train: int, test: int) -> None:
    spec = importlib.util.spec_from_file_location(
        "segment", ROOT / "tests" / "fixtures" / "fairseq" / "segment.py"
    )
    assert spec and spec.loader
    segment = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(segment)
    raw, seg = work / "raw", work / "seg"
    subprocess.run(
        [str(NMT_BIN / "nmt-toy-corpus"), "--out", str(raw), "--train", str(train),
         "--valid", "500", "--test", str(test), "--seed", "1"],
        check=True, capture_output=True,
    )  # fmt: skip
    seg.mkdir(exist_ok=True)
    for split in ("train", "valid", "test"):
        for lang in ("de", "en"):
            lines = (raw / f"{split}.{lang}").read_text(encoding="utf-8").splitlines()
            text = "".join(segment.segment(line) + "\n" for line in lines)
            (seg / f"{split}.{lang}").write_text(text, encoding="utf-8")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--variant", choices=sorted(VARIANTS), default="pre")
    p.add_argument("--fairseq", type=Path, default=Path("/opt/peers/fairseq"))
    p.add_argument("--train", type=int, default=20000)
    p.add_argument("--test", type=int, default=500)
    p.add_argument("--max-update", type=int, default=800)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--lenpen", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=1)  # 2 threads crawl on a shared machine
    a = p.parse_args()
    fs, work, t = a.fairseq / "bin", a.work, a.threads
    work.mkdir(parents=True, exist_ok=True)
    segment_corpus(work, train=a.train, test=a.test)
    data = work / "data-bin"
    run([str(fs / "fairseq-preprocess"), "--source-lang", "de", "--target-lang", "en",
         "--trainpref", str(work / "seg/train"), "--validpref", str(work / "seg/valid"),
         "--testpref", str(work / "seg/test"), "--destdir", str(data), "--joined-dictionary",
         "--workers", "1"], log=work / "preprocess.log", threads=t)  # fmt: skip
    model = [
        "--encoder-layers", "2", "--decoder-layers", "2", "--encoder-embed-dim", "64",
        "--decoder-embed-dim", "64", "--encoder-ffn-embed-dim", "128",
        "--decoder-ffn-embed-dim", "128", "--encoder-attention-heads", "4",
        "--decoder-attention-heads", "4", *VARIANTS[a.variant],
    ]  # fmt: skip
    train_s = run([str(fs / "fairseq-train"), str(data), *model, "--optimizer", "adam",
                   "--adam-betas", "(0.9,0.98)", "--lr", "5e-3", "--lr-scheduler", "inverse_sqrt",
                   "--warmup-updates", "100", "--criterion", "label_smoothed_cross_entropy",
                   "--label-smoothing", "0.1", "--dropout", "0.1", "--max-tokens", "2048",
                   "--max-update", str(a.max_update), "--save-dir", str(work / "ckpt"),
                   "--no-epoch-checkpoints", "--cpu", "--num-workers", "0", "--seed", "1"],
                  log=work / "train.log", threads=t)  # fmt: skip
    ckpt = work / "ckpt" / "checkpoint_last.pt"
    search = ["--beam", str(a.beam), "--lenpen", str(a.lenpen), "--batch-size", "64"]
    fairseq_s = run([str(fs / "fairseq-generate"), str(data), "--path", str(ckpt),
                     "--gen-subset", "test", "--cpu", *search],
                    log=work / "fairseq-generate.txt", threads=t)  # fmt: skip
    run([str(NMT_BIN / "python"), "-m", "nmt_preln.cli.import_", "fairseq-data", str(data)],
        log=work / "adopt.log", threads=t)  # fmt: skip
    imported = work / "imported.pt"
    run([str(NMT_BIN / "python"), "-m", "nmt_preln.cli.import_", "fairseq", str(ckpt),
         "--out", str(imported), "--data", str(data), "--force"],
        log=work / "import.log", threads=t)  # fmt: skip
    ours_s = run([str(NMT_BIN / "nmt-generate"), str(data), "--path", str(imported),
                  "--gen-subset", "test", "--device", "cpu", *search],
                 log=work / "nmt-generate.txt", threads=t)  # fmt: skip
    theirs, ours = hypotheses(work / "fairseq-generate.txt"), hypotheses(work / "nmt-generate.txt")
    ids = sorted(theirs)
    same = [i for i in ids if ours.get(i, (0.0, None))[1] == theirs[i][1]]
    score_diff = max(abs(ours[i][0] - theirs[i][0]) for i in same) if same else None
    result = {
        "variant": a.variant, "sentences": len(ids), "identical_best": len(same),
        "identical_fraction": len(same) / len(ids) if ids else 0.0,
        "max_score_diff_when_identical": score_diff, "beam": a.beam, "lenpen": a.lenpen,
        "fairseq_train_s": round(train_s, 1), "fairseq_generate_s": round(fairseq_s, 1),
        "nmt_generate_s": round(ours_s, 1), "max_update": a.max_update,
        "differing_ids": [i for i in ids if i not in set(same)][:20],
    }  # fmt: skip
    (work / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
