"""Writing a data directory so that it is either finished or visibly unfinished, never in between.

Outputs go to a hidden staging directory inside DEST (same file system, so moving is a rename).
:func:`publish` first removes the old ``manifest.json`` (from then on DEST does not look
finished), moves the new files in, and writes the new manifest last through a temporary file,
fsync and rename. Readers treat a directory without ``manifest.json`` as unfinished.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from enum import Enum
from typing import Any

from nmt_preln.atomic_file import atomic_write
from nmt_preln.config import PreprocessConfig
from nmt_preln.errors import UserError

MANIFEST = "manifest.json"
STAGING_PREFIX = ".partial-"
# Files of a previous dataset that a new one replaces (fairseq data-bin files included).
_DATASET_FILE = re.compile(
    r"^(dict\.[^/]+\.txt|spm(\.[^./]+)?\.(model|vocab)|preprocess\.log"
    r"|[^./]+\.[^./]+-[^./]+\.[^./]+\.(bin|idx))$"
)
_PATH_OPTIONS = ("trainpref", "validpref", "testpref", "srcdict", "tgtdict", "spm_model")


def fingerprint(cfg: PreprocessConfig) -> dict[str, Any]:
    """The options that decide a dataset's content (paths made absolute), as plain JSON types.

    ``workers`` (speed only), ``overwrite`` and ``destdir`` are left out, so rerunning the same
    command with another number of workers still counts as the same dataset.
    """
    plain: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        if f.name in ("workers", "overwrite", "destdir"):
            continue
        value = getattr(cfg, f.name)
        if isinstance(value, Enum):
            value = value.value
        if f.name in _PATH_OPTIONS and value:
            value = ",".join(os.path.abspath(p.strip()) for p in value.split(","))
        plain[f.name] = value
    return plain


def check_destination(destdir: str, expected: dict[str, Any], *, overwrite: bool) -> None:
    """Refuse a DEST that holds a different dataset or other files, unless ``overwrite``.

    Args:
        destdir: the output directory (may not exist yet).
        expected: :func:`fingerprint` of the current command.
        overwrite: replace whatever dataset DEST holds.
    """
    if os.path.exists(destdir) and not os.path.isdir(destdir):
        raise UserError(f"--destdir {destdir}: exists and is not a directory")
    if overwrite or not os.path.isdir(destdir):
        return
    entries = [e for e in os.listdir(destdir) if not e.startswith(STAGING_PREFIX)]
    if not entries:
        return
    manifest_path = os.path.join(destdir, MANIFEST)
    if not os.path.isfile(manifest_path):
        raise UserError(
            f"--destdir {destdir} is not empty and holds no finished nmt-preprocess dataset; "
            f"pass --overwrite to write into it anyway"
        )
    try:
        with open(manifest_path, encoding="utf-8") as f:
            previous = json.load(f).get("config")
    except (OSError, ValueError, AttributeError):
        previous = None
    if previous != expected:
        raise UserError(
            f"--destdir {destdir} already holds a different dataset (made with other options or "
            f"inputs, see {manifest_path}); pass --overwrite to replace it"
        )


@contextmanager
def staging(destdir: str) -> Iterator[str]:
    """Create DEST (if needed) and a staging directory inside it; on failure remove both
    (DEST only when this call created it and it is empty again)."""
    created = not os.path.exists(destdir)
    try:
        os.makedirs(destdir, exist_ok=True)
        work = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=destdir)
    except OSError as e:
        raise UserError(f"--destdir {destdir}: cannot create: {e.strerror}") from None
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if created:
            with suppress(OSError):
                os.rmdir(destdir)
        raise


def publish(work: str, destdir: str, manifest: dict[str, Any]) -> None:
    """Replace DEST's dataset by the files in ``work``, then write ``manifest.json`` last."""
    with suppress(FileNotFoundError):
        os.remove(os.path.join(destdir, MANIFEST))
    for name in os.listdir(destdir):
        path = os.path.join(destdir, name)
        if _DATASET_FILE.match(name) and os.path.isfile(path):
            os.remove(path)  # a stale split (e.g. an old valid1) must not outlive its dataset
    for name in os.listdir(work):
        os.replace(os.path.join(work, name), os.path.join(destdir, name))
    os.rmdir(work)
    write_json_atomic(os.path.join(destdir, MANIFEST), manifest)


def write_json_atomic(path: str, value: dict[str, Any]) -> None:
    """Write JSON through :func:`atomic_write`: readers see all of it or the old file."""
    with atomic_write(path) as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")
