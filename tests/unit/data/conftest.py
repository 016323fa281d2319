"""Fixtures of the data-layer tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from data_corpus import parallel_lines, write_pair


@pytest.fixture
def corpus(tmp_path: Path) -> Callable[..., str]:
    """Factory: ``corpus("train", 300, seed=1)`` writes tmp_path/raw/train.{de,en}."""

    def make(name: str, n: int, *, seed: int = 0, max_words: int = 8) -> str:
        de, en = parallel_lines(n, seed=seed, max_words=max_words)
        return write_pair(tmp_path / "raw" / name, de, en)

    return make
