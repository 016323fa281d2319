"""Checkpoints: plain-type dicts, written atomically, loaded without running pickled code.

A checkpoint is a dict of plain types only (tensors, numbers, strings, bytes, lists, dicts),
so ``torch.load(weights_only=True)`` can read it and a crafted file cannot execute code.
File names follow fairseq: ``checkpoint_last.pt``, ``checkpoint_best.pt``,
``checkpoint{epoch}.pt`` and ``checkpoint_{epoch}_{update}.pt``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import random
import re
import shutil
import warnings
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import torch

from nmt_preln.atomic_file import atomic_write
from nmt_preln.checkpoint.schema import (
    CheckpointError,
    Kind,
    model_config_from_plain,
    state_mismatch,
    validate_state,
)
from nmt_preln.config import CheckpointConfig

if TYPE_CHECKING:
    from nmt_preln.models.transformer import Transformer

__all__ = [
    "BEST",
    "EPOCH_NAME",
    "FORMAT_VERSION",
    "LAST",
    "UPDATE_NAME",
    "UPGRADES",
    "CheckpointError",
    "capture_rng_state",
    "checkpoint_names",
    "config_to_plain",
    "copy_checkpoint",
    "load_checkpoint",
    "load_model_from_checkpoint",
    "model_config_from_plain",
    "prune_checkpoints",
    "restore_rng_state",
    "save_checkpoint",
    "state_mismatch",
]

FORMAT_VERSION = 1
# How a state of format v becomes one of format v + 1, applied in order when an older file is
# loaded. Format 1 is the first. Changing the format means: bump FORMAT_VERSION, add
# UPGRADES[old] here, and keep a small checkpoint of the old format in
# tests/fixtures/checkpoints/ (its README says how), so that the upgrade is tested on a real file.
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
LAST = "checkpoint_last.pt"
# config.arch settings that do not change what the weights compute (a label, the init, the
# regularization): resuming and averaging accept checkpoints that differ only in these.
WEIGHT_NEUTRAL_ARCH = frozenset(
    {"name", "init", "dropout", "attention_dropout", "activation_dropout"}
)
BEST = "checkpoint_best.pt"
# fairseq's numbered names, for pruning and for nmt-average: checkpoint3.pt (group 1: the epoch)
# and checkpoint_3_12000.pt (groups 1, 2: epoch and update).
EPOCH_NAME = re.compile(r"checkpoint(\d+)\.pt")
UPDATE_NAME = re.compile(r"checkpoint_(\d+)_(\d+)\.pt")
# What weights_only loading accepts; anything else would make the file unloadable later.
_PLAIN = (str, bytes, int, float, bool, type(None), torch.Tensor, torch.Size, torch.dtype)


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(key, f"{where} key")
            _check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif not isinstance(value, _PLAIN) or isinstance(value, Enum):
        raise TypeError(f"checkpoint {where} is a {type(value).__name__}, not a plain type")


def _write_atomically(path: Path, write: Callable[[IO[Any]], object]) -> None:
    """Call ``write(file)`` on a temp file that replaces ``path`` (:func:`atomic_write`)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, binary=True) as f:
            write(f)
    except (OSError, RuntimeError) as e:
        # torch's zip writer reports a full disk as a RuntimeError, not an OSError.
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0]
        raise CheckpointError(f"cannot write checkpoint {path}: {reason}") from e


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: the old file stays intact if anything fails.

    Args:
        path: destination; its directory is created if needed.
        state: a dict of plain types (see the module docstring), usually with the keys listed
            in docs/INTERNALS.md.

    Raises:
        TypeError: when ``state`` holds a non-plain object (a bug: it could not be loaded).
        CheckpointError: when the file cannot be written (disk full, no permission...).
    """
    _check_plain(state, "state")
    _write_atomically(Path(path), lambda f: torch.save(state, f))


def copy_checkpoint(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Copy a written checkpoint to ``dst`` atomically (checkpoint_last.pt -> _best.pt ...)."""
    try:
        source = open(src, "rb")  # noqa: SIM115 (closed below; the write may raise)
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {src}: {e.strerror}") from e
    with source:
        _write_atomically(Path(dst), lambda f: shutil.copyfileobj(source, f))


def load_checkpoint(path: str | os.PathLike[str], *, kind: Kind = "resume") -> dict[str, Any]:
    """Read a checkpoint onto the CPU without executing any pickled code, and validate it.

    Every field present is checked for type and range (``checkpoint_schema``); ``kind`` says
    which must be present: ``resume`` (the default: everything nmt-train writes) or ``model``
    (the model, its config.arch and dictionaries: decoding, export, averaging).

    Raises:
        CheckpointError: the file is missing, truncated, not a checkpoint, holds objects
            that are not plain data, has another ``format_version``, or a field that is
            missing, mistyped or out of range (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of foreign files: the error below says more.
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"refusing to load {path}: it is not an nmt-preln checkpoint or it holds objects "
            "that are not plain data (loading them could run code)"
        ) from e
    except Exception as e:  # torch raises RuntimeError, EOFError, ValueError... on bad files
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"cannot read checkpoint {path} (truncated?): {reason}") from e
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"{path} is not an nmt-preln checkpoint (no format_version)")
    version = state["format_version"]
    if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format_version {version!r}; this version of "
            f"nmt-preln reads format_version 1 to {FORMAT_VERSION}"
        )
    while version < FORMAT_VERSION:  # older files are upgraded in memory, never rewritten
        state = UPGRADES[version](state)
        version += 1
        state["format_version"] = version
    try:
        return validate_state(state, source=f"checkpoint {path}", kind=kind)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, RuntimeError) as e:
        # A backstop: the schema names the field for every case it knows; a shape of data
        # it did not foresee must still be one line, not a traceback.
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"checkpoint {path}: malformed ({reason})") from e


def capture_rng_state() -> dict[str, Any]:
    """The python, numpy, torch and (when present) CUDA generator states, as plain types."""
    version, internal, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=True)
    assert isinstance(numpy_state, tuple)  # legacy=True always gives the tuple form
    name, keys, pos, has_gauss, cached = numpy_state
    return {
        "python": [version, list(internal), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`capture_rng_state`'s output (CUDA states only on devices that exist)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available():
        for device, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, device=device)


def config_to_plain(cfg: Any) -> Any:
    """A config dataclass as nested dicts of plain values (enums become their strings)."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: config_to_plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, Enum):
        return cfg.value
    if isinstance(cfg, list | tuple):
        return [config_to_plain(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: config_to_plain(v) for k, v in cfg.items()}
    return cfg


def checkpoint_names(
    cfg: CheckpointConfig, *, epoch: int, num_updates: int, end_of_epoch: bool, is_best: bool
) -> list[str]:
    """The file names one save writes, following fairseq (``checkpoint_last.pt`` last).

    ``checkpoint{epoch}.pt`` at the end of every ``save_interval``-th epoch,
    ``checkpoint_{epoch}_{update}.pt`` mid-epoch every ``save_interval_updates`` updates,
    ``checkpoint_best.pt`` when ``is_best``, and ``checkpoint_last.pt`` always.
    """
    names = []
    if end_of_epoch and cfg.save_interval > 0 and epoch % cfg.save_interval == 0:
        names.append(f"checkpoint{epoch}.pt")
    interval = cfg.save_interval_updates
    if not end_of_epoch and interval > 0 and num_updates % interval == 0:
        names.append(f"checkpoint_{epoch}_{num_updates}.pt")
    if is_best:
        names.append(BEST)
    names.append(LAST)
    return names


def prune_checkpoints(cfg: CheckpointConfig) -> list[Path]:
    """Delete the old numbered checkpoints in ``cfg.save_dir`` beyond the keep limits.

    Keeps the ``keep_last_epochs`` highest ``checkpoint{epoch}.pt`` and the
    ``keep_interval_updates`` highest ``checkpoint_{epoch}_{update}.pt``; a limit <= 0
    keeps all (as in fairseq). ``checkpoint_last.pt`` and ``_best.pt`` are never touched.

    Returns:
        The deleted paths.
    """
    save_dir = Path(cfg.save_dir)
    if not save_dir.is_dir():
        return []
    by_epoch: list[tuple[int, Path]] = []
    by_update: list[tuple[int, Path]] = []
    for path in save_dir.iterdir():
        if m := EPOCH_NAME.fullmatch(path.name):
            by_epoch.append((int(m.group(1)), path))
        elif m := UPDATE_NAME.fullmatch(path.name):
            by_update.append((int(m.group(2)), path))
    doomed = []
    for found, keep in ((by_epoch, cfg.keep_last_epochs), (by_update, cfg.keep_interval_updates)):
        if keep > 0:
            doomed += [path for _, path in sorted(found, reverse=True)[keep:]]
    for path in doomed:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return doomed


def load_model_from_checkpoint(
    path: str | os.PathLike[str], *, device: torch.device | str
) -> tuple[Transformer, dict[str, Any]]:
    """Rebuild the trained model a checkpoint describes, in eval mode on ``device``.

    Args:
        path: a checkpoint written by nmt-train.
        device: where to put the model.

    Returns:
        ``(model, state)``; ``state`` is the whole checkpoint dict.
    """
    # Imported here so that this module works on its own (tests, tools that only read states).
    from nmt_preln.data.dictionary import Dictionary
    from nmt_preln.models.transformer import build_model

    # Validated as data first: types, ranges, the weights' names and shapes against
    # config.arch and the dictionaries (so nothing below can fail on the file's content).
    state = load_checkpoint(path, kind="model")
    cfg = model_config_from_plain(state["config"]["arch"], source=f"checkpoint {path}")
    src_dict = Dictionary.from_symbols(state["src_dict"])
    model = build_model(cfg, src_dict, Dictionary.from_symbols(state["tgt_dict"]))
    weights = state["model"]
    model.load_state_dict(weights)
    return model.to(device).eval(), state
