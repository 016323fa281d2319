"""Optimizers, gradient clipping and the fp16 dynamic loss scaler.

A mixed-precision update with the scaler, as the trainer runs it::

    scaler.scale(loss).backward()
    scaler.unscale_(params, multiplier=1 / ntokens)     # one pass: undo scale, normalize
    grad_norm = clip_grad_norm(params, cfg.clip_norm)    # tensor; inf/nan on overflow
    stepped = scaler.step(optimizer, grad_norm=grad_norm)  # skips the step on overflow
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from nmt_preln.config import HardwareConfig, OptimConfig, Optimizer
from nmt_preln.errors import UserError

Params = Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]]


def _optimizer_class(name: Optimizer) -> Callable[..., torch.optim.Optimizer]:
    classes: dict[Optimizer, Callable[..., torch.optim.Optimizer]] = {
        Optimizer.adam: torch.optim.Adam,
        Optimizer.adamw: torch.optim.AdamW,
        Optimizer.radam: torch.optim.RAdam,
        Optimizer.sgd: torch.optim.SGD,
    }
    return classes[name]


def _hyperparameters(cfg: OptimConfig) -> dict[str, Any]:
    if cfg.name == Optimizer.sgd:
        return {"lr": cfg.lr, "momentum": cfg.momentum, "weight_decay": cfg.weight_decay}
    betas = (float(cfg.betas[0]), float(cfg.betas[1]))
    return {"lr": cfg.lr, "betas": betas, "eps": cfg.eps, "weight_decay": cfg.weight_decay}


def build_optimizer(
    params: Params, cfg: OptimConfig, *, device: torch.device | str
) -> torch.optim.Optimizer:
    """Build ``cfg.name`` over ``params``, with fused kernels where torch has them.

    Fused kernels exist for Adam, AdamW and SGD on CPU and CUDA (torch >= 2.4); RAdam, older
    torch versions or other devices fall back silently to the multi-tensor (foreach) path,
    which gives the same numbers up to rounding.

    Args:
        params: the parameters (or param groups) to optimize, already on ``device``.
        cfg: optimizer name, peak lr, betas, eps, weight decay, momentum, fused (checked by
            ``cfg.validate()``).
        device: where the parameters live.

    Returns:
        The optimizer; the schedule overwrites each group's ``lr`` before every step.
    """
    param_list: list[Any] = list(params)  # used twice when the fused attempt fails
    cls = _optimizer_class(cfg.name)
    kwargs = _hyperparameters(cfg)
    device_type = torch.device(device).type
    if cfg.fused and "fused" in inspect.signature(cls).parameters:
        try:
            return cls(param_list, fused=True, **kwargs)
        except RuntimeError:
            pass  # torch refuses fused kernels for this device or dtype
    return cls(param_list, foreach=device_type == "cuda" or None, **kwargs)


def clip_grad_norm(params: Iterable[torch.nn.Parameter], max_norm: float) -> Tensor:
    """Clip the gradients' global L2 norm to ``max_norm`` and return the norm before clipping.

    ``norm = sqrt(sum_p ||grad_p||^2)``; when ``norm > max_norm`` every gradient is scaled by
    ``max_norm / norm``. ``max_norm = 0`` only computes the norm (for logging). A non-finite
    norm (fp16 overflow) is returned as is; the scaler then skips the step.

    Args:
        params: parameters whose ``.grad`` to clip (those without a gradient are ignored).
        max_norm: ``optim.clip_norm``.

    Returns:
        The total norm as a float32 0-dim tensor on the gradients' device (no sync).
    """
    params = [p for p in params if p.grad is not None]
    if not params:
        return torch.zeros(())
    if max_norm > 0:
        return torch.nn.utils.clip_grad_norm_(params, max_norm).float()
    grads = [p.grad for p in params if p.grad is not None]
    norms = torch.stack([torch.linalg.vector_norm(g, dtype=torch.float32) for g in grads])
    return torch.linalg.vector_norm(norms)


class LossScaleError(UserError, FloatingPointError):
    """The fp16 loss scale fell below ``hardware.min_loss_scale``: the loss keeps overflowing."""


class DynamicLossScaler:
    """fairseq-style dynamic loss scaling for float16 training.

    The loss is multiplied by ``scale`` before ``backward`` so small gradients survive
    float16. When the gradients overflow (a non-finite norm) the update is skipped and
    ``scale /= 2``; after ``scale_window`` consecutive clean updates ``scale *= 2``.
    When the scale falls below ``min_scale`` :class:`LossScaleError` is raised.

    Args:
        init_scale: starting scale (``hardware.fp16_init_scale``).
        scale_window: clean updates before the scale doubles (``hardware.fp16_scale_window``).
        min_scale: floor below which training stops (``hardware.min_loss_scale``).
    """

    def __init__(self, *, init_scale: float, scale_window: int, min_scale: float) -> None:
        if init_scale <= 0 or scale_window < 1:
            raise UserError(
                f"hardware.fp16_init_scale={init_scale} must be > 0 and "
                f"hardware.fp16_scale_window={scale_window} >= 1"
            )
        self.loss_scale = float(init_scale)
        self.scale_window = scale_window
        self.min_scale = min_scale
        self.clean_updates = 0  # since the last overflow or the last growth

    @classmethod
    def from_config(cls, cfg: HardwareConfig) -> DynamicLossScaler:
        """The scaler configured by ``hardware.fp16_*`` and ``hardware.min_loss_scale``."""
        return cls(
            init_scale=cfg.fp16_init_scale,
            scale_window=cfg.fp16_scale_window,
            min_scale=cfg.min_loss_scale,
        )

    def scale(self, loss: Tensor) -> Tensor:
        """``loss * scale``; call ``backward`` on the result."""
        return loss * self.loss_scale

    def unscale_(self, params: Iterable[torch.nn.Parameter], *, multiplier: float = 1.0) -> None:
        """Multiply every gradient by ``multiplier / scale`` in place (one pass).

        Args:
            params: the parameters whose ``.grad`` to rescale.
            multiplier: an extra factor folded into the same pass, e.g. ``1 / ntokens``.
        """
        grads = [p.grad for p in params if p.grad is not None]
        if grads:
            torch._foreach_mul_(grads, multiplier / self.loss_scale)

    def update(self, *, overflow: bool) -> None:
        """Adjust the scale after an update attempt.

        Raises:
            LossScaleError: when an overflow pushes the scale below ``min_scale``.
        """
        if not overflow:
            self.clean_updates += 1
            if self.clean_updates >= self.scale_window:
                self.loss_scale *= 2.0
                self.clean_updates = 0
            return
        self.loss_scale /= 2.0
        self.clean_updates = 0
        if self.loss_scale < self.min_scale:
            raise LossScaleError(
                f"the fp16 loss scale fell to {self.loss_scale:g}, below "
                f"hardware.min_loss_scale={self.min_scale:g}: the loss keeps overflowing; "
                "lower optim.lr, add warm-up (schedule.warmup_updates, needed by Post-LN), "
                "set optim.clip_norm, or use hardware.precision=bf16"
            )

    def step(self, optimizer: torch.optim.Optimizer, *, grad_norm: Tensor) -> bool:
        """Take the optimizer step unless the gradients overflowed, then update the scale.

        This is the one host-device sync per update (reading whether ``grad_norm`` is finite).

        Args:
            optimizer: stepped only when ``grad_norm`` is finite.
            grad_norm: the norm of the unscaled gradients, from :func:`clip_grad_norm`.

        Returns:
            True when the step was taken, False when it was skipped for overflow.
        """
        overflow = not bool(torch.isfinite(grad_norm).item())
        if not overflow:
            optimizer.step()
        self.update(overflow=overflow)
        return not overflow

    def state_dict(self) -> dict[str, Any]:
        """Plain-type state for the checkpoint's ``scaler`` key."""
        return {"loss_scale": self.loss_scale, "clean_updates": self.clean_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""
        self.loss_scale = float(state["loss_scale"])
        self.clean_updates = int(state["clean_updates"])
