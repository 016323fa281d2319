"""Raw text reading: line counts, UTF-8 and NUL checks with line numbers, block boundaries."""

from __future__ import annotations

from pathlib import Path

import pytest

from nmt_preln.data.rawtext import count_lines, parallel_line_count, read_line_chunks
from nmt_preln.errors import UserError


def _lines(path: Path, block_bytes: int) -> list[str]:
    return [
        line for chunk in read_line_chunks(str(path), block_bytes=block_bytes) for line in chunk
    ]


@pytest.mark.parametrize("block_bytes", [1, 7, 1 << 20])
def test_lines_survive_any_block_size(tmp_path: Path, block_bytes: int) -> None:
    text = ["über straße", "", "  padded  ", "crlf", "last"]
    path = tmp_path / "t.de"
    path.write_bytes("\ufeffüber straße\n\n  padded  \ncrlf\r\nlast".encode())
    assert _lines(path, block_bytes) == ["über straße", "", "padded", "crlf", "last"]
    assert count_lines(str(path), block_bytes=block_bytes) == len(text)


def test_count_lines_edge_cases(tmp_path: Path) -> None:
    for content, expected in [(b"", 0), (b"a", 1), (b"a\n", 1), (b"\n\n", 2), (b"a\nb", 2)]:
        path = tmp_path / "x"
        path.write_bytes(content)
        assert count_lines(str(path)) == expected
        assert len(_lines(path, 4)) == expected


@pytest.mark.parametrize("block_bytes", [3, 1 << 20])
def test_invalid_utf8_names_file_and_line(tmp_path: Path, block_bytes: int) -> None:
    path = tmp_path / "bad.de"
    path.write_bytes(b"ok\nstill ok\nbad \xc3\x28 here\nok\n")
    with pytest.raises(UserError, match=r"bad\.de: line 3: invalid UTF-8 \(byte 0xc3\)"):
        count_lines(str(path), block_bytes=block_bytes)
    with pytest.raises(UserError, match="line 3: invalid UTF-8"):
        _lines(path, block_bytes)


@pytest.mark.parametrize("block_bytes", [5, 1 << 20])
def test_nul_byte_names_file_and_line(tmp_path: Path, block_bytes: int) -> None:
    path = tmp_path / "bin.de"
    path.write_bytes(b"a\nb\nc\nd\x00\x01\x02\n")
    with pytest.raises(UserError, match=r"bin\.de: line 4: NUL byte"):
        count_lines(str(path), block_bytes=block_bytes)


def test_parallel_counts_must_match(tmp_path: Path) -> None:
    (tmp_path / "c.de").write_text("a\nb\nc\n", encoding="utf-8")
    (tmp_path / "c.en").write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"c\.de has 3 lines, .*c\.en has 2"):
        parallel_line_count(str(tmp_path / "c.de"), str(tmp_path / "c.en"))
    with pytest.raises(UserError, match=r"missing\.de: file not found"):
        count_lines(str(tmp_path / "missing.de"))
