"""Reading a fairseq checkpoint without running anything from it.

fairseq 0.12 checkpoints are ``torch.save`` files: ``{"args": Namespace | None, "cfg": dict,
"model": state_dict, "optimizer_history": [...], "last_optimizer_state": {...}, ...}``, where
``cfg["model"]`` is an ``argparse.Namespace`` for the legacy architectures (``--arch
transformer...``). They are loaded with torch's ``weights_only`` unpickler, which builds only
tensors, containers and the globals allowed here; any other global in the file (a ``__reduce__``
payload such as ``os.system``, a fairseq class, an omegaconf node) stops the load before it is
called, and the error names it.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import warnings
from typing import Any

import numpy as np
import torch

from nmt_preln.errors import UserError

try:  # numpy >= 2
    from numpy._core.multiarray import scalar as _np_scalar
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import scalar as _np_scalar  # type: ignore[no-redef]

# Beyond torch's own defaults (tensors, OrderedDict, plain containers): the attribute bag of
# fairseq's argparse options, and the numpy scalars some meters and "best" values are saved
# as. Each is plain data: building it runs no code from the file.
_ALLOWED: list[Any] = [
    argparse.Namespace,
    np.dtype,
    (_np_scalar, "numpy._core.multiarray.scalar"),
    (_np_scalar, "numpy.core.multiarray.scalar"),  # pickled by numpy 1.x
    # numpy 2 restores a dtype's byte order etc. with BUILD on its class (Float64DType ...).
    *{type(np.dtype(code)) for code in ("b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8")},
    *{type(np.dtype(code)) for code in ("f2", "f4", "f8")},
]
# How torch names what it refused: "GLOBAL os.system", or "but got <class 'x.Y'>".
_REFUSED = re.compile(r"GLOBAL ([\w.]+)|got <class '([\w.]+)'>")


def load_fairseq_state(path: str) -> dict[str, Any]:
    """The checkpoint dict, tensors on the CPU.

    Raises:
        UserError: the file is missing, unreadable, not a checkpoint, or pickles anything but
            the allowed types (named in the message; nothing of it was run).
    """
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such checkpoint")
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(_ALLOWED):
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = _REFUSED.search(str(e))
        what = (found.group(1) or found.group(2)) if found else "an object that is not plain data"
        hint = (
            " (omegaconf objects: a checkpoint of a fairseq before 0.12? fairseq 0.12 saves its "
            "config as plain data)"
            if what.startswith("omegaconf.")
            else ""
        )
        raise UserError(
            f"{path}: refusing to load: it pickles {what}{hint}; only tensors, argparse.Namespace "
            f"and plain data are read, and nothing from the file was run"
        ) from None
    except Exception as e:  # torch raises RuntimeError, EOFError, ValueError... on bad files
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise UserError(f"{path}: cannot read as a torch checkpoint: {reason}") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise UserError(f"{path}: not a fairseq checkpoint (no model state dict)")
    return state


def model_args(state: dict[str, Any], *, path: str) -> dict[str, Any]:
    """The model's options as a plain dict: ``cfg["model"]`` (fairseq >= 0.10) or ``args``."""
    cfg = state.get("cfg")
    source = cfg.get("model") if isinstance(cfg, dict) else None
    if source is None:
        source = state.get("args")
    if isinstance(source, argparse.Namespace):
        return dict(vars(source))
    if isinstance(source, dict):
        return _flatten(source)
    raise UserError(f"{path}: the checkpoint names no model options (no cfg.model or args)")


def _flatten(model: dict[str, Any]) -> dict[str, Any]:
    """fairseq's TransformerConfig nests ``encoder``/``decoder``/``quant_noise`` options (a
    fairseq-hydra-train checkpoint); the flat names are the command line's:
    ``{"encoder": {"embed_dim": 512}}`` -> ``{"encoder_embed_dim": 512}``."""
    flat: dict[str, Any] = {}
    for key, value in model.items():
        if key in ("encoder", "decoder", "quant_noise") and isinstance(value, dict):
            flat.update({f"{key}_{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def task_args(state: dict[str, Any]) -> dict[str, Any]:
    """The task's options (``cfg["task"]``, else the flat ``args``); empty when absent."""
    cfg = state.get("cfg")
    task = cfg.get("task") if isinstance(cfg, dict) else None
    if isinstance(task, argparse.Namespace):
        return dict(vars(task))
    if isinstance(task, dict):
        return dict(task)
    args = state.get("args")
    return dict(vars(args)) if isinstance(args, argparse.Namespace) else {}
