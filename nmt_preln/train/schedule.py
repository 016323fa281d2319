"""Learning-rate schedules: pure functions of the update number and the epoch.

Numbering:
    ``update`` is the 1-based number of the optimizer step the rate is *used for*: the first
    step is update 1, and ``update = 0`` means "before any step". Epochs are 1-based, as in
    fairseq.

Every schedule starts with the same optional linear warm-up over ``W = warmup_updates``
updates from ``init = warmup_init_lr`` to the peak rate::

    lr(u) = init + u * (peak - init) / W                      for 0 <= u < W

``W = 0`` means no warm-up at all: then ``lr(0) = lr(1) = peak``. No formula below divides
by ``W`` (fairseq's ``inverse_sqrt`` does and crashes at zero warm-up).

The trainer calls :meth:`LRScheduler.set_lr` before every optimizer step; its only state is
the update at which ``decay_epoch`` began, which ``step_inverse_sqrt`` needs and which a pure
function of (update, epoch) cannot know.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from nmt_preln.config import ScheduleConfig, ScheduleName


def warmup(update: int, *, peak_lr: float, warmup_updates: int, warmup_init_lr: float) -> float:
    """Linear warm-up: ``init + u * (peak - init) / W``, equal to ``peak`` from ``u = W`` on.

    Args:
        update: 1-based update number (0 = before any step).
        peak_lr: rate reached at the end of the warm-up.
        warmup_updates: ``W``; 0 disables the warm-up (always ``peak``).
        warmup_init_lr: rate at update 0.

    Returns:
        The learning rate.
    """
    if update >= warmup_updates:
        return peak_lr
    return warmup_init_lr + update * (peak_lr - warmup_init_lr) / warmup_updates


def inverse_sqrt(
    update: int, *, peak_lr: float, warmup_updates: int, warmup_init_lr: float
) -> float:
    """fairseq's ``inverse_sqrt``, defined for zero warm-up too.

    ``lr(u) = warm-up(u)`` for ``u < W``, then ``lr(u) = peak * sqrt(max(W, 1) / max(u, 1))``.

    With ``W = 0`` this is ``peak / sqrt(u)``: continuous, and equal to ``peak`` at update 1
    (and update 0), which is what the paper's warm-up-free Pre-LN runs need.
    """
    if update < warmup_updates:
        return warmup(
            update, peak_lr=peak_lr, warmup_updates=warmup_updates, warmup_init_lr=warmup_init_lr
        )
    return peak_lr * math.sqrt(max(warmup_updates, 1) / max(update, 1))


def step_decay(
    update: int,
    epoch: int,
    *,
    peak_lr: float,
    decay_epoch: int,
    decay_factor: float,
    warmup_updates: int = 0,
    warmup_init_lr: float = 0.0,
) -> float:
    """The paper's IWSLT schedule: ``peak`` before ``decay_epoch``, ``peak * factor`` from it on.

    ``lr(u, e) = warm-up(u)`` for ``u < W``; otherwise ``peak`` if ``e < decay_epoch`` else
    ``peak * decay_factor``.
    """
    if update < warmup_updates:
        return warmup(
            update, peak_lr=peak_lr, warmup_updates=warmup_updates, warmup_init_lr=warmup_init_lr
        )
    return peak_lr * decay_factor if epoch >= decay_epoch else peak_lr


def step_inverse_sqrt(
    update: int,
    epoch: int,
    *,
    peak_lr: float,
    decay_epoch: int,
    decay_start_update: int | None,
    warmup_updates: int = 0,
    warmup_init_lr: float = 0.0,
) -> float:
    """The paper's WMT schedule: constant, then inverse-sqrt decay from epoch ``decay_epoch``.

    With ``D = decay_start_update`` (updates completed when epoch ``decay_epoch`` began) and
    ``S = max(D, W, 1)``: ``lr(u, e) = warm-up(u)`` for ``u < W``; ``peak`` for
    ``e < decay_epoch``; otherwise ``peak * min(1, sqrt(S / u))``. The decay is fairseq's
    inverse sqrt with the constant plateau in place of the warm-up, so it is continuous at
    the first update of ``decay_epoch`` (``peak * sqrt(D / (D + 1))``).

    Args:
        update: 1-based update number.
        epoch: 1-based epoch of that update.
        peak_lr: plateau rate.
        decay_epoch: first epoch with decay.
        decay_start_update: ``D``; may be None only while ``epoch < decay_epoch``.
        warmup_updates: ``W``.
        warmup_init_lr: rate at update 0 when ``W > 0``.

    Returns:
        The learning rate.
    """
    if update < warmup_updates:
        return warmup(
            update, peak_lr=peak_lr, warmup_updates=warmup_updates, warmup_init_lr=warmup_init_lr
        )
    if epoch < decay_epoch:
        return peak_lr
    if decay_start_update is None:
        raise ValueError("step_inverse_sqrt needs decay_start_update once decay_epoch is reached")
    start = max(decay_start_update, warmup_updates, 1)
    return peak_lr * min(1.0, math.sqrt(start / max(update, 1)))


def _decay_progress(update: int, *, warmup_updates: int, total_updates: int) -> float:
    start = max(warmup_updates, 1)
    return min(1.0, max(0.0, (update - start) / max(total_updates - start, 1)))


def linear(
    update: int,
    *,
    peak_lr: float,
    warmup_updates: int,
    warmup_init_lr: float,
    min_lr: float,
    total_updates: int,
) -> float:
    """Warm-up, then linear decay to ``min_lr`` at ``T = total_updates`` (``T > W``).

    With ``S = max(W, 1)`` (so that zero warm-up still uses ``peak`` for update 1):
    ``lr(u) = peak + (min - peak) * p`` with ``p = clip((u - S) / (T - S), 0, 1)`` for ``u >= W``.
    """
    if update < warmup_updates:
        return warmup(
            update, peak_lr=peak_lr, warmup_updates=warmup_updates, warmup_init_lr=warmup_init_lr
        )
    progress = _decay_progress(update, warmup_updates=warmup_updates, total_updates=total_updates)
    return peak_lr + (min_lr - peak_lr) * progress


def cosine(
    update: int,
    *,
    peak_lr: float,
    warmup_updates: int,
    warmup_init_lr: float,
    min_lr: float,
    total_updates: int,
) -> float:
    """Warm-up, then half a cosine from ``peak`` down to ``min_lr`` at ``T = total_updates``.

    ``lr(u) = min + (peak - min) * (1 + cos(pi * p)) / 2`` for ``u >= W``, with ``p`` as in
    :func:`linear`: ``p = clip((u - S) / (T - S), 0, 1)`` and ``S = max(W, 1)``.
    """
    if update < warmup_updates:
        return warmup(
            update, peak_lr=peak_lr, warmup_updates=warmup_updates, warmup_init_lr=warmup_init_lr
        )
    progress = _decay_progress(update, warmup_updates=warmup_updates, total_updates=total_updates)
    return min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_at(
    cfg: ScheduleConfig,
    *,
    peak_lr: float,
    update: int,
    epoch: int,
    max_update: int,
    decay_start_update: int | None = None,
) -> float:
    """The learning rate of ``cfg``'s schedule for 1-based ``update`` in 1-based ``epoch``.

    Args:
        cfg: the schedule settings.
        peak_lr: ``optim.lr``.
        update: 1-based update number (0 = before any step).
        epoch: 1-based epoch.
        max_update: ``train.max_update``; linear/cosine decay to it when total_updates is 0.
        decay_start_update: updates completed when ``cfg.decay_epoch`` began
            (step_inverse_sqrt only).

    Returns:
        The learning rate.
    """
    w, init = cfg.warmup_updates, cfg.warmup_init_lr
    name = cfg.name
    if name == ScheduleName.inverse_sqrt:
        return inverse_sqrt(update, peak_lr=peak_lr, warmup_updates=w, warmup_init_lr=init)
    if name == ScheduleName.constant:
        return warmup(update, peak_lr=peak_lr, warmup_updates=w, warmup_init_lr=init)
    if name == ScheduleName.step_decay:
        return step_decay(
            update,
            epoch,
            peak_lr=peak_lr,
            decay_epoch=cfg.decay_epoch,
            decay_factor=cfg.decay_factor,
            warmup_updates=w,
            warmup_init_lr=init,
        )
    if name == ScheduleName.step_inverse_sqrt:
        return step_inverse_sqrt(
            update,
            epoch,
            peak_lr=peak_lr,
            decay_epoch=cfg.decay_epoch,
            decay_start_update=decay_start_update,
            warmup_updates=w,
            warmup_init_lr=init,
        )
    decay = linear if name == ScheduleName.linear else cosine
    return decay(
        update,
        peak_lr=peak_lr,
        warmup_updates=w,
        warmup_init_lr=init,
        min_lr=cfg.min_lr,
        total_updates=cfg.total_updates or max_update,
    )


class LRScheduler:
    """Sets every param group's learning rate before each optimizer step.

    Args:
        cfg: the schedule settings, checked by ``cfg.validate(max_update=...)``.
        peak_lr: ``optim.lr``.
        max_update: ``train.max_update`` (the horizon of linear/cosine when
            ``cfg.total_updates`` is 0).
    """

    def __init__(self, cfg: ScheduleConfig, *, peak_lr: float, max_update: int) -> None:
        self.cfg = cfg
        self.peak_lr = peak_lr
        self.max_update = max_update
        # Updates completed when cfg.decay_epoch began; recorded on the first update seen in
        # that epoch and checkpointed, because a resumed run cannot recompute it.
        self.decay_start_update: int | None = None

    def lr(self, *, update: int, epoch: int) -> float:
        """The rate for 1-based ``update`` in ``epoch`` (no side effects)."""
        start = self.decay_start_update
        if start is None and epoch >= self.cfg.decay_epoch:
            start = max(update - 1, 0)
        return lr_at(
            self.cfg,
            peak_lr=self.peak_lr,
            update=update,
            epoch=epoch,
            max_update=self.max_update,
            decay_start_update=start,
        )

    def set_lr(self, optimizer: torch.optim.Optimizer, *, update: int, epoch: int) -> float:
        """Set the rate for the step about to be taken and return it.

        Args:
            optimizer: its param groups all get the same rate.
            update: 1-based number of the coming step (``num_updates + 1``).
            epoch: 1-based epoch of that step.

        Returns:
            The learning rate now in the optimizer.
        """
        if self.decay_start_update is None and epoch >= self.cfg.decay_epoch:
            self.decay_start_update = max(update - 1, 0)
        lr = self.lr(update=update, epoch=epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self) -> dict[str, Any]:
        """Plain-type state for the checkpoint's ``scheduler`` key."""
        return {"decay_start_update": self.decay_start_update}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""
        self.decay_start_update = state.get("decay_start_update")
