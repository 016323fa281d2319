"""What happens between updates: log, validate and save at their intervals; stop on limits.

After every update attempt :func:`after_update` decides, in this order (fairseq's
``validate_and_save``):

* ``max_update`` / ``max_epoch`` / ``stop_time_hours`` reached: validate and save, then stop;
* validation at the end of every ``validate_interval``-th epoch, every
  ``validate_interval_updates`` updates, and at every mid-epoch save
  (``checkpoint.save_interval_updates``), so that ``checkpoint_best.pt`` tracks those too;
* a save at the end of every epoch, at every ``save_interval_updates``, and whenever the
  validation improved the best metric;
* a signal on any rank: this update's validation (if one is due) and checkpoints, then
  ``SystemExit(143/130)``. Finishing the update's validation keeps the resumed run's
  ``train_log.jsonl`` and ``checkpoint_best.pt`` equal to an uninterrupted run's.

Interval actions only follow a step that was taken, so a skipped update does not repeat them
at the same update number.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from nmt_preln.checkpoint import store as ckpt
from nmt_preln.config import BestMetric
from nmt_preln.train import distributed
from nmt_preln.train.session import Session, save_checkpoints

SIGNAL_EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


@contextlib.contextmanager
def stop_on_signals() -> Iterator[list[int]]:
    """Record SIGTERM/SIGINT in the yielded list instead of dying mid-update."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received  # signal handlers can only be installed from the main thread
        return

    def handler(signum: int, frame: Any) -> None:
        if received and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without saving
        received.append(signum)

    previous = {sig: signal.signal(sig, handler) for sig in SIGNAL_EXIT_CODES}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def limit_reached(s: Session) -> str | None:
    """``"max_update"``, ``"max_epoch"`` or ``"stop_time_hours"`` when training must stop
    there, else None."""
    cfg, p = s.cfg, s.progress
    if cfg.max_update > 0 and p.num_updates >= cfg.max_update:
        return "max_update"
    if cfg.max_epoch > 0 and p.epoch > cfg.max_epoch:
        return "max_epoch"
    if cfg.stop_time_hours > 0:
        over = s.metrics.train_seconds() >= cfg.stop_time_hours * 3600
        if distributed.any_rank(over, s.ctx):  # each rank has its own clock: stop together
            return "stop_time_hours"
    return None


def is_log_update(s: Session) -> bool:
    """True when the update just taken ends a ``log_interval``."""
    interval = s.cfg.log_interval
    return interval > 0 and s.progress.num_updates % interval == 0


def _every(update: int, interval: int) -> bool:
    return interval > 0 and update % interval == 0


def after_update(s: Session, *, stepped: bool, end_of_epoch: bool) -> str | None:
    """Log, validate, save and decide whether to stop, after every update attempt.

    Returns:
        Why training must stop (``max_update``, ``max_epoch``, ``stop_time_hours``,
        ``patience``), or None.

    Raises:
        SystemExit: 143 or 130 after saving, when a rank received SIGTERM or SIGINT.
    """
    cfg, p = s.cfg, s.progress
    if stepped and is_log_update(s):
        s.metrics.flush()
    signalled = distributed.any_rank(bool(s.signal_received), s.ctx)
    reason = limit_reached(s)
    if end_of_epoch and cfg.max_epoch > 0 and p.epoch >= cfg.max_epoch:
        reason = reason or "max_epoch"
    save_now = stepped and _every(p.num_updates, cfg.checkpoint.save_interval_updates)
    validate = (
        (end_of_epoch and p.epoch % cfg.validate_interval == 0)
        or (stepped and _every(p.num_updates, cfg.validate_interval_updates))
        or save_now
        or reason is not None
    )
    is_best = False
    if validate:
        is_best = validate_now(s)
        if cfg.patience > 0 and p.bad_validations >= cfg.patience:
            reason = reason or "patience"
    if signalled:
        _save_and_exit(s, end_of_epoch=end_of_epoch, is_best=is_best)
    if end_of_epoch or is_best or reason or save_now:
        save_checkpoints(s, end_of_epoch=end_of_epoch, is_best=is_best)
    return reason


def _save_and_exit(s: Session, *, end_of_epoch: bool, is_best: bool) -> None:
    """Save this update's checkpoints (checkpoint_last.pt always) and exit on the signal."""
    save_checkpoints(s, end_of_epoch=end_of_epoch, is_best=is_best)
    signum = s.signal_received[0] if s.signal_received else signal.SIGTERM
    code = SIGNAL_EXIT_CODES[signal.Signals(signum)]
    s.metrics.info(
        f"received {signal.Signals(signum).name}: saved {ckpt.LAST} at update "
        f"{s.progress.num_updates}; exiting with status {code}"
    )
    raise SystemExit(code)


def validate_now(s: Session) -> bool:
    """Validate, log, and update the best metric; True when it improved."""
    p, metric = s.progress, s.cfg.checkpoint.best_metric
    s.metrics.flush()  # the train line of the partial interval comes before the valid line
    start = time.perf_counter()
    with s.metrics.paused():
        stats = s.validator.run(s.model)
    seconds = time.perf_counter() - start
    value = stats[metric]
    higher_is_better = metric == BestMetric.bleu
    improved = p.best_metric is None or (
        value > p.best_metric if higher_is_better else value < p.best_metric
    )
    if improved:
        p.best_metric, p.bad_validations = value, 0
    else:
        p.bad_validations += 1
    s.last_valid = stats
    assert p.best_metric is not None
    s.metrics.validation(
        epoch=p.epoch,
        update=p.num_updates,
        stats={**stats, f"best_{metric}": p.best_metric},
        seconds=seconds,
    )
    for sample in s.validator.samples:
        s.metrics.sample(**sample)
    return improved
