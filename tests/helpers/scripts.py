"""The console scripts as a user runs them: real subprocesses from this venv's ``bin``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
# One thread per script (the cores are shared); unbuffered, so a streamed line shows at once.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def run_script(
    *args: str, cwd: Path, stdin: str | None = None, ok: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``BIN/args[0] args[1:]`` in ``cwd``; with ``ok`` it must exit 0 (else the test fails
    showing its output)."""
    proc = subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=timeout,
    )
    if ok:
        assert proc.returncode == 0, f"{args[0]} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc
