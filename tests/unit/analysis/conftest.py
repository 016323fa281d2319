"""A tiny generated parallel corpus, binarized by the real nmt-preprocess library (no SentencePiece:
pre-segmented words keep it fast)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from nmt_preln.config import PreprocessConfig, Segmentation
from nmt_preln.data.preprocess import preprocess

WORDS = [
    *("haus", "katze", "hund", "baum", "rot", "blau", "gross", "klein", "der", "die"),
    *("das", "und", "ein", "eine", "mit", "auf", "im", "am"),
]


def write_corpus(raw: Path, *, seed: int, sizes: dict[str, int]) -> None:
    """Source: random word strings; target: the words reversed and uppercased (learnable)."""
    rng = random.Random(seed)
    raw.mkdir(parents=True, exist_ok=True)
    for split, n in sizes.items():
        src = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(n)]
        tgt = [" ".join(w.upper() for w in reversed(s.split())) for s in src]
        (raw / f"{split}.de").write_text("\n".join(src) + "\n", encoding="utf-8")
        (raw / f"{split}.en").write_text("\n".join(tgt) + "\n", encoding="utf-8")


def make_data_dir(root: Path, *, sizes: dict[str, int], seed: int = 0) -> str:
    raw = root / "raw"
    write_corpus(raw, seed=seed, sizes=sizes)
    dest = root / "data-bin"
    preprocess(
        PreprocessConfig(
            source_lang="de",
            target_lang="en",
            trainpref=str(raw / "train"),
            validpref=str(raw / "valid"),
            testpref=str(raw / "test"),
            destdir=str(dest),
            segmentation=Segmentation.none,
        )
    )
    return str(dest)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A data directory: 600 train, 20 valid, 20 test pairs of 3-12 words."""
    return make_data_dir(
        tmp_path_factory.mktemp("analysis_data"), sizes={"train": 600, "valid": 20, "test": 20}
    )


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # the CI machine has 2 shared cores
