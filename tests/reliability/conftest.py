"""Fixtures of the reliability tests: generated toy data and one tiny trained checkpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from nmt_preln.config import PreprocessConfig, Segmentation
from nmt_preln.data.preprocess import preprocess

from .harness import MAX_UPDATE, TINY_TRAIN, read_log, run_argv, start_training, write_corpus


@pytest.fixture(scope="session")
def raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw parallel text: train (240 pairs), valid (60), test (12), de -> en."""
    raw = tmp_path_factory.mktemp("raw")
    write_corpus(raw / "train", 240, seed=1)
    write_corpus(raw / "valid", 60, seed=2)
    write_corpus(raw / "test", 12, seed=3)
    return raw


@pytest.fixture(scope="session")
def data_dir(raw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished nmt-preprocess directory (whitespace segmentation, separate dictionaries)."""
    dest = tmp_path_factory.mktemp("data-bin") / "toy"
    preprocess(
        PreprocessConfig(
            source_lang="de",
            target_lang="en",
            trainpref=str(raw_dir / "train"),
            validpref=str(raw_dir / "valid"),
            testpref=str(raw_dir / "test"),
            destdir=str(dest),
            segmentation=Segmentation.none,
        )
    )
    return dest


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # The machine's two cores are shared; tiny models gain nothing from more threads.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def trained(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of the tiny model after 6 updates (in-process: one torch start-up less)."""
    from nmt_preln.compose import compose_train_config
    from nmt_preln.train.trainer import train

    save = tmp_path_factory.mktemp("trained")
    cfg, _ = compose_train_config(
        [*TINY_TRAIN, f"data.path={data_dir}", f"checkpoint.save_dir={save}", "max_update=6"]
    )
    with torch.random.fork_rng():
        train(cfg)
    return save / "checkpoint_last.pt"


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
