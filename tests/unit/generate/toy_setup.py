"""A tiny preprocessed corpus and random-weight checkpoints in the documented format."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

from nmt_preln.config import ModelConfig, PreprocessConfig, Segmentation
from nmt_preln.data.dictionary import Dictionary
from nmt_preln.data.preprocess import preprocess
from nmt_preln.models.transformer import build_model
from nmt_preln.train.checkpoint import FORMAT_VERSION, config_to_plain, save_checkpoint

WORDS = ["haus", "katze", "hund", "baum", "rot", "blau", "gross", "klein", "der", "die", "und"]


def write_corpus(root: Path, *, sizes: dict[str, int], seed: int = 0) -> None:
    """``root/{split}.de`` and ``.en``: random word strings and their letter-reversed copies."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in sizes.items():
        src = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))) for _ in range(n)]
        tgt = [" ".join(w[::-1] for w in line.split()) for line in src]
        (root / f"{split}.de").write_text("\n".join(src) + "\n", encoding="utf-8")
        (root / f"{split}.en").write_text("\n".join(tgt) + "\n", encoding="utf-8")


def make_data(root: Path, *, segmentation: Segmentation = Segmentation.sentencepiece) -> Path:
    """Preprocess a toy de-en corpus (joined dictionary) into ``root/data-bin``."""
    write_corpus(root / "raw", sizes={"train": 200, "valid": 8, "test": 12})
    raw = root / "raw"
    cfg = PreprocessConfig(
        source_lang="de",
        target_lang="en",
        trainpref=str(raw / "train"),
        validpref=str(raw / "valid"),
        testpref=str(raw / "test"),
        destdir=str(root / "data-bin"),
        joined_dictionary=True,
        segmentation=segmentation,
        spm_vocab_size=60,
    )
    preprocess(cfg)
    return root / "data-bin"


def make_checkpoint(
    data_dir: Path, path: Path, *, seed: int = 0, max_positions: int = 64, num_updates: int = 0
) -> Path:
    """Save a random 1+1-layer d16 model for ``data_dir`` as a checkpoint at ``path``."""
    manifest = json.loads((data_dir / "manifest.json").read_text())
    src_dict = Dictionary.load(data_dir / "dict.de.txt")
    tgt_dict = Dictionary.load(data_dir / "dict.en.txt")
    arch = ModelConfig(
        encoder_layers=1,
        decoder_layers=1,
        d_model=16,
        ffn_dim=32,
        num_heads=2,
        dropout=0.0,
        max_positions=max_positions,
    )
    torch.manual_seed(seed)
    model = build_model(arch, src_dict, tgt_dict)
    spm = {lang: (data_dir / name).read_bytes() for lang, name in manifest["spm_models"].items()}
    state = {
        "format_version": FORMAT_VERSION,
        "model": model.state_dict(),
        "config": {"arch": config_to_plain(arch)},
        "src_dict": src_dict.symbols,
        "tgt_dict": tgt_dict.symbols,
        "spm_models": spm,
        "source_lang": "de",
        "target_lang": "en",
        "num_updates": num_updates,
    }
    save_checkpoint(path, state)
    return path
