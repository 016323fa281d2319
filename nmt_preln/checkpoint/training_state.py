"""The training state of a checkpoint, checked field by field (see checkpoint_schema).

Optimizer, schedule, loss scaler, RNG states and the data position: what a resuming
nmt-train hands to ``load_state_dict``, ``random.setstate`` and friends, which check little
themselves (a moment of the wrong shape, for instance, only fails at the next step).
"""

from __future__ import annotations

from typing import Any

import torch

from nmt_preln.checkpoint.schema import Fields, type_name

# Optimizer hyperparameters that are numbers >= 0; the other keys of a param group are
# torch's switches (amsgrad, fused, foreach, ...): bool or None.
_OPTIM_NUMBERS = ("lr", "eps", "weight_decay", "momentum", "dampening", "initial_lr")
_MT_WORDS = 624  # the Mersenne Twister state of python's random and numpy's legacy generator


def _param_group(c: Fields, group: Any, field: str, n_params: int | None) -> list[int]:
    group = c.mapping(group, field)
    if "params" not in group:
        c.fail(f"{field}.params", "is missing")
    params = c.sequence(group["params"], f"{field}.params")
    high = None if n_params is None else n_params - 1
    ids = [c.integer(p, f"{field}.params.{i}", high=high) for i, p in enumerate(params)]
    for key, value in group.items():
        where = f"{field}.{key}"
        if key in _OPTIM_NUMBERS:
            c.number(value, where, low=0.0)
        elif key == "betas":
            for i, beta in enumerate(c.sequence(value, where, length=2)):
                if not 0.0 <= c.number(beta, f"{where}.{i}") < 1.0:
                    c.fail(f"{where}.{i}", f"is {beta}, expected in [0, 1)")
        elif key != "params" and value is not None and not isinstance(value, bool):
            c.fail(where, f"is {type_name(value)}, expected a number, bool or None")
    return ids


def _optimizer(c: Fields, value: Any, params: list[torch.nn.Parameter] | None) -> None:
    """torch's optimizer state_dict; moments must have their parameter's shape."""
    optimizer = c.mapping(value, "optimizer")
    for key in ("state", "param_groups"):
        if key not in optimizer:
            c.fail(f"optimizer.{key}", "is missing")
    n_params = None if params is None else len(params)
    groups = c.sequence(optimizer["param_groups"], "optimizer.param_groups")
    ids: list[int] = []
    for i, group in enumerate(groups):
        ids += _param_group(c, group, f"optimizer.param_groups.{i}", n_params)
    if len(set(ids)) != len(ids) or (n_params is not None and len(ids) != n_params):
        expected = "each once" if n_params is None else f"0..{n_params - 1} each once"
        c.fail("optimizer.param_groups", f"list the parameters {ids[:8]}..., expected {expected}")
    keys: set[str] | None = None
    for pid, entry in c.mapping(optimizer["state"], "optimizer.state").items():
        field = f"optimizer.state.{pid}"
        if c.integer(pid, f"optimizer.state key {pid!r}") not in ids:
            c.fail(field, "is the state of a parameter no param group lists")
        # One optimizer keeps the same moments for every parameter: a lost one would only
        # fail (KeyError) at the first step.
        if not all(isinstance(key, str) for key in c.mapping(entry, field)):
            c.fail(field, "has a key that is not a str")
        if keys is not None and set(entry) != keys:
            c.fail(field, f"has {sorted(entry)}, the other parameters {sorted(keys)}")
        keys = set(c.mapping(entry, field))
        for key, item in c.mapping(entry, field).items():
            if not isinstance(item, torch.Tensor):
                c.number(item, f"{field}.{key}", low=0.0)
                continue
            c.tensor(item, f"{field}.{key}")
            shape = None if params is None else params[pid].shape
            if item.dim() > 0 and shape is not None and item.shape != shape:
                c.fail(f"{field}.{key}", f"has shape {tuple(item.shape)}, expected {tuple(shape)}")


def _twister_words(c: Fields, words: list[Any], field: str) -> None:
    for i, word in enumerate(words):
        c.integer(word, f"{field}.{i}", high=2**32 - 1)


def _rng(c: Fields, value: Any, field: str) -> None:
    """capture_rng_state's dict: python, numpy (legacy), torch and CUDA generators."""
    rng = c.mapping(value, field)
    for key in ("python", "numpy", "torch", "cuda"):
        if key not in rng:
            c.fail(f"{field}.{key}", "is missing")
    version, internal, gauss = c.sequence(rng["python"], f"{field}.python", length=3)
    c.integer(version, f"{field}.python.0", low=3, high=3)
    words = c.sequence(internal, f"{field}.python.1", length=_MT_WORDS + 1)
    _twister_words(c, words[:-1], f"{field}.python.1")
    c.integer(words[-1], f"{field}.python.1.{_MT_WORDS}", high=_MT_WORDS)
    if gauss is not None:
        c.number(gauss, f"{field}.python.2")
    name, keys, pos, has_gauss, cached = c.sequence(rng["numpy"], f"{field}.numpy", length=5)
    if not isinstance(name, str) or name != "MT19937":
        c.fail(f"{field}.numpy.0", f"is {name!r}, expected 'MT19937'")
    keys = c.tensor(keys, f"{field}.numpy.1")
    if keys.shape != (_MT_WORDS,) or keys.dtype != torch.int64:
        c.fail(f"{field}.numpy.1", f"is {keys.dtype} {tuple(keys.shape)}, expected int64 (624,)")
    if bool(((keys < 0) | (keys >= 2**32)).any()):
        c.fail(f"{field}.numpy.1", "holds values outside [0, 2**32)")
    c.integer(pos, f"{field}.numpy.2", high=_MT_WORDS)
    c.integer(has_gauss, f"{field}.numpy.3", high=1)
    c.number(cached, f"{field}.numpy.4")
    expected = torch.get_rng_state()
    for where, state in [(f"{field}.torch", rng["torch"])] + [
        (f"{field}.cuda.{i}", s) for i, s in enumerate(c.sequence(rng["cuda"], f"{field}.cuda"))
    ]:
        state = c.tensor(state, where)
        if state.dtype != torch.uint8 or state.dim() != 1:
            c.fail(where, f"is {state.dtype} {tuple(state.shape)}, expected a uint8 byte string")
        if where.endswith(".torch") and state.shape != expected.shape:
            c.fail(where, f"has {state.numel()} bytes, expected {expected.numel()}")


def _progress(c: Fields, state: dict[str, Any]) -> None:
    """Counters and the data position; optional ones may be absent."""
    if "num_updates" in state:
        c.integer(state["num_updates"], "num_updates")
    if "bad_validations" in state:
        c.integer(state["bad_validations"], "bad_validations")
    if state.get("best_metric") is not None:
        c.number(state["best_metric"], "best_metric", low=0.0)  # loss, nll, ppl, BLEU: >= 0
    if "iterator" in state:
        iterator = c.mapping(state["iterator"], "iterator")
        for key, low in (("epoch", 1), ("batch_index", 0)):
            if key not in iterator:
                c.fail(f"iterator.{key}", "is missing")
            c.integer(iterator[key], f"iterator.{key}", low=low)
    if "scheduler" in state:
        scheduler = c.mapping(state["scheduler"], "scheduler")
        if scheduler.get("decay_start_update") is not None:
            c.integer(scheduler["decay_start_update"], "scheduler.decay_start_update")
    if state.get("scaler"):  # {} when training was not fp16
        scaler = c.mapping(state["scaler"], "scaler")
        for key in ("loss_scale", "clean_updates"):
            if key not in scaler:
                c.fail(f"scaler.{key}", "is missing")
        if not c.number(scaler["loss_scale"], "scaler.loss_scale") > 0:
            c.fail("scaler.loss_scale", f"is {scaler['loss_scale']}, expected > 0")
        c.integer(scaler["clean_updates"], "scaler.clean_updates")


def check_training_state(
    c: Fields, state: dict[str, Any], *, model: torch.nn.Module | None
) -> None:
    """Check the training fields that are present (``kind`` decided which must be).

    Args:
        c: the checker naming the file.
        state: the loaded checkpoint.
        model: the checkpoint's model on the meta device (parameter shapes for the
            optimizer moments), or None when the file has no usable model description.
    """
    _progress(c, state)
    if "optimizer" in state:
        params = None if model is None else list(model.parameters())
        _optimizer(c, state["optimizer"], params)
    if "rng" in state:
        _rng(c, state["rng"], "rng")
    if "rng_ranks" in state:
        for i, ranks in enumerate(c.sequence(state["rng_ranks"], "rng_ranks")):
            _rng(c, ranks, f"rng_ranks.{i}")
