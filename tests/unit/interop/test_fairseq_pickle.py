"""The restricted loading of fairseq checkpoints: plain data in, nothing from the file run."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nmt_preln.errors import UserError
from nmt_preln.interop.fairseq_pickle import load_fairseq_state, model_args, task_args

FIXTURES = Path(__file__).parents[2] / "fixtures" / "fairseq"


class _WritesMarker:
    """Unpickling this calls builtins.open(marker, "w"): the file appears if code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


class _RunsShell:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize(("payload", "name"), [(_WritesMarker, "io.open"), (_RunsShell, "system")])
def test_a_reduce_payload_is_refused_in_one_line_and_never_runs(
    tmp_path: Path, payload: type, name: str
) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    torch.save({"cfg": {"model": argparse.Namespace(arch="transformer")}, "model": {},
                "extra_state": payload(marker)}, path)  # fmt: skip
    with pytest.raises(
        UserError, match=rf"evil\.pt: refusing to load: it pickles \S*{name}"
    ) as info:
        load_fairseq_state(str(path))
    assert "\n" not in str(info.value)
    assert not marker.exists()


def test_the_fixture_loads_with_its_namespace_and_numpy_scalars(tmp_path: Path) -> None:
    state = load_fairseq_state(str(FIXTURES / "pre-ln.pt"))
    args = model_args(state, path="x")
    assert args["arch"] == "transformer_iwslt_de_en" and args["encoder_normalize_before"] is True
    assert task_args(state)["_name"] == "translation"
    assert all(isinstance(t, torch.Tensor) for t in state["model"].values())
    path = tmp_path / "numpy.pt"
    torch.save({**state, "extra_state": {"best": np.float64(2.5), "n": np.int64(3)}}, path)
    assert load_fairseq_state(str(path))["extra_state"]["best"] == 2.5


def test_old_checkpoints_keep_their_options_in_args(tmp_path: Path) -> None:
    path = tmp_path / "old.pt"
    torch.save(
        {"args": argparse.Namespace(arch="transformer", task="translation"), "model": {}}, path
    )
    state = load_fairseq_state(str(path))
    assert model_args(state, path="old.pt")["arch"] == "transformer"
    assert task_args(state)["task"] == "translation"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "cannot read as a torch checkpoint"),
        (b"PK\x03\x04 truncated", "cannot read as a torch checkpoint"),
        (None, "not a fairseq checkpoint"),
    ],
)
def test_unreadable_files_fail_in_one_line(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "bad.pt"
    if content is None:
        torch.save([1, 2, 3], path)
    else:
        path.write_bytes(content)
    with pytest.raises(UserError, match=message) as info:
        load_fairseq_state(str(path))
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="no such checkpoint"):
        load_fairseq_state(str(tmp_path / "missing.pt"))


def test_nested_dataclass_options_are_flattened_to_the_command_line_names() -> None:
    state = {"cfg": {"model": {"_name": "transformer", "encoder": {"embed_dim": 64, "layers": 3},
                               "decoder": {"normalize_before": True}, "dropout": 0.2}}}  # fmt: skip
    args = model_args(state, path="x")
    assert args == {
        "_name": "transformer",
        "encoder_embed_dim": 64,
        "encoder_layers": 3,
        "decoder_normalize_before": True,
        "dropout": 0.2,
    }
