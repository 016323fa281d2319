"""What training tells the user: log lines, a progress bar, ``train_log.jsonl``, TensorBoard.

Per-update numbers stay on the device as tensors until a log interval; :meth:`TrainMetrics.flush`
then moves them to the host with one synchronization, sums the loss over ranks, and writes

* ``<save_dir>/train_log.jsonl``: one JSON object per update (``"split": "train"``) and one per
  validation (``"split": "valid"``), for grep, plots and the resume test;
* one stdout line per interval, timestamped text or JSON (:mod:`.console`, ``log_format``);
* TensorBoard scalars (``train/*``, ``valid/*``, ``grad_norm/<layer>``).

Losses are reported like fairseq: base 2, per target token; ``ppl = 2 ** nll``. Only rank 0
writes; every rank must call :meth:`TrainMetrics.flush` because it contains a collective.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import torch
from torch import nn

from nmt_preln.atomic_file import atomic_write
from nmt_preln.config import LogFormat
from nmt_preln.errors import UserError
from nmt_preln.train import distributed
from nmt_preln.train.console import Console
from nmt_preln.train.distributed import DistributedContext
from nmt_preln.train.loss import base2_per_token, perplexity

LOG_NAME = "train_log.jsonl"
# Parameters whose gradient norms are plotted per layer (the paper's Figure 3 looks at FFN).
_LAYER_WEIGHT_MARKERS = ("fc1", "fc2", "_proj")


@dataclass
class UpdateStats:
    """One optimizer update as the trainer saw it; tensors are still on the device.

    Attributes:
        update: the update number after this step (1-based).
        epoch: the epoch it belongs to (1-based).
        loss_sum: summed label-smoothed loss of this rank, natural log, scalar tensor.
        nll_sum: summed negative log-likelihood of this rank, natural log, scalar tensor.
        ntokens: target tokens of the update on all ranks.
        nsentences: sentences of the update on all ranks.
        gnorm: gradient norm before clipping, scalar tensor (identical on all ranks).
        lr: learning rate used.
        loss_scale: fp16 loss scale, None in fp32/bf16.
    """

    update: int
    epoch: int
    loss_sum: torch.Tensor
    nll_sum: torch.Tensor
    ntokens: int
    nsentences: int
    gnorm: torch.Tensor
    lr: float
    loss_scale: float | None = None


def layer_grad_norms(model: nn.Module) -> dict[str, torch.Tensor]:
    """Gradient norms of the FFN and attention weight matrices, layer by layer.

    Uses the model's own list (:func:`nmt_preln.models.transformer.named_analysis_weights`,
    names like ``encoder.3.ffn.fc1``) when it is a :class:`Transformer`; otherwise every
    ``*fc1*``, ``*fc2*`` and ``*_proj`` weight found in ``named_parameters``.

    Returns:
        ``{name: norm}``: float32 scalar tensors still on the device (no sync).
    """
    from nmt_preln.models.transformer import Transformer, named_analysis_weights

    if isinstance(model, Transformer):
        named = named_analysis_weights(model)
    else:
        named = [
            (name.removesuffix(".weight"), param)
            for name, param in model.named_parameters()
            if name.endswith(".weight")
            and any(m in name.rsplit(".", 2)[-2] for m in _LAYER_WEIGHT_MARKERS)
        ]
    return {
        name: torch.linalg.vector_norm(weight.grad, dtype=torch.float32)
        for name, weight in named
        if weight.grad is not None
    }


def _record_update(line: str) -> int | None:
    """The ``update`` of one log line; None for a line cut short by a crash mid-write."""
    try:
        return int(json.loads(line)["update"])
    except (ValueError, KeyError, TypeError):
        return None


def truncate_log(save_dir: str, num_updates: int) -> None:
    """Drop log records past ``num_updates`` (written after the checkpoint we resume from).

    A last line left incomplete by a kill is dropped too. The log is replaced atomically, so
    a crash while truncating cannot lose it.
    """
    path = os.path.join(save_dir, LOG_NAME)
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        kept = [line for line in f if (u := _record_update(line)) is not None and u <= num_updates]
    with atomic_write(path) as f:
        f.writelines(line if line.endswith("\n") else line + "\n" for line in kept)


def _make_dir(path: str, option: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise UserError(f"{option}={path}: cannot create the directory: {e.strerror}") from e


class TrainMetrics:
    """Buffers per-update statistics and writes them at log intervals (rank 0 only).

    Args:
        ctx: the distributed context (only rank 0 writes).
        save_dir: where ``train_log.jsonl`` goes.
        tensorboard_dir: TensorBoard event directory, None to disable TensorBoard.
        progress_bar: draw a bar when stdout is a terminal.
        log_format: timestamped text lines or JSON lines (:mod:`.console`).
        stream: where log lines go (stdout).
    """

    def __init__(
        self,
        ctx: DistributedContext,
        *,
        save_dir: str,
        tensorboard_dir: str | None,
        progress_bar: bool,
        log_format: LogFormat = LogFormat.text,
        stream: TextIO | None = None,
    ) -> None:
        self.ctx = ctx
        stream = stream if stream is not None else sys.stdout
        self.log_path = os.path.join(save_dir, LOG_NAME)
        self.pending: list[UpdateStats] = []
        self.pending_layer_norms: dict[str, torch.Tensor] = {}
        self.interval_start = time.perf_counter()
        self.paused_seconds = 0.0
        self.run_start = time.perf_counter()
        # Training time: from the first update on, minus every pause (validation, saving).
        self.train_start, self.paused_total = self.run_start, 0.0
        self.writer: Any = None
        self.console = Console(stream, log_format=log_format, progress_bar=progress_bar)
        if ctx.is_main:
            _make_dir(save_dir, "checkpoint.save_dir")
            if tensorboard_dir is not None:
                from torch.utils.tensorboard import SummaryWriter

                _make_dir(tensorboard_dir, "tensorboard_dir")
                self.writer = SummaryWriter(tensorboard_dir)

    def restart_clock(self) -> None:
        """Start timing tokens per second now (at the first update, not at start-up)."""
        self.interval_start, self.paused_seconds = time.perf_counter(), 0.0
        self.train_start, self.paused_total = self.interval_start, 0.0

    def train_seconds(self, now: float | None = None) -> float:
        """Seconds spent training since :meth:`restart_clock`, pauses excluded."""
        now = time.perf_counter() if now is None else now
        return now - self.train_start - self.paused_total

    def add(
        self, stats: UpdateStats, *, layer_norms: dict[str, torch.Tensor] | None = None
    ) -> None:
        """Remember one update (no host synchronization).

        Args:
            stats: the update's numbers.
            layer_norms: per-layer gradient norms (from :func:`layer_grad_norms`) to write
                at the next flush.
        """
        self.pending.append(stats)
        if layer_norms is not None:
            self.pending_layer_norms = layer_norms

    def progress(self, *, epoch: int, done: int, total: int) -> None:
        """Move the progress bar (host counters only)."""
        if self.ctx.is_main:
            self.console.progress(epoch=epoch, done=done, total=total)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Exclude the enclosed time (validation, saving) from tokens/s and training time."""
        start = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - start
            self.paused_seconds += seconds
            self.paused_total += seconds

    def flush(self) -> dict[str, float]:
        """Write the buffered updates; a collective, so every rank must call it.

        Returns:
            Averages over the interval (``loss``, ``nll``, ``ppl``, ``lr``, ``gnorm``, ``tok/s``,
            ``ups``, ``wpb`` tokens and ``bsz`` sentences per update, ``wall`` seconds since
            the start), empty when nothing was buffered.
        """
        if not self.pending:
            return {}
        pending, self.pending = self.pending, []
        sums = torch.stack([torch.stack([s.loss_sum, s.nll_sum]) for s in pending]).float()
        sums = distributed.all_reduce_sum(sums, self.ctx)
        gnorms = torch.stack([s.gnorm.float() for s in pending])
        loss_nll, gnorm_list = sums.tolist(), gnorms.tolist()  # the host sync of this interval
        norms, self.pending_layer_norms = self.pending_layer_norms, {}
        norm_values = (
            dict(zip(norms, torch.stack(list(norms.values())).tolist(), strict=True))
            if norms
            else {}
        )
        now = time.perf_counter()
        seconds = max(now - self.interval_start - self.paused_seconds, 1e-9)
        self.interval_start, self.paused_seconds = now, 0.0
        ntokens = sum(s.ntokens for s in pending)
        summary = {
            "loss": base2_per_token(sum(r[0] for r in loss_nll), ntokens),
            "nll": base2_per_token(sum(r[1] for r in loss_nll), ntokens),
            "lr": pending[-1].lr,
            "gnorm": sum(gnorm_list) / len(gnorm_list),
            "tok/s": ntokens / seconds,
            "ups": len(pending) / seconds,
            "wpb": ntokens / len(pending),
            "bsz": sum(s.nsentences for s in pending) / len(pending),
            "wall": now - self.run_start,
        }
        summary["ppl"] = perplexity(summary["nll"])
        if self.ctx.is_main:
            self._write_updates(pending, loss_nll, gnorm_list, now)
            self._write_summary(pending[-1], summary, norm_values)
        return summary

    def _write_updates(
        self,
        pending: list[UpdateStats],
        loss_nll: list[list[float]],
        gnorms: list[float],
        now: float,
    ) -> None:
        records = []
        for stats, (loss, nll), gnorm in zip(pending, loss_nll, gnorms, strict=True):
            record: dict[str, Any] = {
                "split": "train",
                "epoch": stats.epoch,
                "update": stats.update,
                "loss": base2_per_token(loss, stats.ntokens),
                "nll": base2_per_token(nll, stats.ntokens),
                "lr": stats.lr,
                "gnorm": gnorm,
                "ntokens": stats.ntokens,
                "nsentences": stats.nsentences,
                "wall": round(now - self.run_start, 3),
                "train_wall": round(self.train_seconds(now), 3),
            }
            if stats.loss_scale is not None:
                record["loss_scale"] = stats.loss_scale
            records.append(record)
        self._append(records)

    def _append(self, records: list[dict[str, Any]]) -> None:
        """Append JSON lines to train_log.jsonl; a full disk becomes a one-line UserError."""
        try:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.writelines(json.dumps(record) + "\n" for record in records)
        except OSError as e:  # the checkpoints written so far stay good
            raise UserError(f"cannot write {self.log_path}: {e.strerror or e}") from e

    def _write_summary(
        self, last: UpdateStats, summary: dict[str, float], layer_norms: dict[str, float]
    ) -> None:
        shown = dict(summary)
        if last.loss_scale is not None:
            shown["loss_scale"] = last.loss_scale
        self.console.train(epoch=last.epoch, update=last.update, summary=shown)
        if self.writer is not None:
            step = last.update
            for key in ("loss", "nll", "ppl", "lr", "gnorm"):
                self.writer.add_scalar(f"train/{key}", summary[key], step)
            self.writer.add_scalar("train/tokens_per_s", summary["tok/s"], step)
            if last.loss_scale is not None:
                self.writer.add_scalar("train/loss_scale", last.loss_scale, step)
            for name, value in layer_norms.items():
                self.writer.add_scalar(f"grad_norm/{name}", value, step)

    def validation(
        self, *, epoch: int, update: int, stats: dict[str, float], seconds: float = 0.0
    ) -> None:
        """Log one validation result (``loss``, ``nll``, ``ppl``, optional ``bleu``, ``best``).

        train_log.jsonl also gets ``train_wall`` (training seconds before this validation)
        and ``valid_seconds`` (what this validation took).
        """
        if not self.ctx.is_main:
            return
        self.console.valid(epoch=epoch, update=update, stats=stats)
        timing = {
            "train_wall": round(self.train_seconds(), 3),
            "valid_seconds": round(seconds, 3),
        }
        self._append([{"split": "valid", "epoch": epoch, "update": update, **stats, **timing}])
        if self.writer is not None:
            for key, value in stats.items():
                self.writer.add_scalar(f"valid/{key}", value, update)
            self.writer.flush()

    def info(self, message: str) -> None:
        """Print a plain message (rank 0 only), above the progress bar if there is one."""
        if self.ctx.is_main:
            self.console.info(message)

    def sample(self, *, id: int, source: str, hypothesis: str, reference: str) -> None:
        """Print one validation translation (rank 0 only)."""
        if self.ctx.is_main:
            self.console.sample(id=id, source=source, hypothesis=hypothesis, reference=reference)

    def end_epoch(self) -> None:
        """Finish the progress bar line of the epoch."""
        self.console.end_epoch()

    def close(self) -> None:
        """Flush and close TensorBoard and the progress bar (rank 0)."""
        self.end_epoch()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
