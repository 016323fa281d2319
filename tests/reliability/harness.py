"""Helpers of the reliability tests: tiny nmt-train runs and CLI harnesses.

The toy corpus and ``TINY_TRAIN`` live in ``tests/helpers``. The console scripts run either
in-process (:func:`run_main`: fast, for the fuzz tables) or as real subprocesses
(:func:`run_cli`, :func:`train_command`: start-up, signals and exit codes as a user sees
them). Every harness has a time limit, so a hang fails instead of blocking.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from helpers.checkpoints import TINY_TRAIN
from helpers.train_log import without_clock

PYTHON = sys.executable
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def train_command(data_dir: Path, save_dir: Path, *extra: str) -> list[str]:
    """``python -m nmt_preln.cli.train`` with the tiny settings and ``extra`` overrides."""
    return [
        PYTHON,
        "-m",
        "nmt_preln.cli.train",
        *TINY_TRAIN,
        f"data.path={data_dir}",
        f"checkpoint.save_dir={save_dir}",
        *extra,
    ]


def read_log(save_dir: Path, split: str = "train") -> list[dict[str, Any]]:
    """The records of ``train_log.jsonl`` of one split, without the clock fields."""
    path = save_dir / "train_log.jsonl"
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return without_clock([r for r in records if r["split"] == split])


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def logged_updates(save_dir: Path) -> int:
    """How many lines train_log.jsonl has (0 when it does not exist yet)."""
    path = save_dir / "train_log.jsonl"
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@dataclass
class CliResult:
    """What a console script did: exit status and its captured streams."""

    code: int
    stdout: str
    stderr: str

    def error_lines(self, prog: str) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.startswith(f"{prog}: error:")]


def assert_clean_failure(result: CliResult, prog: str) -> str:
    """A non-zero exit with exactly one ``prog: error:`` line and no traceback; the line."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.code != 0, result.stderr
    errors = result.error_lines(prog)
    assert len(errors) == 1, result.stderr
    others = [
        ln
        for ln in result.stderr.splitlines()
        if ln.strip() and ln not in errors and not ln.startswith(f"{prog}: warning:")
    ]
    # argparse prints its usage block before the error line; nothing else may appear.
    assert all(ln.startswith(("usage:", " ")) for ln in others), result.stderr
    return errors[0]


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in the main thread after ``seconds`` (a hang becomes a failure)."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"no result after {seconds}s: hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_main(
    main: Callable[[list[str]], int | None],
    argv: list[str],
    *,
    stdin: bytes | None = None,
    timeout: float = 30.0,
) -> CliResult:
    """Call a console script's ``main(argv)`` in-process as the shell would, capturing output.

    Any exception other than SystemExit escaping ``main`` would be a traceback for the user,
    so it is re-raised as a test failure.
    """
    out, err = io.StringIO(), io.StringIO()
    fake_stdin = io.TextIOWrapper(io.BytesIO(stdin or b""), encoding="utf-8")
    code: int | str | None
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        _swap_stdin(fake_stdin),
        time_limit(timeout),
    ):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
        except TimeoutError:
            raise
        except BaseException as e:
            raise AssertionError(f"{argv}: {type(e).__name__} escaped main(): {e}") from e
    if isinstance(code, str):  # sys.exit("message") prints it and exits 1
        err.write(code + "\n")
        code = 1
    return CliResult(code=code or 0, stdout=out.getvalue(), stderr=err.getvalue())


@contextlib.contextmanager
def _swap_stdin(stream: io.TextIOWrapper) -> Iterator[None]:
    previous = sys.stdin
    sys.stdin = stream
    try:
        yield
    finally:
        sys.stdin = previous


def run_cli(argv: list[str], *, timeout: float = 120.0, stdin: bytes | None = None) -> CliResult:
    """Run a command in a real subprocess (start-up and exit as the user sees them)."""
    proc = subprocess.run(
        argv, input=stdin, capture_output=True, env=ENV, timeout=timeout, check=False
    )
    return CliResult(
        code=proc.returncode,
        stdout=proc.stdout.decode("utf-8", "replace"),
        stderr=proc.stderr.decode("utf-8", "replace"),
    )


# The run every kill/signal test repeats: 24 updates cross two epoch ends (11 updates per
# epoch); saving every update and validating every 3 puts some kills inside those.
MAX_UPDATE = 24
RUN = [
    f"max_update={MAX_UPDATE}",
    "checkpoint.save_interval_updates=1",
    "checkpoint.keep_interval_updates=2",
    "validate_interval_updates=3",
]


def run_argv(data_dir: Path, save_dir: Path, *extra: str) -> list[str]:
    """nmt-train's arguments for the tiny RUN saving to ``save_dir``."""
    return [*TINY_TRAIN, f"data.path={data_dir}", f"checkpoint.save_dir={save_dir}", *RUN, *extra]


def _train_child(argv: list[str], stdout: str, env: dict[str, str]) -> None:
    from nmt_preln.cli import train as cli

    os.environ.update({k: ENV[k] for k in ("OMP_NUM_THREADS", "PYTHONUNBUFFERED")})
    os.environ.update(env)
    fd = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)  # keeps pytest's output readable; the tests read it back
    os.dup2(fd, 2)
    # pytest's capture replaced sys.stdout/stderr in the parent; write to the real fds.
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
    cli.main(argv)


def start_training(
    argv: list[str], *, output: Path | None = None, env: dict[str, str] | None = None
) -> BaseProcess:
    """Run nmt-train's ``main(argv)`` in a forked child: torch is already imported there.

    Args:
        argv: the overrides.
        output: file that receives the child's stdout and stderr (default: discarded).
        env: extra environment variables of the child (e.g. torchrun's RANK, WORLD_SIZE).
    """
    context = multiprocessing.get_context("fork")
    target, args = _train_child, (argv, str(output or os.devnull), env or {})
    process = context.Process(target=target, args=args)
    process.start()
    return process
