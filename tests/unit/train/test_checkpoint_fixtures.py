"""Checkpoints of earlier formats (tests/fixtures/checkpoints) still load and translate alike."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.checkpoints import translate_lines

from nmt_preln.checkpoint import store as ckpt

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "checkpoints"
CHECKPOINTS = sorted(FIXTURES.glob("tiny_v*.pt"))


def test_there_is_a_fixture_of_the_current_format() -> None:
    assert FIXTURES / f"tiny_v{ckpt.FORMAT_VERSION}.pt" in CHECKPOINTS


@pytest.mark.parametrize("path", CHECKPOINTS, ids=lambda p: p.name)
def test_an_old_checkpoint_loads_for_resuming_and_translates_as_recorded(path: Path) -> None:
    expected = json.loads(path.with_suffix(".json").read_text())
    state = ckpt.load_checkpoint(path, kind="resume")  # every field nmt-train needs to resume
    assert state["format_version"] == ckpt.FORMAT_VERSION  # upgraded in memory
    assert translate_lines(path, expected["sources"], beam=1) == expected["greedy"]
    assert translate_lines(path, expected["sources"], beam=3) == expected["beam3"]


def test_loading_applies_the_upgrades_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    # A pretend format 3: files of format 1 go through UPGRADES[1] and then UPGRADES[2].
    seen: list[int] = []

    def upgrade(version: int) -> Any:
        def step(state: dict[str, Any]) -> dict[str, Any]:
            assert state["format_version"] == version
            seen.append(version)
            return state

        return step

    monkeypatch.setattr(ckpt, "FORMAT_VERSION", 3)
    monkeypatch.setattr(ckpt, "UPGRADES", {1: upgrade(1), 2: upgrade(2)})
    state = ckpt.load_checkpoint(FIXTURES / "tiny_v1.pt", kind="model")
    assert seen == [1, 2] and state["format_version"] == 3
