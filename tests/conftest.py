"""Fixtures of the whole suite: one toy data dir and one tiny trained checkpoint per session.

Both are built once, under pytest's session temp folder, and must stay unchanged: a test that
edits or adds files copies them first (``helpers.corpus.copy_tree``). Variants (other sizes,
SentencePiece, another corpus) are built with the same functions of ``helpers``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from helpers.checkpoints import random_checkpoint, train_tiny
from helpers.corpus import make_spm_data, preprocess_dir, write_pairs


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    # Whatever a test (or the trainer, via hardware.num_threads) sets, the next one starts
    # from the same thread count.
    previous = torch.get_num_threads()
    yield
    if torch.get_num_threads() != previous:
        torch.set_num_threads(previous)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Opt-in: one intra-op thread (the cores are shared; tiny models gain nothing from more)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw parallel text: train (240 pairs), valid (60), test (12), de -> en, words w0..w23."""
    raw = tmp_path_factory.mktemp("raw")
    for split, n, seed in (("train", 240, 1), ("valid", 60, 2), ("test", 12, 3)):
        write_pairs(raw / split, n, seed=seed)
    return raw


@pytest.fixture(scope="session")
def data_dir(raw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``raw_dir`` through nmt-preprocess: whitespace segmentation, separate dictionaries."""
    return preprocess_dir(raw_dir, tmp_path_factory.mktemp("data-bin") / "toy")


@pytest.fixture(scope="session")
def trained(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``checkpoint_last.pt`` of the tiny Pre-LN model after 6 updates on ``data_dir``."""
    return train_tiny(data_dir, tmp_path_factory.mktemp("trained"), max_update=6)


@pytest.fixture(scope="session")
def spm_toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``data-bin`` (SentencePiece, joined dictionary; 200/8/12 pairs) and two
    random-weight checkpoints ``a.pt`` (seed 0) and ``b.pt`` (seed 1) for it."""
    root = tmp_path_factory.mktemp("spm_toy")
    data = make_spm_data(root)
    random_checkpoint(data, root / "a.pt", seed=0)
    random_checkpoint(data, root / "b.pt", seed=1)
    return root
