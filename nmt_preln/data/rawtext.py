"""Reading raw parallel text safely: UTF-8, no NUL bytes, one sentence per line.

Files are read in large blocks that end on a line boundary, so checking and splitting cost a
few passes of C code per block rather than Python work per character; memory stays bounded by
the block size. Every problem becomes a one-line UserError that names the file and line.
"""

from __future__ import annotations

from collections.abc import Iterator

from nmt_preln.errors import UserError

BLOCK_BYTES = 1 << 24  # 16 MiB of text per block: big enough to amortize, small enough to hold


def _blocks(path: str, *, block_bytes: int) -> Iterator[tuple[int, bytes]]:
    """Yield (number of lines before the block, block) for blocks ending at a newline."""
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed by the with below; open errors reported)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None
    lines_before = 0
    with f:
        while block := f.read(block_bytes):
            block += f.readline()  # finish the current line so no line spans two blocks
            yield lines_before, block
            lines_before += block.count(b"\n")


def _decode(path: str, block: bytes, *, lines_before: int) -> str:
    """Decode a block as UTF-8, refusing NUL bytes (binary files) and invalid sequences."""
    nul = block.find(b"\x00")
    if nul >= 0:
        line = lines_before + block.count(b"\n", 0, nul) + 1
        raise UserError(f"{path}: line {line}: NUL byte (a binary file, not text?)")
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError as e:
        line = lines_before + block.count(b"\n", 0, e.start) + 1
        bad = block[e.start : e.start + 1].hex()
        raise UserError(f"{path}: line {line}: invalid UTF-8 (byte 0x{bad})") from None


def count_lines(path: str, *, block_bytes: int = BLOCK_BYTES) -> int:
    """Check that ``path`` is UTF-8 text without NUL bytes and return its number of lines.

    A last line without a trailing newline counts; an empty file has 0 lines.
    """
    n, last = 0, b"\n"
    for lines_before, block in _blocks(path, block_bytes=block_bytes):
        _decode(path, block, lines_before=lines_before)
        n = lines_before + block.count(b"\n")
        last = block[-1:]
    return n if last == b"\n" else n + 1


def read_line_chunks(path: str, *, block_bytes: int = BLOCK_BYTES) -> Iterator[list[str]]:
    """Yield the lines of ``path`` in chunks, each line stripped of surrounding whitespace.

    Args:
        path: a UTF-8 text file, one sentence per line (``\\r\\n`` endings are fine).
        block_bytes: about how many bytes each chunk covers.

    Yields:
        Lists of lines; their concatenation has exactly :func:`count_lines` lines.
    """
    first = True
    for lines_before, block in _blocks(path, block_bytes=block_bytes):
        text = _decode(path, block, lines_before=lines_before)
        if first and text.startswith("\ufeff"):
            text = text[1:]  # a UTF-8 byte-order mark is not part of the first sentence
        first = False
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()  # the block ended with a newline
        yield [line.strip() for line in lines]


def parallel_line_count(src_path: str, tgt_path: str) -> int:
    """Validate both sides of a parallel corpus and return their (equal) number of lines."""
    n_src, n_tgt = count_lines(src_path), count_lines(tgt_path)
    if n_src != n_tgt:
        raise UserError(f"line counts differ: {src_path} has {n_src} lines, {tgt_path} has {n_tgt}")
    return n_src
