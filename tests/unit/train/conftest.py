"""Fixtures of the trainer tests: a tiny generated data directory, a tiny config, one thread."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from trainer_helpers import make_data_dir, tiny_config

from nmt_preln.config import TrainConfig


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A finished nmt-preprocess directory: 240 training and 40 validation pairs, de->en."""
    return make_data_dir(tmp_path_factory.mktemp("data-bin") / "toy")


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread: the cores are shared and tiny models gain nothing from more.

    Not autouse: the other test modules of this folder keep their own settings.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def make_config(data_dir: str, tmp_path: Path) -> Callable[..., TrainConfig]:
    """``make_config(save="run", **overrides)`` -> a tiny config saving under tmp_path/save."""

    def make(save: str = "run", **overrides: Any) -> TrainConfig:
        return tiny_config(data_dir, tmp_path / save, **overrides)

    return make
