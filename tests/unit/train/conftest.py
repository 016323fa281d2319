"""Fixtures of the trainer tests: a tiny config on the suite's toy ``data_dir``.

``data_dir`` and the opt-in ``one_thread`` come from ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from trainer_helpers import tiny_config

from nmt_preln.config import TrainConfig


@pytest.fixture
def make_config(data_dir: Path, tmp_path: Path) -> Callable[..., TrainConfig]:
    """``make_config(save="run", **overrides)`` -> a tiny config saving under tmp_path/save."""

    def make(save: str = "run", **overrides: Any) -> TrainConfig:
        return tiny_config(data_dir, tmp_path / save, **overrides)

    return make
