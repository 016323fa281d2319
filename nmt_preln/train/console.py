"""What ``nmt-train`` prints on stdout: timestamped text lines or JSON lines, and a progress bar.

``log_format=text`` (the default) prints lines like fairseq's, prefixed by the local time::

    2026-12-02 15:33:49 | epoch 001 | update 000100 | loss 7.123 | nll 7.001 | ppl 128.2 | ...

``log_format=json`` prints one JSON object per line and nothing else, so the stream can be
parsed line by line (fairseq's ``--log-format json``, without its logging prefix). Field names
follow fairseq: ``epoch``, ``update``, ``loss``, ``nll_loss``, ``ppl``, ``wps`` (target tokens
per second), ``ups`` (updates per second), ``wpb`` (target tokens per update), ``bsz``
(sentences per update), ``lr``, ``gnorm``, ``loss_scale``, ``wall`` (seconds since start),
plus ``time`` and ``split`` (``train``, ``valid``, ``sample``) or ``message`` for other lines.
The per-update records of ``train_log.jsonl`` are written elsewhere (:mod:`.metrics`).
"""

from __future__ import annotations

import json
import time
from typing import Any, TextIO

from nmt_preln.config import LogFormat

# fairseq's logging date format.
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def timestamp() -> str:
    """The local time as log lines show it."""
    return time.strftime(TIME_FORMAT)


class _ProgressBar:
    """A one-line ``\\r`` progress bar for terminals (no tqdm dependency)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last_draw = 0.0
        self.text = ""

    def update(self, *, epoch: int, done: int, total: int, postfix: str) -> None:
        now = time.monotonic()
        if now - self.last_draw < 0.2 and done < total:
            return  # redraw at most five times a second
        self.last_draw = now
        width = 20
        filled = width * done // max(total, 1)
        bar = "#" * filled + "-" * (width - filled)
        self.text = f"epoch {epoch:03d} |{bar}| {done}/{total} {postfix}"
        self.stream.write("\r" + self.text + "\033[K")
        self.stream.flush()

    def write_line(self, line: str) -> None:
        """Print a log line above the bar, then draw the bar again."""
        self.stream.write("\r\033[K" + line + "\n")
        if self.text:
            self.stream.write(self.text)
        self.stream.flush()

    def close(self) -> None:
        if self.text:
            self.stream.write("\n")
            self.stream.flush()
        self.text = ""


def _rounded(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


class Console:
    """Formats and prints the log lines of one run (rank 0 builds one).

    Args:
        stream: where the lines go (stdout).
        log_format: text or json.
        progress_bar: draw a bar when ``stream`` is a terminal (text format only: a bar
            would break the one-object-per-line promise of json).
    """

    def __init__(self, stream: TextIO, *, log_format: LogFormat, progress_bar: bool) -> None:
        self.stream = stream
        self.json = log_format == LogFormat.json
        use_bar = progress_bar and not self.json and stream.isatty()
        self.bar = _ProgressBar(stream) if use_bar else None
        self.postfix = ""

    def train(self, *, epoch: int, update: int, summary: dict[str, float]) -> None:
        """One log interval: ``summary`` from :meth:`TrainMetrics.flush` (+ ``loss_scale``)."""
        self.postfix = f"loss {summary['loss']:.3f} lr {summary['lr']:.3g}"
        if self.json:
            names = {"nll": "nll_loss", "tok/s": "wps"}
            fields = {names.get(k, k): v for k, v in summary.items()}
            self._json({"split": "train", "epoch": epoch, "update": update, **fields})
            return
        line = (
            f"epoch {epoch:03d} | update {update:06d} | loss {summary['loss']:.3f} | "
            f"nll {summary['nll']:.3f} | ppl {summary['ppl']:.1f} | lr {summary['lr']:.4g} | "
            f"gnorm {summary['gnorm']:.3f} | tok/s {summary['tok/s']:.0f}"
        )
        if "loss_scale" in summary:
            line += f" | loss_scale {summary['loss_scale']:g}"
        self._text(line)

    def valid(self, *, epoch: int, update: int, stats: dict[str, float]) -> None:
        """One validation: ``loss``, ``nll``, ``ppl``, optional ``bleu``, ``best_<metric>``."""
        if self.json:
            fields = {("nll_loss" if k == "nll" else k): v for k, v in stats.items()}
            self._json({"split": "valid", "epoch": epoch, "update": update, **fields})
            return
        parts = [f"epoch {epoch:03d} | update {update:06d} | valid"]
        parts += [f"{key} {value:.3f}" for key, value in stats.items()]
        self._text(" | ".join(parts))

    def sample(self, *, id: int, source: str, hypothesis: str, reference: str) -> None:
        """One validation translation (``validate_bleu_print_samples``)."""
        if self.json:
            record = {"id": id, "source": source, "hypothesis": hypothesis}
            self._json({"split": "sample", **record, "reference": reference})
            return
        for tag, text in (("S", source), ("T", reference), ("H", hypothesis)):
            self._text(f"valid sample | {tag}-{id}\t{text}")

    def info(self, message: str) -> None:
        """A plain message (start-up, resume, stop)."""
        if self.json:
            self._json({"message": message})
        else:
            self._text(message)

    def progress(self, *, epoch: int, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(epoch=epoch, done=done, total=total, postfix=self.postfix)

    def end_epoch(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _json(self, record: dict[str, Any]) -> None:
        fields = {"time": timestamp(), **{k: _rounded(v) for k, v in record.items()}}
        self._write(json.dumps(fields, ensure_ascii=False))

    def _text(self, line: str) -> None:
        self._write(f"{timestamp()} | {line}")

    def _write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write_line(line)
        else:
            self.stream.write(line + "\n")
            self.stream.flush()
