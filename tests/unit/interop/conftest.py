"""Fixtures of the fairseq interop tests: the committed fairseq files and edited copies."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

FIXTURES = Path(__file__).parents[2] / "fixtures" / "fairseq"


@pytest.fixture
def data_bin(tmp_path: Path) -> Path:
    """A copy of the fixture data-bin (fairseq-preprocess output), not yet adopted."""
    return Path(shutil.copytree(FIXTURES / "data-bin", tmp_path / "data-bin"))


@pytest.fixture
def edited(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``edited("pre-ln", args={"layernorm_embedding": True})`` re-saves a fixture
    checkpoint with changed model options (``args``) or state (``edit(state)``)."""

    def make(
        name: str, *, args: dict[str, Any] | None = None, edit: Callable[[dict], None] | None = None
    ) -> Path:
        # Our own committed fixture, so the full unpickler is fine here.
        state = torch.load(FIXTURES / f"{name}.pt", map_location="cpu", weights_only=False)
        for key, value in (args or {}).items():
            setattr(state["cfg"]["model"], key, value)
        if edit is not None:
            edit(state)
        path = tmp_path / f"{name}-edited.pt"
        torch.save(state, path)
        return path

    return make
