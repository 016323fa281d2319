"""Fixtures of the data-layer tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.corpus import LEXICON, translated, write_pairs


@pytest.fixture
def corpus(tmp_path: Path) -> Callable[..., str]:
    """Factory: ``corpus("train", 300, seed=1)`` writes tmp_path/raw/train.{de,en}: German-ish
    sentences of 1 to ``max_words`` words and their word-by-word English translations."""

    def make(name: str, n: int, *, seed: int = 0, max_words: int = 8) -> str:
        prefix = tmp_path / "raw" / name
        words = list(LEXICON)
        return str(
            write_pairs(
                prefix, n, seed=seed, words=words, lengths=(1, max_words), target=translated
            )
        )

    return make
