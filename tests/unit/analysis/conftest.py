"""A tiny generated parallel corpus, binarized by the real nmt-preprocess library (no SentencePiece:
pre-segmented words keep it fast)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.corpus import GERMAN_WORDS, preprocess_dir, write_corpus

WORDS = [*GERMAN_WORDS, "das", "und", "ein", "eine", "mit", "auf", "im", "am"]


def make_data_dir(root: Path, *, sizes: dict[str, int], seed: int = 0) -> str:
    """Source: random word strings; target: the words reversed and uppercased (learnable)."""
    raw = write_corpus(
        root / "raw",
        sizes=sizes,
        seed=seed,
        words=WORDS,
        lengths=(3, 12),
        target=lambda ws: " ".join(w.upper() for w in reversed(ws)),
    )
    return str(preprocess_dir(raw, root / "data-bin", splits=tuple(sizes)))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A data directory: 600 train, 20 valid, 20 test pairs of 3-12 words."""
    return make_data_dir(
        tmp_path_factory.mktemp("analysis_data"), sizes={"train": 600, "valid": 20, "test": 20}
    )


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """The CI machine has 2 shared cores: one thread per test (restored afterwards)."""
