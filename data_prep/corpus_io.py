"""What the dataset scripts share: finding release files, reading text, cleaning and writing pairs.

Release files are looked up by file name anywhere under ``--raw-dir``, plain or gzipped, and
inside the ``.tgz``/``.tar.gz``/``.tar`` archives found there (extracted into a scratch folder), so
a downloaded archive, its extracted tree and a folder of loose ``.gz`` files all work.
"""

from __future__ import annotations

import argparse
import gzip
import html
import logging
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TextIO

from nmt_preln.atomic_file import atomic_write
from nmt_preln.errors import UserError

ARCHIVE_SUFFIXES = (".tgz", ".tar.gz", ".tar")
_SEG = re.compile(r"<seg[^>]*>(.*)</seg>")
# Everything str.splitlines() breaks at: one of these inside a sentence would shift every later line
# for a reader that splits that way (U+2028 occurs in web-crawled corpora).
_LINE_BREAKS = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def open_text(path: Path) -> TextIO:
    """Open a UTF-8 text file for reading, gunzipping ``*.gz`` files."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="\n")
    return open(path, encoding="utf-8", newline="\n")


def iter_lines(path: Path) -> Iterator[str]:
    """The lines of ``path`` without their line ends (``\\n`` or ``\\r\\n``)."""
    try:
        with open_text(path) as f:
            for line in f:
                yield line.rstrip("\r\n")
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise UserError(f"{path}: cannot read: {e}") from e


def iter_pairs(src: Path, tgt: Path) -> Iterator[tuple[str, str]]:
    """Line pairs of two aligned files; a different number of lines is an error."""
    sentinel = object()
    src_lines, tgt_lines = iter_lines(src), iter_lines(tgt)
    n = 0
    while True:
        a, b = next(src_lines, sentinel), next(tgt_lines, sentinel)
        if a is sentinel and b is sentinel:
            return
        if a is sentinel or b is sentinel:
            short = src if a is sentinel else tgt
            raise UserError(
                f"{short} has only {n} lines, fewer than {tgt if short == src else src}"
            )
        n += 1
        yield str(a), str(b)


def segments(path: Path, *, unescape: bool) -> list[str]:
    """The text of every ``<seg id=...>`` line of an XML/SGM file, stripped.

    Args:
        path: an IWSLT ``.xml`` or WMT ``.sgm`` file (optionally gzipped).
        unescape: decode XML entities (``&amp;`` -> ``&``); the IWSLT files are real XML.
    """
    found = []
    for line in iter_lines(path):
        if "<seg id" in line:
            match = _SEG.search(line)
            if match is None:
                raise UserError(f"{path}: a <seg> line without </seg>: {line[:60]!r}")
            text = match.group(1).strip()
            found.append(html.unescape(text) if unescape else text)
    if not found:
        raise UserError(f"{path}: no <seg id=...> lines found")
    return found


def clean_pair(
    src: str, tgt: str, *, min_len: int, max_len: int, ratio: float
) -> tuple[str, str] | None:
    """Moses ``clean-corpus-n.perl``: the pair with whitespace collapsed, or None to drop it.

    With ``n_s`` and ``n_t`` the whitespace-separated word counts, a pair is kept when
    ``min_len <= n_s, n_t <= max_len`` and ``max(n_s / n_t, n_t / n_s) <= ratio``.
    """
    a, b = " ".join(src.split()), " ".join(tgt.split())
    n_a, n_b = len(a.split()), len(b.split())
    if not (min_len <= n_a <= max_len and min_len <= n_b <= max_len) or n_a == 0 or n_b == 0:
        return None
    if n_a / n_b > ratio or n_b / n_a > ratio:
        return None
    return a, b


def make_dir(path: Path) -> None:
    """``mkdir -p``; failing is a UserError that names the folder."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create output directory {path}: {e.strerror}") from e


def write_pairs(
    out_dir: Path, split: str, langs: tuple[str, str], pairs: Iterable[tuple[str, str]]
) -> int:
    """Write ``out_dir/split.{langs[0]}`` and ``.{langs[1]}``; returns the number of pairs.

    The files appear complete or not at all: they are written under temporary names and renamed
    at the end, so an error half-way leaves no truncated split behind. Line-break characters inside
    a sentence become spaces, so that the two files stay aligned for any reader.
    """
    make_dir(out_dir)
    paths = [out_dir / f"{split}.{lang}" for lang in langs]
    n = 0
    try:
        with atomic_write(paths[0]) as fa, atomic_write(paths[1]) as fb:
            for a, b in pairs:
                fa.write(_LINE_BREAKS.sub(" ", a) + "\n")
                fb.write(_LINE_BREAKS.sub(" ", b) + "\n")
                n += 1
            if n == 0:  # raised inside: neither file is replaced
                raise UserError(f"no {split} pairs left to write to {paths[0]}")
    except OSError as e:
        raise UserError(f"cannot write {out_dir}: {e.strerror}") from e
    return n


class ReleaseFiles:
    """Finds release files by name under a directory, in plain, ``.gz`` or archived form.

    Use as a context manager: files taken out of archives live in a scratch folder inside
    ``scratch_parent`` that is removed on exit.
    """

    def __init__(self, raw_dir: Path, *, scratch_parent: Path) -> None:
        if not raw_dir.is_dir():
            raise UserError(f"--raw-dir {raw_dir}: no such directory")
        self.raw_dir = raw_dir
        self._scratch_parent = scratch_parent
        self._scratch: Path | None = None
        self._plain = {p.name: p for p in sorted(raw_dir.rglob("*")) if p.is_file()}

    def __enter__(self) -> ReleaseFiles:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def find(self, names: Iterable[str]) -> dict[str, Path]:
        """Paths of those ``names`` (or ``name.gz``) that exist; archives are searched once."""
        wanted = list(names)
        found = {n: self._plain.get(n) or self._plain.get(n + ".gz") for n in wanted}
        missing = {n for n, p in found.items() if p is None}
        archives = [p for n, p in self._plain.items() if n.endswith(ARCHIVE_SUFFIXES)]
        for archive in archives if missing else []:
            found.update(self._extract(archive, missing))
            missing -= {n for n in missing if found.get(n) is not None}
        return {n: p for n, p in found.items() if p is not None}

    def require(self, names: Iterable[str], *, hint: str = "") -> dict[str, Path]:
        """Like :meth:`find`, but a missing file is a :class:`UserError` that names it."""
        wanted = list(names)
        found = self.find(wanted)
        for name in wanted:
            if name not in found:
                raise UserError(f"{name} not found under --raw-dir {self.raw_dir}{hint}")
        return found

    def _extract(self, archive: Path, names: set[str]) -> dict[str, Path]:
        if self._scratch is None:
            self._scratch_parent.mkdir(parents=True, exist_ok=True)
            self._scratch = Path(tempfile.mkdtemp(prefix=".extract-", dir=self._scratch_parent))
        found: dict[str, Path] = {}
        try:
            with tarfile.open(archive, "r|*") as tar:  # one streaming pass, no seeking back
                for member in tar:
                    name = Path(member.name).name
                    if member.isfile() and name in names and name not in found:
                        target = self._scratch / f"{len(found)}-{name}"
                        src = tar.extractfile(member)
                        assert src is not None  # member.isfile()
                        with src, open(target, "wb") as dst:
                            shutil.copyfileobj(src, dst)
                        found[name] = target
        except (tarfile.TarError, OSError, EOFError) as e:
            raise UserError(f"{archive}: cannot read archive: {e}") from e
        return found


def download(url: str, dest_dir: Path) -> Path:
    """Download ``url`` into ``dest_dir`` (kept if already there); a failure is a UserError."""
    target = dest_dir / url.rsplit("/", 1)[-1]
    if target.is_file() and target.stat().st_size > 0:
        return target
    dest_dir.mkdir(parents=True, exist_ok=True)
    try:
        with (
            urllib.request.urlopen(url, timeout=60) as response,
            atomic_write(target, binary=True) as f,
        ):
            shutil.copyfileobj(response, f)
    except (OSError, ValueError) as e:  # URLError and socket timeouts are OSErrors
        raise UserError(f"could not download {url} ({e}); pass --raw-dir DIR with the files") from e
    return target


SPLITS = ("train", "valid", "test")


def parse_splits(text: str) -> tuple[str, ...]:
    """The argparse type of ``--splits train,valid,test``."""
    splits = tuple(s for s in text.split(",") if s)
    if not splits or set(splits) - set(SPLITS):
        raise argparse.ArgumentTypeError(f"expected some of train,valid,test, got {text!r}")
    return splits


def run_cli(prog: str, body: Callable[[], dict[str, int]]) -> int:
    """Run ``body``, print its per-split counts, and turn a UserError into one line and status 1."""
    logging.basicConfig(level=logging.INFO, format=f"{prog}: %(message)s")
    try:
        counts = body()
    except UserError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    for split, n in counts.items():
        print(f"{split}: {n} pairs")
    return 0
