"""The training loop of ``nmt-train``: :func:`train` takes a :class:`TrainConfig`, returns metrics.

One optimizer update runs ``update_freq`` micro-batches on each of the ``W`` ranks. As in
fairseq the losses are summed over tokens and the gradient is normalized by the number of
target tokens ``S`` of the whole update (all micro-batches, all ranks)::

    g = (1 / S) * sum_{rank r} sum_{batch b} grad(loss_{r,b})

DDP averages gradients over ranks, so each rank multiplies its gradients by ``W / S`` after the
last backward (folded into the fp16 unscaling pass). ``S`` is known on the host without any
communication: every rank builds the same batch list and knows every batch's sizes.

An update that runs out of memory is skipped with a warning, as in fairseq (its batches count
as consumed); ``MAX_OOM_UPDATES`` in a row, or any under DDP, stop training with a UserError.

Host-device synchronizations: one per update (is the gradient norm finite? the step is skipped
otherwise), one per log interval (the losses), and validation and checkpoints.

Stopping: ``max_epoch``, ``max_update``, ``patience`` validations without improvement, or a
signal. On SIGTERM/SIGINT the current update finishes (with the validation due at it, see
:mod:`.intervals`), ``checkpoint_last.pt`` is saved and ``SystemExit(143)`` (SIGTERM) or
``SystemExit(130)`` (SIGINT) is raised; a second SIGINT interrupts at once. Resuming continues
mid-epoch, with the saved RNG states, and reproduces the per-update losses of an uninterrupted
run.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from nmt_preln.config import TrainConfig
from nmt_preln.data.collate import Batch, PairDataset
from nmt_preln.devices import resolve_device
from nmt_preln.errors import UserError
from nmt_preln.train import distributed
from nmt_preln.train.batch_plan import batch_by_size, shard
from nmt_preln.train.batching import iterate_batches
from nmt_preln.train.intervals import after_update, is_log_update, limit_reached, stop_on_signals
from nmt_preln.train.loss import label_smoothed_cross_entropy
from nmt_preln.train.metrics import UpdateStats, layer_grad_norms
from nmt_preln.train.optim import clip_grad_norm
from nmt_preln.train.save_dir import claim_save_dir
from nmt_preln.train.session import Session, build_session
from nmt_preln.train.validation import autocast

logger = logging.getLogger(__name__)

# Consecutive updates with a non-finite loss or gradient (fp32/bf16) before training stops.
MAX_NONFINITE_UPDATES = 5
# Consecutive updates that ran out of memory (and were skipped) before training stops.
MAX_OOM_UPDATES = 3


@dataclass
class PlannedUpdate:
    """One update of an epoch: this rank's micro-batches and the totals of all ranks."""

    batches: list[np.ndarray]  # this rank's sentence indices, one array per micro-batch
    ntokens: int  # target tokens on all ranks (the normalizer S)
    nsentences: int
    end: int  # batch_index once this update is done


def train(cfg: TrainConfig) -> dict[str, float]:
    """Train a model as ``cfg`` says; resume from ``save_dir/checkpoint_last.pt`` if asked.

    Under ``torchrun`` every rank calls this with the same config; rank 0 logs and writes.

    Args:
        cfg: the resolved training config (dataclasses, not a DictConfig), already checked
            by ``cfg.validate()`` (nmt-train does it once, before anything else).

    Returns:
        Final metrics: ``epoch``, ``num_updates``, ``best_metric``, ``valid_loss``,
        ``valid_nll``, ``valid_ppl`` (and ``valid_bleu``) of the last validation.

    Raises:
        UserError: bad settings or data, a diverged run, a lost rank.
        SystemExit: 143 or 130 after saving, when SIGTERM or SIGINT arrived.
    """
    device_type = resolve_device(cfg.hardware.device, option="hardware.device=cuda").type
    ctx = distributed.init_distributed(
        device_type=device_type, timeout_minutes=cfg.hardware.ddp_timeout_minutes
    )
    clean = False
    try:
        with (
            distributed.lost_rank_as_user_error(ctx),
            claim_save_dir(cfg, ctx) as notes,  # lock, writability, stale temp files
            stop_on_signals() as received,
        ):
            session = build_session(cfg, ctx, device_type)
            session.signal_received = received
            for note in notes:
                session.metrics.info(note)
            try:
                result = _train_loop(session)
            except SystemExit:
                clean = True  # every rank agreed to stop on the signal
                raise
            finally:
                session.metrics.close()
        clean = True
        return result
    finally:
        distributed.shutdown(ctx, wait_for_others=clean)


def _plan_epoch(s: Session, epoch: int) -> list[PlannedUpdate]:
    """The updates of ``epoch``: the same seeded batch list on every rank, then dealt out."""
    cfg, data = s.cfg, s.train_data
    assert data.tgt_sizes is not None
    batches = batch_by_size(
        data.src_sizes,
        data.tgt_sizes,
        max_tokens=cfg.data.max_tokens,
        max_sentences=cfg.data.batch_size,
        seed=cfg.seed,
        epoch=epoch,
    ).select(s.keep)  # a flat plan: no index array per batch (issue 6)
    world = s.ctx.world_size
    mine = shard(batches, s.ctx.rank, world)  # raises when there are fewer batches than ranks
    per_update = cfg.update_freq
    plan = []
    for start in range(0, len(mine), per_update):
        steps = range(start, min(start + per_update, len(mine)))
        everyone = [batches[i * world + r] for i in steps for r in range(world)]
        plan.append(
            PlannedUpdate(
                batches=[mine[i] for i in steps],
                ntokens=int(sum(int(data.tgt_sizes[b].sum()) for b in everyone)),
                nsentences=sum(len(b) for b in everyone),
                end=steps[-1] * world + world,
            )
        )
    return plan


def _train_loop(s: Session) -> dict[str, float]:
    cfg, p = s.cfg, s.progress
    start = time.perf_counter()
    s.metrics.restart_clock()
    reason = limit_reached(s)
    while reason is None:
        plan = _plan_epoch(s, p.epoch)
        if not plan:
            raise UserError(f"{cfg.data.path}: no training batch fits data.max_tokens")
        if p.batch_index >= plan[-1].end:  # resumed from an end-of-epoch checkpoint
            if cfg.max_epoch > 0 and p.epoch >= cfg.max_epoch:
                reason = "max_epoch"
            else:
                p.epoch, p.batch_index = p.epoch + 1, 0
            continue
        reason = _run_epoch(s, plan)
        if reason is None:
            p.epoch, p.batch_index = p.epoch + 1, 0
    s.metrics.flush()
    minutes = (time.perf_counter() - start) / 60
    best = "none" if p.best_metric is None else f"{p.best_metric:.3f}"
    s.metrics.info(
        f"done ({reason}): epoch {p.epoch:03d} | update {p.num_updates:06d} | best "
        f"{cfg.checkpoint.best_metric} {best} | {minutes:.1f} min"
    )
    result = {"epoch": float(p.epoch), "num_updates": float(p.num_updates)}
    if p.best_metric is not None:
        result["best_metric"] = p.best_metric
    result.update({f"valid_{k}": v for k, v in s.last_valid.items()})
    return result


def _run_epoch(s: Session, plan: list[PlannedUpdate]) -> str | None:
    """Train the rest of the current epoch; return why training must stop, or None."""
    p, device = s.progress, s.device
    todo = [i for i, u in enumerate(plan) if u.end > p.batch_index]
    if plan[todo[0]].end - len(plan[todo[0]].batches) * s.ctx.world_size != p.batch_index:
        logger.warning("resume position %d is not an update boundary; continuing", p.batch_index)
    batches = [b for i in todo for b in plan[i].batches]
    loader = iterate_batches(
        cast(PairDataset, s.train_data),  # see PairDataset: the protocol is structural only
        batches,
        num_workers=s.cfg.data.num_workers,
        pin_memory=device.type == "cuda",
    )
    with contextlib.closing(cast(Generator[Batch, None, None], loader)):
        for i in todo:
            micro = [next(loader).to(device, non_blocking=True) for _ in plan[i].batches]
            stepped = _update_or_skip_oom(s, micro, plan[i])
            p.batch_index = plan[i].end
            s.metrics.progress(epoch=p.epoch, done=i + 1, total=len(plan))
            reason = after_update(s, stepped=stepped, end_of_epoch=i == len(plan) - 1)
            if reason is not None:
                return reason
    s.metrics.end_epoch()
    return None


def _is_oom(err: RuntimeError) -> bool:
    # torch.cuda.OutOfMemoryError is a RuntimeError; the CPU allocator words it differently.
    text = str(err)
    return isinstance(err, torch.cuda.OutOfMemoryError) or any(
        m in text for m in ("out of memory", "can't allocate memory")
    )


def _update_or_skip_oom(s: Session, micro: list[Batch], planned: PlannedUpdate) -> bool:
    """:func:`train_update`, but an update that runs out of memory is skipped (as fairseq).

    Its batches count as consumed; ``MAX_OOM_UPDATES`` in a row stop training. Under DDP the
    other ranks are already waiting in the gradient all-reduce, so one rank cannot skip alone.
    """
    p = s.progress
    try:
        stepped = train_update(s, micro, planned)
    except RuntimeError as err:
        if not _is_oom(err):
            raise
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
    else:
        p.oom_streak = 0
        return stepped
    # Out of the except block: the traceback no longer pins the activations it references.
    s.optimizer.zero_grad(set_to_none=True)
    if s.device.type == "cuda":
        torch.cuda.empty_cache()
    p.oom_streak += 1
    where = (
        f"update {p.num_updates + 1}: out of memory on {planned.nsentences} sentences / "
        f"{planned.ntokens} target tokens"
    )
    if s.ctx.enabled or p.oom_streak >= MAX_OOM_UPDATES:
        streak = "" if s.ctx.enabled else f" ({MAX_OOM_UPDATES} updates in a row)"
        raise UserError(f"{where}{streak}; lower data.max_tokens or raise update_freq: {message}")
    logger.warning("%s; skipping it (lower data.max_tokens if this repeats): %s", where, message)
    return False


def train_update(s: Session, micro: list[Batch], planned: PlannedUpdate) -> bool:
    """Forward/backward every micro-batch, normalize, clip, and step unless non-finite.

    Returns:
        True when the optimizer stepped (False: skipped for a non-finite gradient).
    """
    cfg, p = s.cfg, s.progress
    s.net.train()
    lr = s.scheduler.set_lr(s.optimizer, update=p.num_updates + 1, epoch=p.epoch)
    loss_sum = torch.zeros((), device=s.device)
    nll_sum = torch.zeros((), device=s.device)
    for i, batch in enumerate(micro):
        assert batch.prev_output_tokens is not None and batch.target is not None
        with distributed.sync_gradients(s.net, i == len(micro) - 1):
            with autocast(cfg.hardware.precision, s.device):
                logits = s.net(batch.src_tokens, batch.prev_output_tokens)  # (B, T, V)
                loss, nll = label_smoothed_cross_entropy(
                    logits, batch.target, epsilon=cfg.label_smoothing, pad=s.train_data.tgt_dict.pad
                )
            (loss if s.scaler is None else s.scaler.scale(loss)).backward()
        loss_sum += loss.detach()
        nll_sum += nll.detach()
    params = [q for q in s.model.parameters() if q.grad is not None]
    multiplier = s.ctx.world_size / max(planned.ntokens, 1)  # DDP averaged: undo /W, then /S
    if s.scaler is not None:
        s.scaler.unscale_(params, multiplier=multiplier)
    elif params:
        torch._foreach_mul_([q.grad for q in params if q.grad is not None], multiplier)
    gnorm = clip_grad_norm(params, cfg.optim.clip_norm)
    if not _step(s, gnorm):
        s.optimizer.zero_grad(set_to_none=True)
        return False
    p.num_updates += 1
    layer_norms = None
    if is_log_update(s) and cfg.log_layer_grad_norms and s.ctx.is_main:
        layer_norms = layer_grad_norms(s.model)  # read before zero_grad drops the gradients
    s.optimizer.zero_grad(set_to_none=True)
    s.metrics.add(
        UpdateStats(
            update=p.num_updates,
            epoch=p.epoch,
            loss_sum=loss_sum,
            nll_sum=nll_sum,
            ntokens=planned.ntokens,
            nsentences=planned.nsentences,
            gnorm=gnorm,
            lr=lr,
            loss_scale=None if s.scaler is None else s.scaler.loss_scale,
        ),
        layer_norms=layer_norms,
    )
    return True


def _step(s: Session, gnorm: torch.Tensor) -> bool:
    """Take the optimizer step unless the gradient norm is non-finite; True when taken."""
    p = s.progress
    if s.scaler is not None:  # fp16: overflow halves the scale, LossScaleError at the floor
        stepped = s.scaler.step(s.optimizer, grad_norm=gnorm)
        if not stepped:
            s.metrics.info(f"fp16 overflow: update skipped, loss scale now {s.scaler.loss_scale:g}")
        return stepped
    if bool(torch.isfinite(gnorm).item()):  # the one sync per update
        s.optimizer.step()
        p.nonfinite_streak = 0
        return True
    p.nonfinite_streak += 1
    if s.ctx.is_main:
        logger.warning(
            "update %d: non-finite loss or gradient, update skipped (%d in a row)",
            p.num_updates + 1,
            p.nonfinite_streak,
        )
    if p.nonfinite_streak >= MAX_NONFINITE_UPDATES:
        raise UserError(
            f"update {p.num_updates + 1}: the loss or gradient was non-finite "
            f"{p.nonfinite_streak} updates in a row; usual causes: optim.lr too high, "
            f"Post-LN without warm-up (schedule.warmup_updates), fp16 overflow (try bf16), "
            f"no gradient clipping (optim.clip_norm)"
        )
    return False
