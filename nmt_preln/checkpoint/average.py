"""``nmt-average``: average the model weights of several checkpoints (fairseq's
scripts/average_checkpoints.py).

For checkpoints ``c_1..c_N`` every floating-point weight becomes ``w = (1/N) * sum_i w_i``,
summed in float64 and cast back to the weight's dtype. Everything else (optimizer, scheduler,
iterator position, config, dictionaries) is the newest checkpoint's (most updates), so the
result loads, resumes and decodes like any checkpoint. Written atomically with
:func:`nmt_preln.checkpoint.store.save_checkpoint`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from nmt_preln.checkpoint.store import (
    EPOCH_NAME,
    UPDATE_NAME,
    WEIGHT_NEUTRAL_ARCH,
    load_checkpoint,
    save_checkpoint,
)
from nmt_preln.data.dictionary import symbol_difference
from nmt_preln.errors import UserError
from nmt_preln.tools_config import AverageConfig


def select_checkpoints(cfg: AverageConfig) -> list[Path]:
    """The files to average: ``cfg.inputs`` itself, or the last N of one directory.

    Raises:
        UserError: conflicting options, a directory without ``--num-*-checkpoints``, or
            fewer than N matching checkpoints.
    """
    count = max(cfg.num_epoch_checkpoints, cfg.num_update_checkpoints)
    if count <= 0:
        paths = [Path(p) for p in cfg.inputs]
        if any(p.is_dir() for p in paths):
            raise UserError(
                "--inputs: a directory needs --num-epoch-checkpoints or --num-update-checkpoints"
            )
        return paths
    if len(cfg.inputs) != 1 or not Path(cfg.inputs[0]).is_dir():
        raise UserError(f"--inputs: --num-*-checkpoints needs one directory, got {cfg.inputs}")
    by_epoch = cfg.num_epoch_checkpoints > 0
    pattern = EPOCH_NAME if by_epoch else UPDATE_NAME
    directory = Path(cfg.inputs[0])
    numbered = []
    for path in directory.iterdir():
        if m := pattern.fullmatch(path.name):
            number = int(m.group(1 if by_epoch else 2))
            if cfg.checkpoint_upper_bound <= 0 or number <= cfg.checkpoint_upper_bound:
                numbered.append((number, path))
    if len(numbered) < count:
        raise UserError(
            f"--inputs {directory}: {len(numbered)} checkpoints match {pattern.pattern}, "
            f"{count} requested"
        )
    return [path for _, path in sorted(numbered, reverse=True)[:count]]


def _check_same_model(
    state: dict[str, Any], other: dict[str, Any], *, path: Path, first: Path
) -> None:
    """Refuse averaging weights of equal shapes that mean different things."""
    for side in ("src_dict", "tgt_dict"):
        if diff := symbol_difference(state[side], other[side]):
            raise UserError(f"{path}: its {side} differs from {first}'s ({diff})")
    ours, theirs = state["config"]["arch"], other["config"]["arch"]
    for key in sorted((ours.keys() | theirs.keys()) - WEIGHT_NEUTRAL_ARCH):
        if ours.get(key) != theirs.get(key):
            raise UserError(
                f"{path}: config.arch.{key}={ours.get(key)!r}, but {theirs.get(key)!r} in {first}"
            )


def average_states(paths: list[Path]) -> dict[str, Any]:
    """Load ``paths`` and return the newest state with the averaged model weights.

    Raises:
        UserError: no paths, an unreadable or invalid checkpoint, or models with other
            dictionaries, architectures (dropouts aside) or weight names/shapes.
    """
    if not paths:
        raise UserError("--inputs: no checkpoints to average")
    sums: dict[str, torch.Tensor] = {}
    newest: dict[str, Any] | None = None
    reference: dict[str, Any] | None = None  # what the first checkpoint says the weights mean
    first = paths[0]
    for path in paths:
        # One at a time: only the running sums stay in memory. Validated as a model
        # checkpoint: the output is a checkpoint like any other, so it must be one.
        state = load_checkpoint(path, kind="model")
        if reference is None:
            reference = {k: state[k] for k in ("src_dict", "tgt_dict", "config")}
        _check_same_model(state, reference, path=path, first=first)
        weights = state["model"]
        if sums and weights.keys() != sums.keys():
            raise UserError(f"{path}: its weights have other names than {first}'s")
        for name, tensor in weights.items():
            if name in sums and sums[name].shape != tensor.shape:
                raise UserError(
                    f"{path}: {name} has shape {tuple(tensor.shape)}, not "
                    f"{tuple(sums[name].shape)} as in {first}"
                )
            value = tensor.double() if tensor.is_floating_point() else tensor
            sums[name] = (
                sums[name] + value if name in sums and tensor.is_floating_point() else value
            )
        if newest is None or state.get("num_updates", 0) >= newest.get("num_updates", 0):
            newest = state
    assert newest is not None
    model = newest["model"]
    newest["model"] = {
        name: (total / len(paths)).to(model[name].dtype)
        if total.is_floating_point()
        else model[name]
        for name, total in sums.items()
    }
    newest["averaged_from"] = [str(p) for p in paths]
    return newest


def average(cfg: AverageConfig) -> list[Path]:
    """Average the checkpoints ``cfg`` selects into ``cfg.output``; return the inputs used."""
    paths = select_checkpoints(cfg)
    save_checkpoint(cfg.output, average_states(paths))
    return paths
