"""A training run's pieces and their persistence: build them, resume them, checkpoint them.

:func:`build_session` loads the data, builds the model, optimizer, schedule and fp16 scaler,
restores a checkpoint when asked (:mod:`nmt_preln.train.restore`: resume, restore_file,
finetune_from_model and the reset flags) and wraps the model for DDP and ``torch.compile``.
:func:`save_checkpoints` writes the state of docs/INTERNALS.md ("Checkpoints").

Resuming is exact: the RNG states saved at checkpoint time are restored after everything that
draws random numbers at start-up (model initialization) has been rebuilt, and the iterator
position ``(epoch, batch_index)`` points into the epoch's seeded batch list. Each rank's RNG
states are saved (``rng`` holds rank 0's, ``rng_ranks`` every rank's under DDP).
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from nmt_preln.checkpoint import store as ckpt
from nmt_preln.config import Precision, TrainConfig
from nmt_preln.data.dataset import LanguagePairDataset, load_manifest
from nmt_preln.errors import UserError
from nmt_preln.models.placement import placement_of
from nmt_preln.models.transformer import build_model
from nmt_preln.train import distributed
from nmt_preln.train.distributed import DistributedContext
from nmt_preln.train.metrics import TrainMetrics
from nmt_preln.train.optim import DynamicLossScaler, build_optimizer
from nmt_preln.train.restore import load_restore_point, restore
from nmt_preln.train.schedule import LRScheduler
from nmt_preln.train.validation import Validator

logger = logging.getLogger(__name__)


@dataclass
class Progress:
    """Where training stands; all of it goes into every checkpoint.

    Attributes:
        epoch: current 1-based epoch.
        batch_index: batches of ``epoch`` consumed on all ranks together.
        num_updates: optimizer steps taken (skipped steps do not count).
        best_metric: best validation value so far.
        bad_validations: validations since the last improvement (for ``patience``).
        nonfinite_streak: consecutive skipped non-finite updates.
        oom_streak: consecutive updates skipped for running out of memory.
    """

    epoch: int = 1
    batch_index: int = 0
    num_updates: int = 0
    best_metric: float | None = None
    bad_validations: int = 0
    nonfinite_streak: int = 0
    oom_streak: int = 0


@dataclass
class Session:
    """Everything the loop works with (built once by :func:`build_session`)."""

    cfg: TrainConfig
    ctx: DistributedContext
    device: torch.device
    model: nn.Module  # the bare model: state dicts, validation
    net: nn.Module  # what training runs: the model, DDP-wrapped and/or compiled
    optimizer: torch.optim.Optimizer
    scheduler: LRScheduler
    scaler: DynamicLossScaler | None
    train_data: LanguagePairDataset
    validator: Validator
    metrics: TrainMetrics
    keep: np.ndarray  # (num_train,) True where a pair fits the position limits
    spm_models: dict[str, bytes]
    progress: Progress = field(default_factory=Progress)
    signal_received: list[int] = field(default_factory=list)
    last_valid: dict[str, float] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all CUDA devices included)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _load_data(
    cfg: TrainConfig,
) -> tuple[LanguagePairDataset, LanguagePairDataset, dict[str, bytes]]:
    data = cfg.data
    manifest = load_manifest(data.path)
    langs = {"source_lang": data.source_lang, "target_lang": data.target_lang}
    train_data = LanguagePairDataset(data.path, data.train_subset, **langs)
    valid_data = LanguagePairDataset(data.path, data.valid_subset, **langs)
    if train_data.tgt_sizes is None or valid_data.tgt is None:
        raise UserError(f"{data.path}: the train and valid splits need a target side")
    spm_models: dict[str, bytes] = {}
    for lang, filename in (manifest.get("spm_models") or {}).items():
        with open(os.path.join(data.path, filename), "rb") as f:
            spm_models[lang] = f.read()
    return train_data, valid_data, spm_models


def _position_filter(cfg: TrainConfig, data: LanguagePairDataset) -> np.ndarray:
    """True for the pairs the model can take (sentences past the position limits are skipped)."""
    max_src = min(cfg.data.max_source_positions, cfg.arch.max_positions)
    max_tgt = min(cfg.data.max_target_positions, cfg.arch.max_positions)
    assert data.tgt_sizes is not None
    keep = (data.src_sizes <= max_src) & (data.tgt_sizes <= max_tgt)
    if not keep.all():
        logger.warning(
            "skipping %d training pairs longer than %d source / %d target tokens "
            "(data.max_source_positions, data.max_target_positions, arch.max_positions)",
            int((~keep).sum()),
            max_src,
            max_tgt,
        )
    return np.asarray(keep)


def build_session(cfg: TrainConfig, ctx: DistributedContext, device_type: str) -> Session:
    """Seed, load the data, build everything, resume if asked, then wrap for DDP/compile.

    Args:
        cfg: the training config.
        ctx: this process's place in the job.
        device_type: "cpu" or "cuda" (:func:`nmt_preln.devices.resolve_device`); CUDA uses
            the local rank.
    """
    device = (
        torch.device(device_type, ctx.local_rank)
        if device_type == "cuda"
        else torch.device(device_type)
    )
    if cfg.hardware.num_threads > 0:
        torch.set_num_threads(cfg.hardware.num_threads)
    seed_everything(cfg.seed)
    train_data, valid_data, spm_models = _load_data(cfg)
    model = build_model(cfg.arch, train_data.src_dict, train_data.tgt_dict).to(device)
    optimizer = build_optimizer(model.parameters(), cfg.optim, device=device)
    scheduler = LRScheduler(cfg.schedule, peak_lr=cfg.optim.lr, max_update=cfg.max_update)
    fp16 = cfg.hardware.precision == Precision.fp16
    scaler = DynamicLossScaler.from_config(cfg.hardware) if fp16 else None
    point = load_restore_point(cfg.checkpoint)  # validated before the TensorBoard writer exists
    save_dir = cfg.checkpoint.save_dir
    metrics = TrainMetrics(
        ctx,
        save_dir=save_dir,
        tensorboard_dir=cfg.tensorboard_dir or os.path.join(save_dir, "tensorboard"),
        progress_bar=cfg.progress_bar,
        log_format=cfg.log_format,
    )
    session = Session(
        cfg=cfg,
        ctx=ctx,
        device=device,
        model=model,
        net=model,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        train_data=train_data,
        validator=Validator(cfg, valid_data, ctx=ctx, device=device, spm_models=spm_models),
        metrics=metrics,
        keep=_position_filter(cfg, train_data),
        spm_models=spm_models,
    )
    restore(session, point)  # restores the RNG states last, after everything that draws from them
    session.net = distributed.wrap_model(model, ctx, device)
    if cfg.hardware.compile:
        # Every batch has another (batch, src_len, tgt_len) shape: compile for symbolic sizes
        # at once. The default compiles a static graph first and replaces it at the second
        # shape by the same dynamic graph, paying the compile twice.
        session.net = cast(nn.Module, torch.compile(session.net, dynamic=True))
    n_params = sum(p.numel() for p in model.parameters())
    title = placement_of(cfg.arch.norm_position).title
    metrics.info(
        f"model {cfg.arch.name} ({title}): {n_params:,} parameters | "
        f"{len(train_data):,} training pairs | device {device} | {cfg.hardware.precision.value} "
        f"| world size {ctx.world_size}"
    )
    return session


def _checkpoint_state(s: Session) -> dict[str, Any]:
    """The checkpoint dict of docs/INTERNALS.md (a collective: gathers every rank's RNG)."""
    rng_ranks = distributed.all_gather_objects(ckpt.capture_rng_state(), s.ctx)
    p = s.progress
    state: dict[str, Any] = {
        "format_version": ckpt.FORMAT_VERSION,
        "model": s.model.state_dict(),
        "optimizer": s.optimizer.state_dict(),
        "scheduler": s.scheduler.state_dict(),
        "scaler": {} if s.scaler is None else s.scaler.state_dict(),
        "rng": rng_ranks[0],
        "iterator": {"epoch": p.epoch, "batch_index": p.batch_index},
        "num_updates": p.num_updates,
        "best_metric": p.best_metric,
        "bad_validations": p.bad_validations,
        "config": ckpt.config_to_plain(s.cfg),
        "src_dict": list(s.train_data.src_dict.symbols),
        "tgt_dict": list(s.train_data.tgt_dict.symbols),
        "spm_models": dict(s.spm_models),
        "source_lang": s.train_data.source_lang,
        "target_lang": s.train_data.target_lang,
    }
    if s.ctx.enabled:
        state["rng_ranks"] = rng_ranks
    return state


def save_checkpoints(s: Session, *, end_of_epoch: bool, is_best: bool) -> None:
    """Write this point's checkpoints (rank 0) after checking that the weights are finite."""
    cfg, p = s.cfg, s.progress
    s.metrics.flush()  # train_log.jsonl then holds exactly the updates the checkpoint has
    with s.metrics.paused():
        finite = torch.stack([torch.isfinite(q).all() for q in s.model.parameters()]).all()
        if not bool(finite.item()):
            raise UserError(
                f"update {p.num_updates}: the weights are no longer finite; not saving over the "
                f"checkpoints in {cfg.checkpoint.save_dir} (lower optim.lr or add warm-up)"
            )
        state = _checkpoint_state(s)
        if not s.ctx.is_main:
            return
        names = ckpt.checkpoint_names(
            cfg.checkpoint,
            epoch=p.epoch,
            num_updates=p.num_updates,
            end_of_epoch=end_of_epoch,
            is_best=is_best,
        )
        first = os.path.join(cfg.checkpoint.save_dir, names[0])
        ckpt.save_checkpoint(first, state)
        for name in names[1:]:
            ckpt.copy_checkpoint(first, os.path.join(cfg.checkpoint.save_dir, name))
        ckpt.prune_checkpoints(cfg.checkpoint)
