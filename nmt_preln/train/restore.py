"""Which checkpoint a run starts from, and which parts of it it takes (fairseq's semantics).

The source, first match wins:

1. ``<save_dir>/checkpoint_last.pt`` when ``checkpoint.resume`` and it exists: the run goes on;
2. ``checkpoint.finetune_from_model``: a new run from the weights only; the optimizer, the
   schedule, the position in the data and the best metric all start fresh (as fairseq's
   ``--finetune-from-model``: once the run has saved, 1. applies on a restart);
3. ``checkpoint.restore_file``: everything, minus what the ``reset_*`` flags drop.

``reset_*`` (fairseq's ``--reset-*``) apply to the checkpoint loaded by 1. or 3.:

* ``reset_optimizer``: fresh optimizer and fp16 loss scaler, update count 0, and (as fairseq,
  whose counters live in the optimizer history) no schedule state and no best metric;
* ``reset_lr_scheduler``: no schedule state (for the step schedules: when the decay began);
* ``reset_dataloader``: epoch 1, batch 0;
* ``reset_meters``: no best metric, patience count 0.

The RNG states are restored only when the run continues where the checkpoint stopped (no
update-count or position reset): that is what makes resuming exact.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from nmt_preln.checkpoint import store as ckpt
from nmt_preln.config import CheckpointConfig
from nmt_preln.data.dictionary import symbol_difference
from nmt_preln.errors import UserError
from nmt_preln.train.metrics import truncate_log

if TYPE_CHECKING:
    from nmt_preln.train.session import Session


class SourceKind(StrEnum):
    last = "checkpoint_last.pt"
    finetune = "checkpoint.finetune_from_model"
    restore_file = "checkpoint.restore_file"


@dataclass(frozen=True)
class Resets:
    """What a restore leaves out (see the module docstring)."""

    optimizer: bool = False
    lr_scheduler: bool = False
    dataloader: bool = False
    meters: bool = False

    @classmethod
    def of(cls, cfg: CheckpointConfig, kind: SourceKind) -> Resets:
        if kind == SourceKind.finetune:
            return cls(optimizer=True, lr_scheduler=True, dataloader=True, meters=True)
        return cls(
            optimizer=cfg.reset_optimizer,
            lr_scheduler=cfg.reset_lr_scheduler,
            dataloader=cfg.reset_dataloader,
            meters=cfg.reset_meters,
        )

    def names(self) -> list[str]:
        """The ``checkpoint.reset_*`` settings that are on."""
        return [f"checkpoint.reset_{k}" for k, v in vars(self).items() if v]


def check_restore_files(cfg: CheckpointConfig) -> None:
    """``restore_file`` / ``finetune_from_model`` exist where they will be read.

    nmt-train calls it after the settings and before any data is read; a run that resumes from
    its own ``checkpoint_last.pt`` reads neither, so neither needs to exist then.

    Raises:
        UserError: naming the option and the path.
    """
    resuming = cfg.resume and os.path.isfile(os.path.join(cfg.save_dir, ckpt.LAST))
    for option in ("restore_file", "finetune_from_model"):
        path = getattr(cfg, option)
        if path and not resuming and not os.path.isfile(path):
            raise UserError(f"checkpoint.{option}={path}: no such file")


def restore_source(cfg: CheckpointConfig) -> tuple[str, SourceKind] | None:
    """The checkpoint this run starts from and why, or None for a fresh start."""
    last = os.path.join(cfg.save_dir, ckpt.LAST)
    if cfg.resume and os.path.isfile(last):
        return last, SourceKind.last
    if cfg.finetune_from_model:
        return cfg.finetune_from_model, SourceKind.finetune
    if cfg.restore_file:
        return cfg.restore_file, SourceKind.restore_file
    return None


def check_same_model(s: Session, state: dict[str, Any], path: str) -> None:
    """Refuse a checkpoint of another architecture or dictionary, naming what differs."""
    saved = (state.get("config") or {}).get("arch") or {}
    ours = ckpt.config_to_plain(s.cfg.arch)
    differ = [
        f"arch.{key}={saved[key]!r} in the checkpoint, {value!r} here"
        for key, value in ours.items()
        if key in saved and key not in ckpt.WEIGHT_NEUTRAL_ARCH and saved[key] != value
    ]
    if differ:
        raise UserError(
            f"{path}: does not fit arch of this run ({'; '.join(differ)}); keep its arch "
            "settings, or train into a new checkpoint.save_dir"
        )
    for side, dictionary in (
        ("src_dict", s.train_data.src_dict),
        ("tgt_dict", s.train_data.tgt_dict),
    ):
        if diff := symbol_difference(state.get(side) or [], dictionary.symbols):
            raise UserError(
                f"{path}: trained with another {side} than {s.cfg.data.path}'s "
                f"(checkpoint vs data: {diff})"
            )
    weights = state.get("model")
    if isinstance(weights, dict) and (diff := ckpt.state_mismatch(s.model.state_dict(), weights)):
        raise UserError(f"{path}: does not fit arch of this run: {diff}")


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]


def _load_optimizer(s: Session, state: dict[str, Any], path: str) -> None:
    """Load the optimizer state; this run's hyperparameters (betas, eps...) stay in force.

    torch's ``load_state_dict`` replaces every param group setting by the saved one, which
    would silently keep the old betas or weight decay (and an Adam checkpoint's groups make
    SGD fail later with ``KeyError: 'momentum'``): another optimizer is refused up front.
    """
    saved = ((state.get("config") or {}).get("optim") or {}).get("name")
    ours = s.cfg.optim.name.value
    if saved is not None and saved != ours:
        raise UserError(
            f"{path}: holds {saved} optimizer state, this run uses optim.name={ours}; add "
            f"checkpoint.reset_optimizer=true to start {ours} fresh (or keep optim.name={saved})"
        )
    settings = [{k: v for k, v in g.items() if k != "params"} for g in s.optimizer.param_groups]
    try:
        s.optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise UserError(f"{path}: does not fit optim of this run: {_first_line(e)}") from e
    for group, ours_group in zip(s.optimizer.param_groups, settings, strict=True):
        group.update(ours_group)
    if s.scaler is not None and state.get("scaler"):
        s.scaler.load_state_dict(state["scaler"])
    s.progress.num_updates = int(state["num_updates"])


@dataclass
class RestorePoint:
    """A checkpoint to start from, read and validated (see :func:`load_restore_point`)."""

    path: str
    kind: SourceKind
    state: dict[str, Any]


def load_restore_point(cfg: CheckpointConfig) -> RestorePoint | None:
    """Read and validate the checkpoint :func:`restore_source` picks, or ``None`` for none.

    Called before anything is written into the save directory (the TensorBoard writer
    included), so that a refused checkpoint leaves no new file behind.

    Raises:
        CheckpointError: the file is unreadable or fails validation.
    """
    found = restore_source(cfg)
    if found is None:
        return None
    path, kind = found
    # Fine-tuning needs only the weights (an averaged checkpoint will do).
    state = ckpt.load_checkpoint(path, kind="model" if kind == SourceKind.finetune else "resume")
    return RestorePoint(path=path, kind=kind, state=state)


def restore(s: Session, point: RestorePoint | None) -> None:
    """Load ``point`` (from :func:`load_restore_point`) and the resets into the session.

    Raises:
        UserError: the checkpoint does not fit this run's model, data or optimizer.
    """
    if point is None or point.kind == SourceKind.finetune:
        # A run killed before its first save left records of updates that will be redone.
        _truncate_log(s, 0)
    if point is None:
        return
    path, kind, state = point.path, point.kind, point.state
    check_same_model(s, state, path)
    resets = Resets.of(s.cfg.checkpoint, kind)
    try:
        s.model.load_state_dict(state["model"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise UserError(f"{path}: does not fit arch of this run: {_first_line(e)}") from e
    p = s.progress
    if not resets.optimizer:
        _load_optimizer(s, state, path)
    if not (resets.optimizer or resets.lr_scheduler):
        s.scheduler.load_state_dict(state.get("scheduler") or {})
    if not resets.dataloader:
        p.epoch = int(state["iterator"]["epoch"])
        p.batch_index = int(state["iterator"]["batch_index"])
    if not (resets.optimizer or resets.meters):
        p.best_metric = state.get("best_metric")
        p.bad_validations = int(state.get("bad_validations", 0))
    if kind != SourceKind.finetune:
        # Records past the checkpoint were written after it: a resumed run writes them again.
        _truncate_log(s, int(state["num_updates"]))
    if not (resets.optimizer or resets.dataloader):
        per_rank = state.get("rng_ranks") or []
        rank = s.ctx.rank
        ckpt.restore_rng_state(per_rank[rank] if rank < len(per_rank) else state["rng"])
    _report(s, path=path, kind=kind, resets=resets)


def _truncate_log(s: Session, num_updates: int) -> None:
    if s.ctx.is_main:
        truncate_log(s.cfg.checkpoint.save_dir, num_updates)


def _report(s: Session, *, path: str, kind: SourceKind, resets: Resets) -> None:
    p = s.progress
    if kind == SourceKind.finetune:
        s.metrics.info(f"fine-tuning from {path}: weights only, a new run")
        return
    dropped = f" ({', '.join(resets.names())})" if resets.names() else ""
    s.metrics.info(f"resumed from {path}: epoch {p.epoch}, update {p.num_updates}{dropped}")
    if kind == SourceKind.last and dropped:
        s.metrics.info(
            f"warning: {', '.join(resets.names())} applied to the run's own {ckpt.LAST}: drop "
            "it from the command line, or every restart resets again"
        )
