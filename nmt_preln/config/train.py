"""The settings of ``nmt-train`` (``TrainConfig`` and its groups) and the rules each obeys.

Hydra refuses unknown keys, wrong types and bad enum values when composing; the ``validate``
methods here hold the range and consistency rules that types cannot express. ``nmt-train``
calls :meth:`TrainConfig.validate` once, before any data is read, so that a typo in
``optim.lr`` fails in a second rather than after loading WMT and building the model. What
depends on the data (dictionary sizes, sentence lengths) or on files (a ``restore_file``) is
checked where those are read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from omegaconf import MISSING

from nmt_preln.config.fields import refuse_first
from nmt_preln.config.hardware import HardwareConfig
from nmt_preln.config.model import ModelConfig

# numpy's legacy seeding (np.random.seed) takes 0 .. 2**32 - 1; torch takes more.
MAX_SEED = 2**32 - 1
# fairseq's --reset-* flags, as checkpoint.reset_<name>
RESETS = ("optimizer", "lr_scheduler", "dataloader", "meters")


class Optimizer(StrEnum):
    adam = "adam"
    adamw = "adamw"
    radam = "radam"
    sgd = "sgd"


@dataclass
class OptimConfig:
    name: Optimizer = Optimizer.adam  # optimizer
    lr: float = 5e-4  # peak learning rate (lr_max in the paper)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])  # Adam's (beta1, beta2)
    eps: float = 1e-8  # Adam's epsilon
    weight_decay: float = 0.0  # AdamW: decoupled; adam/radam/sgd: L2 added to the gradient
    momentum: float = 0.0  # SGD only
    clip_norm: float = 0.0  # 0 disables gradient clipping
    fused: bool = True  # use torch's fused kernels where the device supports them

    def validate(self) -> None:
        """Raise UserError naming the first ``optim.*`` setting out of range."""
        refuse_first(self._rules())

    def _rules(self) -> Iterator[tuple[bool, str]]:
        betas_ok = self.name == Optimizer.sgd or (
            len(self.betas) == 2 and all(0.0 <= b < 1.0 for b in self.betas)
        )
        yield not self.lr > 0, f"optim.lr={self.lr} must be > 0"
        yield not betas_ok, f"optim.betas={list(self.betas)} must be two numbers in [0, 1)"
        yield not self.eps > 0, f"optim.eps={self.eps} must be > 0"
        yield (
            self.weight_decay < 0 or self.momentum < 0,
            "optim.weight_decay and optim.momentum >= 0",
        )
        yield self.clip_norm < 0, f"optim.clip_norm={self.clip_norm} must be >= 0 (0: no clipping)"


class ScheduleName(StrEnum):
    inverse_sqrt = "inverse_sqrt"  # linear warm-up, then lr * sqrt(warmup / step)
    constant = "constant"  # optional linear warm-up, then constant
    step_decay = "step_decay"  # constant, times decay_factor from decay_epoch on (paper, IWSLT)
    step_inverse_sqrt = (
        "step_inverse_sqrt"  # constant, then inverse sqrt from decay_epoch (paper, WMT)
    )
    linear = "linear"  # warm-up, then linear decay to min_lr at total_updates
    cosine = "cosine"  # warm-up, then cosine decay to min_lr at total_updates


@dataclass
class ScheduleConfig:
    """Learning-rate schedule; see :mod:`nmt_preln.train.schedule` for the formulas."""

    name: ScheduleName = ScheduleName.inverse_sqrt  # learning-rate schedule
    warmup_updates: int = 4000  # 0 means no warm-up at all (the Pre-LN setting)
    warmup_init_lr: float = 1e-7  # learning rate at update 0 of the warm-up
    min_lr: float = 0.0  # floor of the linear/cosine decay
    decay_epoch: int = 8  # step schedules: first epoch of the decay
    decay_factor: float = 0.1  # step_decay: lr multiplier from decay_epoch on
    total_updates: int = 0  # for linear/cosine; 0 means train.max_update

    def validate(self, *, max_update: int) -> None:
        """Raise UserError for the first ``schedule.*`` setting no schedule can use.

        Args:
            max_update: ``max_update`` of the run (the linear/cosine horizon when
                ``total_updates`` is 0).
        """
        refuse_first(self._rules(max_update))

    def _rules(self, max_update: int) -> Iterator[tuple[bool, str]]:
        w = self.warmup_updates
        yield w < 0, f"schedule.warmup_updates={w} must be >= 0"
        yield self.warmup_init_lr < 0 or self.min_lr < 0, "schedule.warmup_init_lr and min_lr >= 0"
        yield self.decay_epoch < 1, f"schedule.decay_epoch={self.decay_epoch} must be >= 1"
        yield not self.decay_factor > 0, f"schedule.decay_factor={self.decay_factor} must be > 0"
        yield self.total_updates < 0, "schedule.total_updates must be >= 0 (0: max_update)"
        total = self.total_updates or max_update
        yield (
            self.name in (ScheduleName.linear, ScheduleName.cosine) and total <= w,
            f"schedule={self.name.value} decays until schedule.total_updates (or max_update "
            f"when it is 0), which must exceed schedule.warmup_updates={w}; got {total}",
        )


@dataclass
class DataConfig:
    path: str = MISSING  # a directory written by nmt-preprocess
    source_lang: str | None = None  # None: read from the directory's manifest
    target_lang: str | None = None  # None: read from the directory's manifest
    train_subset: str = "train"  # split trained on
    valid_subset: str = "valid"  # split validated on
    max_tokens: int = 4096  # per batch and per GPU, source or target side, padding included
    batch_size: int = 0  # maximum sentences per batch; 0 means no limit beyond max_tokens
    max_source_positions: int = 1024  # longer training pairs are skipped
    max_target_positions: int = 1024  # longer training pairs are skipped
    num_workers: int = 1  # background batch-loading threads; 0 loads in the training loop

    def validate(self) -> None:
        """Raise UserError naming the first ``data.*`` setting out of range."""
        refuse_first(self._rules())

    def _rules(self) -> Iterator[tuple[bool, str]]:
        yield self.max_tokens < 0 or self.batch_size < 0, "data.max_tokens and data.batch_size >= 0"
        yield (
            self.max_tokens == 0 and self.batch_size == 0,
            "data.max_tokens or data.batch_size > 0",
        )
        yield self.num_workers < 0, f"data.num_workers={self.num_workers} must be >= 0"
        yield (
            min(self.max_source_positions, self.max_target_positions) < 2,
            "data.max_source_positions and data.max_target_positions must be >= 2",
        )


class BestMetric(StrEnum):
    loss = "loss"  # label-smoothed validation loss: lower is better
    nll = "nll"  # lower is better
    ppl = "ppl"  # lower is better
    bleu = "bleu"  # higher is better; needs validate_bleu


@dataclass
class CheckpointConfig:
    save_dir: str = "checkpoints"  # checkpoints, train_log.jsonl and (by default) TensorBoard logs
    save_interval: int = 1  # epochs between checkpoint_<epoch>.pt files
    save_interval_updates: int = 0  # 0 disables checkpoint_<epoch>_<update>.pt files
    keep_last_epochs: int = -1  # -1 keeps all
    keep_interval_updates: int = -1  # -1 keeps all checkpoint_<epoch>_<update>.pt
    resume: bool = True  # continue from save_dir/checkpoint_last.pt when it exists
    restore_file: str | None = None  # start from this checkpoint instead
    best_metric: BestMetric = BestMetric.loss  # what checkpoint_best.pt and patience follow
    # A new run from these weights only (used when save_dir has no checkpoint_last.pt yet;
    # afterwards the run resumes normally). Everything else starts fresh, as in fairseq.
    finetune_from_model: str | None = None
    # What not to take from the checkpoint that is loaded (fairseq's --reset-* flags).
    reset_optimizer: bool = False  # fresh optimizer, loss scaler and update count
    reset_lr_scheduler: bool = False  # fresh schedule state (e.g. the step decay's start)
    reset_dataloader: bool = False  # start at epoch 1, batch 0
    reset_meters: bool = False  # forget the best metric and the patience count

    def validate(self) -> None:
        """Raise UserError for ``checkpoint.*`` settings out of range or exclusive of each other.

        Whether ``restore_file`` and ``finetune_from_model`` exist is a question about files,
        answered when training starts.
        """
        refuse_first(self._rules())

    def _rules(self) -> Iterator[tuple[bool, str]]:
        yield (
            self.best_metric not in set(BestMetric),
            f"checkpoint.best_metric={self.best_metric!r}: use loss, nll, ppl or bleu",
        )
        yield self.save_interval < 0, "checkpoint.save_interval must be >= 0 (0: no epoch files)"
        yield (
            self.save_interval_updates < 0,
            "checkpoint.save_interval_updates must be >= 0 (0: off)",
        )
        yield (
            bool(self.finetune_from_model and self.restore_file),
            "checkpoint.finetune_from_model and checkpoint.restore_file cannot be used together "
            "(fine-tuning starts a new run from weights only; restore_file continues one)",
        )
        resets = [f"checkpoint.reset_{k}" for k in RESETS if getattr(self, f"reset_{k}")]
        yield (
            bool(self.finetune_from_model and resets),
            "checkpoint.finetune_from_model resets the optimizer, lr scheduler, dataloader and "
            f"meters already; drop {', '.join(resets)}",
        )


class LogFormat(StrEnum):
    text = "text"  # "<time> | epoch 001 | update 000100 | loss ..." lines
    json = "json"  # one JSON object per line on stdout (fairseq's --log-format json)


@dataclass
class TrainConfig:
    """The primary config of ``nmt-train``; ``arch`` is chosen with ``+arch=...``."""

    arch: ModelConfig = MISSING
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    label_smoothing: float = 0.1  # epsilon of the label-smoothed cross-entropy
    update_freq: int = 1  # gradient accumulation: batches per optimizer update
    max_epoch: int = 0  # 0 means no limit
    max_update: int = 0  # 0 means no limit
    # Stop (validating and saving first) after this much training time of this process,
    # validation and saving excluded (fairseq's --stop-time-hours counts them); 0: no limit.
    stop_time_hours: float = 0.0
    patience: int = -1  # stop after this many validations without improvement; -1 never
    validate_interval: int = 1  # epochs
    validate_interval_updates: int = 0  # 0 disables mid-epoch validation
    validate_bleu: bool = False  # also decode the valid set and report BLEU
    # The search of validation BLEU (fairseq's --eval-bleu-args), decoded by nmt-generate's
    # Translator: output length at most max_len_a * source length + max_len_b.
    validate_bleu_beam: int = 1
    validate_bleu_lenpen: float = 1.0  # length penalty of the validation search
    validate_bleu_max_len_a: float = 1.2  # max output length = a * source length + b
    validate_bleu_max_len_b: int = 10  # max output length = a * source length + b
    validate_bleu_print_samples: int = 0  # print the first N translations at every validation
    log_interval: int = 100  # updates between log lines
    log_format: LogFormat = LogFormat.text  # text lines, or one JSON object per line
    tensorboard_dir: str | None = None  # None: <save_dir>/tensorboard
    log_layer_grad_norms: bool = True  # per-layer FFN/attention gradient norms in TensorBoard
    progress_bar: bool = True  # a tqdm-like bar on a terminal; plain log lines otherwise
    seed: int = 1  # seeds python, numpy, torch and the batch order

    def validate(self) -> None:
        """Raise UserError for the first setting that training could not use, naming it.

        Checks every group (``arch``, ``optim``, ...) and the rules that join them. Only the
        settings' own values are checked: what depends on the data or on files is checked
        where those are read.
        """
        self.arch.validate()
        refuse_first(self._rules())
        self.checkpoint.validate()
        self.optim.validate()
        self.schedule.validate(max_update=self.max_update)
        self.data.validate()
        self.hardware.validate()
        refuse_first(self._bleu_rules())

    def _rules(self) -> Iterator[tuple[bool, str]]:
        yield not 0 <= self.seed <= MAX_SEED, f"seed={self.seed} must be in [0, {MAX_SEED}]"
        yield self.update_freq < 1, f"update_freq={self.update_freq} must be >= 1"
        yield self.max_epoch < 0 or self.max_update < 0, "max_epoch and max_update must be >= 0"
        yield (
            self.stop_time_hours < 0,
            f"stop_time_hours={self.stop_time_hours} must be >= 0 (0: off)",
        )
        yield (
            self.validate_interval < 1,
            f"validate_interval={self.validate_interval} must be >= 1",
        )
        yield (
            self.validate_interval_updates < 0,
            "validate_interval_updates must be >= 0 (0: off)",
        )
        yield self.log_interval < 0, f"log_interval={self.log_interval} must be >= 0 (0: off)"
        yield not 0.0 <= self.label_smoothing < 1.0, "label_smoothing must be in [0, 1)"
        yield (
            self.checkpoint.best_metric == BestMetric.bleu and not self.validate_bleu,
            "checkpoint.best_metric=bleu needs validate_bleu=true",
        )

    def _bleu_rules(self) -> Iterator[tuple[bool, str]]:
        # Changing a validate_bleu_* setting without validate_bleu=true would be accepted and
        # do nothing.
        changed = [
            f.name
            for f in dataclasses.fields(self)
            if f.name.startswith("validate_bleu_") and getattr(self, f.name) != f.default
        ]
        yield (
            bool(changed) and not self.validate_bleu,
            f"{', '.join(changed)} needs validate_bleu=true",
        )
        yield (
            self.validate_bleu_beam < 1,
            f"validate_bleu_beam={self.validate_bleu_beam} must be >= 1",
        )
        yield (
            self.validate_bleu_max_len_a < 0 or self.validate_bleu_max_len_b < 0,
            "validate_bleu_max_len_a and validate_bleu_max_len_b must be >= 0",
        )
        yield (
            self.validate_bleu_print_samples < 0,
            "validate_bleu_print_samples must be >= 0 (0: none)",
        )
