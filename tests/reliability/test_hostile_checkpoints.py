"""Checkpoints from strangers: pickled code never runs; a foreign model is refused by name.

* A file whose unpickling would call a function (here ``open(marker, "w")``, which would
  create a marker file) is refused by ``torch.load(weights_only=True)``, in the zip format,
  torch's legacy format and as a bare pickle, by the library, ``nmt-generate`` and
  ``nmt-train`` (resuming); the marker never appears.
* Resuming in a save directory trained with another architecture or dictionary is refused
  with a line naming the differing setting, instead of a crash inside ``load_state_dict``.
* ``nmt-generate`` with a data directory of another dictionary, or in the reverse direction
  of a joined-dictionary model, says what differs.
"""

from __future__ import annotations

import pickle
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers.corpus import preprocess_dir, write_pairs
from nmt_preln.cli import generate as generate_cli
from nmt_preln.cli import train as train_cli

from nmt_preln.checkpoint import store as ckpt

from .harness import TINY_TRAIN, assert_clean_failure, run_cli, run_main


class _Payload:
    """Unpickling this calls ``open(path, "w")``: a harmless stand-in for any code."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def _write_hostile(path: Path, marker: Path, kind: str) -> None:
    state = {"format_version": ckpt.FORMAT_VERSION, "model": {"w": _Payload(marker)}}
    if kind == "zip":
        torch.save(state, path)
    elif kind == "legacy":
        torch.save(state, path, _use_new_zipfile_serialization=False)
    else:
        with open(path, "wb") as f:
            pickle.dump(state, f)


@pytest.mark.parametrize("kind", ["zip", "legacy", "pickle"])
def test_pickled_code_never_runs(kind: str, tmp_path: Path, data_dir: Path) -> None:
    marker, evil = tmp_path / "marker", tmp_path / "evil.pt"
    _write_hostile(evil, marker, kind)
    with pytest.raises(ckpt.CheckpointError, match="refusing to load"):
        ckpt.load_checkpoint(evil)

    result = run_main(generate_cli.main, [str(data_dir), "--path", str(evil)])
    assert "refusing to load" in assert_clean_failure(result, "nmt-generate")

    save = tmp_path / "save"
    save.mkdir()
    shutil.copyfile(evil, save / ckpt.LAST)  # as if planted in a shared save directory
    argv = [*TINY_TRAIN, f"data.path={data_dir}", f"checkpoint.save_dir={save}", "max_update=1"]
    assert "refusing to load" in assert_clean_failure(run_main(train_cli.main, argv), "nmt-train")
    assert not marker.exists(), "the pickled call ran"


def _train(data: Path, save: Path, *extra: str) -> Any:
    argv = [*TINY_TRAIN, f"data.path={data}", f"checkpoint.save_dir={save}", *extra]
    return run_main(train_cli.main, argv, timeout=120)


@pytest.fixture(scope="module")
def other_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A de-en directory of another corpus: other words, so other dictionaries."""
    raw = tmp_path_factory.mktemp("other-raw")
    for split, n in (("train", 60), ("valid", 8), ("test", 4)):
        write_pairs(raw / split, n, seed=40 + n)
        for lang in ("de", "en"):
            path = raw / f"{split}.{lang}"
            path.write_text(path.read_text().replace("w1", "q1"), encoding="utf-8")
    return preprocess_dir(raw, tmp_path_factory.mktemp("other-bin") / "other")


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ("arch.d_model=32", "arch.d_model"),
        ("arch.norm_position=post", "arch.norm_position"),
        ("+arch=postln_tiny", "arch."),  # another +arch: several settings differ
        ("arch.decoder_layers=2", "arch.decoder_layers"),
        ("arch.activation=gelu", "arch.activation"),  # same tensors, another function
    ],
)
def test_resume_with_another_architecture_is_refused(
    change: str, setting: str, tmp_path: Path, trained: Path
) -> None:
    save = tmp_path / "save"
    shutil.copytree(trained.parent, save)
    data = Path(ckpt.load_checkpoint(trained)["config"]["data"]["path"])
    before = (save / ckpt.LAST).read_bytes()
    extra = [change, "max_update=12"]
    argv = [*TINY_TRAIN, f"data.path={data}", f"checkpoint.save_dir={save}", *extra]
    if change.startswith("+arch="):
        argv = [a for a in argv if not a.startswith(("+arch=", "arch."))] + [change]
    line = assert_clean_failure(run_main(train_cli.main, argv, timeout=120), "nmt-train")
    assert setting in line and str(save / ckpt.LAST) in line, line
    assert (save / ckpt.LAST).read_bytes() == before


def test_resume_with_a_new_dropout_is_allowed(tmp_path: Path, trained: Path) -> None:
    save = tmp_path / "save"
    shutil.copytree(trained.parent, save)
    data = ckpt.load_checkpoint(trained)["config"]["data"]["path"]
    result = _train(Path(data), save, "arch.dropout=0.2", "max_update=8")
    assert result.code == 0, result.stderr
    assert ckpt.load_checkpoint(save / ckpt.LAST)["num_updates"] == 8


def test_resume_with_another_dictionary_is_refused(
    tmp_path: Path, trained: Path, other_data: Path
) -> None:
    save = tmp_path / "save"
    shutil.copytree(trained.parent, save)
    line = assert_clean_failure(_train(other_data, save, "max_update=12"), "nmt-train")
    assert "src_dict" in line and str(other_data) in line
    assert "symbol" in line  # what differs: the sizes or the first differing symbol


def test_generate_with_another_data_directory(trained: Path, other_data: Path) -> None:
    result = run_main(generate_cli.main, [str(other_data), "--path", str(trained)])
    line = assert_clean_failure(result, "nmt-generate")
    assert f"{other_data}/dict.de.txt" in line and "differs" in line and "symbol" in line


def test_generate_with_weights_that_do_not_fit_their_arch(
    tmp_path: Path, trained: Path, data_dir: Path
) -> None:
    state = ckpt.load_checkpoint(trained)
    state["config"]["arch"]["ffn_dim"] = 48  # the weights are those of ffn_dim=32
    forged = tmp_path / "forged.pt"
    ckpt.save_checkpoint(forged, state)
    line = assert_clean_failure(
        run_main(generate_cli.main, [str(data_dir), "--path", str(forged)]), "nmt-generate"
    )
    assert "fc1.weight" in line and "(32, 16)" in line and "(48, 16)" in line


def test_generate_in_the_reverse_direction_of_a_joined_model(tmp_path: Path, raw_dir: Path) -> None:
    joined = preprocess_dir(raw_dir, tmp_path / "joined", joined_dictionary=True)
    save = tmp_path / "save"
    assert _train(joined, save, "max_update=2").code == 0
    argv = [str(joined), "--path", str(save / ckpt.LAST), "--source-lang", "en"]
    argv += ["--target-lang", "de"]
    line = assert_clean_failure(run_main(generate_cli.main, argv), "nmt-generate")
    assert "de->en" in line and "en->de" in line


def test_a_real_nmt_generate_refuses_a_bare_pickle_in_one_line(
    tmp_path: Path, data_dir: Path
) -> None:
    marker, evil = tmp_path / "marker", tmp_path / "evil.pt"
    _write_hostile(evil, marker, "pickle")
    command = [sys.executable, "-m", "nmt_preln.cli.generate", str(data_dir), "--path", str(evil)]
    line = assert_clean_failure(run_cli(command), "nmt-generate")  # torch's warning silenced
    assert "refusing to load" in line
    assert not marker.exists()


@pytest.mark.parametrize(
    ("change", "named"),
    [("activation", "config.arch.activation='gelu'"), ("dictionary", "tgt_dict differs")],
)
def test_average_refuses_same_shapes_of_another_model(
    change: str, named: str, tmp_path: Path, trained: Path
) -> None:
    from nmt_preln.cli import average as average_cli

    state = ckpt.load_checkpoint(trained)
    if change == "activation":
        state["config"]["arch"]["activation"] = "gelu"  # same tensors, another function
    else:
        symbols = state["tgt_dict"]
        symbols[4], symbols[5] = symbols[5], symbols[4]  # same size, other words
    other = tmp_path / "other.pt"
    ckpt.save_checkpoint(other, state)
    argv = ["--inputs", str(trained), str(other), "--output", str(tmp_path / "avg.pt")]
    line = assert_clean_failure(run_main(average_cli.main, argv), "nmt-average")
    assert named in line and str(other) in line, line
    assert not (tmp_path / "avg.pt").exists()
