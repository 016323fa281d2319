"""Atomic, durable file replacement: the one way nmt-preln's writers replace a file.

A reader, or the next run after a crash, sees either the old file or the complete new one:
the content goes to a temporary file beside the target (``.NAME.XXXXXXXX.tmp``, a pattern
:mod:`nmt_preln.train.save_dir` recognizes as a stale temp after a kill), is flushed and
fsynced, renamed over the target, and then the directory is fsynced so that the rename itself
survives a power cut. On any error the temporary file is removed and the target is untouched.
Checkpoints, train_log.jsonl, data manifests, sweep results and prepared corpora all go
through :func:`atomic_write`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make renames in ``directory`` durable (a filesystem that refuses is not an error:
    the file itself is complete by then)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    """The process umask, read without changing it where Linux allows."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    # Elsewhere: set and restore (for an instant, files other threads create get mode 0).
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, binary: bool = False) -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` when the ``with`` block ends without error.

    Args:
        path: the file to (re)place; its directory must exist.
        binary: open in ``"wb"`` mode; otherwise text mode, UTF-8.

    Yields:
        The open temporary file.

    Raises:
        OSError: creating, writing, fsyncing or renaming failed (the target is unchanged).
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file 0600 whatever the umask; outputs are readable by whom the
        # umask allows (teammates on a shared cluster), like any file the user writes.
        os.fchmod(fd, 0o666 & ~_umask())
        f = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)
