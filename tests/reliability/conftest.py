"""Fixtures of the reliability tests: one thread, the uninterrupted reference run.

The toy data (``raw_dir``, ``data_dir``) and the tiny checkpoint (``trained``) are the
session fixtures of ``tests/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .harness import MAX_UPDATE, read_log, run_argv, start_training


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Every reliability test runs on one intra-op thread (see ``one_thread``)."""


@pytest.fixture(scope="session")
def reference(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The uninterrupted run's train and valid records (what every resumed run must equal)."""
    save = tmp_path_factory.mktemp("reference")
    process = start_training(run_argv(data_dir, save))
    process.join(timeout=120)
    assert process.exitcode == 0
    records = {"train": read_log(save), "valid": read_log(save, "valid")}
    assert len(records["train"]) == MAX_UPDATE and records["valid"]
    return records
