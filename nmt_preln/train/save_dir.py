"""The save directory of one training run: writable, locked, and free of our stale temp files.

:func:`open_save_dir` runs before anything is written (rank 0 only under DDP):

1. ``checkpoint.save_dir`` and ``tensorboard_dir`` are created and a probe file is written and
   removed in each, so a read-only or full directory fails in one line before training rather
   than inside TensorBoard's writer or at the first checkpoint.
2. An exclusive ``fcntl.flock`` is taken on ``<save_dir>/.nmt-train.lock``, which holds the
   owner's pid, host and start time as JSON. A second run into the same directory stops with
   one line naming the first. The kernel drops a flock when its process dies (SIGKILL, OOM
   kill, power loss of a local disk), so a lock file left behind by a dead run is stale by
   construction: the next run gets the lock, logs whose it was, and rewrites it. The pid is
   used only for the message (and to say "no longer running" when a child process that
   inherited the descriptor still holds the lock).
3. Temp files of interrupted atomic writes are deleted: ``.{name}.{random}.tmp`` from
   :func:`nmt_preln.checkpoint.store.save_checkpoint` and ``train_log.jsonl.tmp`` from
   :func:`nmt_preln.train.metrics.truncate_log`, where ``name`` is one of our file names, and
   the probe files of step 1.
   Only after the lock is held: before, the temp file might be a live run's checkpoint.

flock is advisory and per open file description; on NFS it is emulated with fcntl locks (per
host and process), which still excludes a second run on another host on Linux >= 2.6.12.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nmt_preln.config import TrainConfig
from nmt_preln.errors import UserError
from nmt_preln.train import distributed
from nmt_preln.train.distributed import DistributedContext
from nmt_preln.train.metrics import LOG_NAME

LOCK_NAME = ".nmt-train.lock"
# flock errors that mean "this file system has no locks", not "someone holds it".
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS}
# Our names only: checkpoint_last.pt, checkpoint_best.pt, checkpoint3.pt, checkpoint_3_1200.pt
# and the log; mkstemp's random part is 8 characters of [a-z0-9_].
_OURS = rf"checkpoint(?:_last|_best|\d+|_\d+_\d+)\.pt|{re.escape(LOG_NAME)}"
_PROBE = ".nmt-write-probe."
_STALE_TEMP = re.compile(
    rf"\.(?:{_OURS})\.[a-z0-9_]{{8}}\.tmp|{re.escape(LOG_NAME)}\.tmp|{re.escape(_PROBE)}[a-z0-9_]{{8}}"
)


def check_writable(path: str, option: str) -> None:
    """Create ``path`` if needed and prove that a file can be written in it.

    Args:
        path: the directory.
        option: the setting that named it (for the message), e.g. ``checkpoint.save_dir``.

    Raises:
        UserError: the directory cannot be created, or a file cannot be written in it
            (read-only file system, no permission, disk full).
    """
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise UserError(f"{option}={path}: cannot create the directory: {e.strerror}") from e
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=_PROBE)
        try:
            os.write(fd, b"x")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        raise UserError(f"{option}={path}: the directory is not writable: {e.strerror}") from e


def _describe(owner: dict[str, Any]) -> str:
    pid, host = owner.get("pid", "?"), owner.get("host", "?")
    since = f" since {owner['started']}" if owner.get("started") else ""
    return f"pid {pid} on {host}{since}"


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _read_owner(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        owner = json.loads(os.read(fd, 4096).decode("utf-8", "replace") or "{}")
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) else {}


class SaveDirLock:
    """An exclusive lock on a save directory, held until :meth:`release`.

    Args:
        save_dir: the directory (must exist).

    Raises:
        UserError: another live process holds the lock (the message names it).
    """

    def __init__(self, save_dir: str) -> None:
        self.path = os.path.join(save_dir, LOCK_NAME)
        self.fd: int | None = None
        self.previous: dict[str, Any] = {}
        self.unsupported: str | None = None  # why the file system refused to lock
        while self.fd is None:
            self.fd = self._try_lock()

    def _try_lock(self) -> int | None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UserError(f"cannot create the lock file {self.path}: {e.strerror}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in _NO_LOCKS:  # e.g. some FUSE or NFS mounts: run, but say so
                self.unsupported = e.strerror or str(e)
                return fd
            owner = _read_owner(fd)
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UserError(f"cannot lock {self.path}: {e.strerror}") from e
            gone = "" if _pid_alive(owner.get("pid")) else " (no longer running: a child?)"
            raise UserError(
                f"checkpoint.save_dir={os.path.dirname(self.path)} is in use by another "
                f"nmt-train ({_describe(owner)}{gone}); wait for it to finish or choose "
                "another checkpoint.save_dir"
            ) from None
        # The previous owner may have unlinked the file between our open and our flock:
        # then we locked an orphan inode and must start over on the new file.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            return None
        self.previous = _read_owner(fd)
        self._write_owner(fd)
        return fd

    def _write_owner(self, fd: int) -> None:
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(owner) + "\n").encode("utf-8"))
        except OSError as e:  # a full disk: the lock holds, only the message would lack it
            raise UserError(f"cannot write the lock file {self.path}: {e.strerror}") from e

    def release(self) -> None:
        """Delete the lock file and drop the lock (unlinking first: see :meth:`_try_lock`)."""
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self.fd)  # closing the last descriptor releases the flock
        self.fd = None


def remove_stale_temp_files(save_dir: str) -> list[Path]:
    """Delete the temp files of interrupted atomic writes (our names only, never others).

    Call only while holding :class:`SaveDirLock`: a live run's temp file matches too.

    Returns:
        The deleted paths.
    """
    removed = []
    for path in Path(save_dir).iterdir():
        if _STALE_TEMP.fullmatch(path.name) and path.is_file() and not path.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return sorted(removed)


@contextlib.contextmanager
def open_save_dir(save_dir: str, *, tensorboard_dir: str | None) -> Iterator[list[str]]:
    """Check, lock and clean ``save_dir`` (and check ``tensorboard_dir``); unlock on exit.

    Args:
        save_dir: ``checkpoint.save_dir``.
        tensorboard_dir: the TensorBoard directory, None when TensorBoard is off.

    Yields:
        Lines worth telling the user (a stale lock taken over, temp files removed).

    Raises:
        UserError: a directory is unusable, or another run holds the lock.
    """
    check_writable(save_dir, "checkpoint.save_dir")
    lock = SaveDirLock(save_dir)
    try:
        notes = []
        if lock.unsupported:
            notes.append(
                f"warning: {lock.path}: the file system cannot lock ({lock.unsupported}); "
                "nothing stops a second run into this checkpoint.save_dir"
            )
        if lock.previous:
            notes.append(
                f"{lock.path}: took over the lock of an ended run ({_describe(lock.previous)})"
            )
        if not lock.unsupported:  # unlocked, a temp file may be another run's live write
            removed = remove_stale_temp_files(save_dir)
            notes += [f"removed {p}, left by an interrupted write" for p in removed]
        if tensorboard_dir is not None:
            check_writable(tensorboard_dir, "tensorboard_dir")
        yield notes
    finally:
        lock.release()


@contextlib.contextmanager
def claim_save_dir(cfg: TrainConfig, ctx: DistributedContext) -> Iterator[list[str]]:
    """:func:`open_save_dir` on rank 0; every rank learns whether it failed (a collective).

    Under DDP only rank 0 writes, so only it locks; the other ranks stop with rank 0's error
    instead of waiting for it in the first collective until the DDP timeout.
    """
    tensorboard_dir = cfg.tensorboard_dir or os.path.join(cfg.checkpoint.save_dir, "tensorboard")
    with contextlib.ExitStack() as stack:
        notes: list[str] = []
        error: str | None = None
        if ctx.is_main:
            try:
                notes = stack.enter_context(
                    open_save_dir(cfg.checkpoint.save_dir, tensorboard_dir=tensorboard_dir)
                )
            except UserError as e:
                if not ctx.enabled:
                    raise
                error = str(e)
        first = distributed.all_gather_objects(error, ctx)[0]
        if first is not None:
            raise UserError(first if ctx.is_main else f"rank {ctx.rank}: rank 0 stopped: {first}")
        yield notes
