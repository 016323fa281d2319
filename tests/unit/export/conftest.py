"""The toy corpus of the generate tests, preprocessed once per module."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.corpus import make_spm_data


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_spm_data(tmp_path_factory.mktemp("export"))


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Every export test runs on one thread (restored afterwards by the fixture)."""
