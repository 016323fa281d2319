"""Every ``nmt-train`` setting checked before any data is read, one line naming the option.

Hydra already refused unknown keys, wrong types and bad enum values when composing; these are
the range and consistency rules the types cannot express. Checking them up front means a typo
in ``optim.lr`` fails in a second rather than after loading WMT and building the model.
"""

from __future__ import annotations

import dataclasses
import os

from nmt_preln.checkpoint.store import LAST
from nmt_preln.config import BestMetric, CheckpointConfig, Optimizer, TrainConfig
from nmt_preln.errors import UserError
from nmt_preln.models.transformer import check_model_config
from nmt_preln.train.schedule import validate_schedule

RESETS = ("optimizer", "lr_scheduler", "dataloader", "meters")
# numpy's legacy seeding (np.random.seed) takes 0 .. 2**32 - 1; torch takes more.
MAX_SEED = 2**32 - 1
# The validate_bleu_* settings and their defaults: changing one without validate_bleu=true
# would be accepted and do nothing.
_BLEU_SETTINGS = {
    f.name: f.default
    for f in dataclasses.fields(TrainConfig)
    if f.name.startswith("validate_bleu_")
}


def check_train_config(cfg: TrainConfig) -> None:
    """Raise UserError for the first setting of ``cfg`` that training could not use.

    Only the settings' own values are checked; what depends on the data (dictionary sizes,
    sentence lengths) is checked where the data is loaded.
    """
    check_model_config(cfg.arch)
    validate_schedule(cfg.schedule, max_update=cfg.max_update)
    for bad, message in _range_problems(cfg) + _bleu_problems(cfg):
        if bad:
            raise UserError(message)
    _check_restore(cfg.checkpoint)


def _check_restore(c: CheckpointConfig) -> None:
    """restore_file / finetune_from_model: exclusive, and present when they will be read."""
    resets = [f"checkpoint.reset_{k}" for k in RESETS if getattr(c, f"reset_{k}")]
    if c.finetune_from_model and c.restore_file:
        raise UserError(
            "checkpoint.finetune_from_model and checkpoint.restore_file cannot be used together "
            "(fine-tuning starts a new run from weights only; restore_file continues one)"
        )
    if c.finetune_from_model and resets:
        raise UserError(
            f"checkpoint.finetune_from_model resets the optimizer, lr scheduler, dataloader and "
            f"meters already; drop {', '.join(resets)}"
        )
    resuming = c.resume and os.path.isfile(os.path.join(c.save_dir, LAST))
    for option in ("restore_file", "finetune_from_model"):
        path = getattr(c, option)
        if path and not resuming and not os.path.isfile(path):
            raise UserError(f"checkpoint.{option}={path}: no such file")


def _range_problems(cfg: TrainConfig) -> list[tuple[bool, str]]:
    o, s, d, h, c = cfg.optim, cfg.schedule, cfg.data, cfg.hardware, cfg.checkpoint
    betas_ok = o.name == Optimizer.sgd or (
        len(o.betas) == 2 and all(0.0 <= b < 1.0 for b in o.betas)
    )
    return [
        (not 0 <= cfg.seed <= MAX_SEED, f"seed={cfg.seed} must be in [0, {MAX_SEED}]"),
        (cfg.update_freq < 1, f"update_freq={cfg.update_freq} must be >= 1"),
        (cfg.max_epoch < 0 or cfg.max_update < 0, "max_epoch and max_update must be >= 0"),
        (cfg.stop_time_hours < 0, f"stop_time_hours={cfg.stop_time_hours} must be >= 0 (0: off)"),
        (cfg.validate_interval < 1, f"validate_interval={cfg.validate_interval} must be >= 1"),
        (cfg.validate_interval_updates < 0, "validate_interval_updates must be >= 0 (0: off)"),
        (cfg.log_interval < 0, f"log_interval={cfg.log_interval} must be >= 0 (0: off)"),
        (not 0.0 <= cfg.label_smoothing < 1.0, "label_smoothing must be in [0, 1)"),
        (
            c.best_metric not in set(BestMetric),
            f"checkpoint.best_metric={c.best_metric!r}: use loss, nll, ppl or bleu",
        ),
        (
            c.best_metric == "bleu" and not cfg.validate_bleu,
            "checkpoint.best_metric=bleu needs validate_bleu=true",
        ),
        (c.save_interval < 0, "checkpoint.save_interval must be >= 0 (0: no epoch files)"),
        (c.save_interval_updates < 0, "checkpoint.save_interval_updates must be >= 0 (0: off)"),
        (not o.lr > 0, f"optim.lr={o.lr} must be > 0"),
        (not betas_ok, f"optim.betas={list(o.betas)} must be two numbers in [0, 1)"),
        (not o.eps > 0, f"optim.eps={o.eps} must be > 0"),
        (o.weight_decay < 0 or o.momentum < 0, "optim.weight_decay and optim.momentum >= 0"),
        (o.clip_norm < 0, f"optim.clip_norm={o.clip_norm} must be >= 0 (0: no clipping)"),
        (s.warmup_init_lr < 0 or s.min_lr < 0, "schedule.warmup_init_lr and min_lr >= 0"),
        (s.decay_epoch < 1, f"schedule.decay_epoch={s.decay_epoch} must be >= 1"),
        (not s.decay_factor > 0, f"schedule.decay_factor={s.decay_factor} must be > 0"),
        (s.total_updates < 0, "schedule.total_updates must be >= 0 (0: max_update)"),
        (d.max_tokens < 0 or d.batch_size < 0, "data.max_tokens and data.batch_size >= 0"),
        (d.max_tokens == 0 and d.batch_size == 0, "data.max_tokens or data.batch_size > 0"),
        (d.num_workers < 0, f"data.num_workers={d.num_workers} must be >= 0"),
        (
            min(d.max_source_positions, d.max_target_positions) < 2,
            "data.max_source_positions and data.max_target_positions must be >= 2",
        ),
        (h.num_threads < 0, f"hardware.num_threads={h.num_threads} must be >= 0 (0: default)"),
        (not h.fp16_init_scale > 0, "hardware.fp16_init_scale must be > 0"),
        (h.fp16_scale_window < 1, "hardware.fp16_scale_window must be >= 1"),
        (not h.min_loss_scale > 0, "hardware.min_loss_scale must be > 0"),
        (
            not h.ddp_timeout_minutes > 0,
            f"hardware.ddp_timeout_minutes={h.ddp_timeout_minutes} must be > 0",
        ),
    ]


def _bleu_problems(cfg: TrainConfig) -> list[tuple[bool, str]]:
    changed = [k for k, v in _BLEU_SETTINGS.items() if getattr(cfg, k) != v]
    return [
        (
            bool(changed) and not cfg.validate_bleu,
            f"{', '.join(changed)} needs validate_bleu=true",
        ),
        (cfg.validate_bleu_beam < 1, f"validate_bleu_beam={cfg.validate_bleu_beam} must be >= 1"),
        (
            cfg.validate_bleu_max_len_a < 0 or cfg.validate_bleu_max_len_b < 0,
            "validate_bleu_max_len_a and validate_bleu_max_len_b must be >= 0",
        ),
        (
            cfg.validate_bleu_print_samples < 0,
            "validate_bleu_print_samples must be >= 0 (0: none)",
        ),
    ]
