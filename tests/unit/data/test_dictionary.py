"""Dictionary: fairseq's specials, finalize rules and dict.txt format."""

from __future__ import annotations

from pathlib import Path

import pytest

from nmt_preln.data.dictionary import Dictionary
from nmt_preln.errors import UserError


def _dict(counts: dict[str, int]) -> Dictionary:
    d = Dictionary()
    for symbol, n in counts.items():
        d.add_symbol(symbol, n)
    return d


def test_specials_in_fairseq_order() -> None:
    d = Dictionary()
    assert d.symbols == ["<s>", "<pad>", "</s>", "<unk>"]
    assert (d.bos, d.pad, d.eos, d.unk) == (0, 1, 2, 3)
    assert [d.index(s) for s in d.symbols] == [0, 1, 2, 3]


def test_add_symbol_accumulates_and_unknown_maps_to_unk() -> None:
    d = Dictionary()
    a = d.add_symbol("a", 2)
    assert d.add_symbol("a", 3) == a
    assert d.count[a] == 5 and len(d) == 5
    assert d.index("never-seen") == d.unk


def test_encode_and_string() -> None:
    d = _dict({"a": 1, "b": 1})
    ids = d.encode(["a", "zzz", "b"])
    assert ids == [d.index("a"), d.unk, d.index("b"), d.eos]
    assert d.encode(["a"], append_eos=False) == [d.index("a")]
    assert d.string([d.bos, *ids, d.pad]) == "a <unk> b"
    assert d.string(ids, strip_special=False) == "a <unk> b </s>"


def test_finalize_sorts_by_count_then_name() -> None:
    d = _dict({"c": 2, "b": 5, "a": 2, "d": 1})
    d.finalize(padding_factor=1)
    assert d.symbols[4:] == ["b", "a", "c", "d"]
    assert d.count[4:] == [5, 2, 2, 1]
    assert [d.index(s) for s in d.symbols] == list(range(len(d)))


def test_finalize_threshold_keeps_counts_at_least_threshold() -> None:
    d = _dict({"a": 3, "b": 2, "c": 1})
    d.finalize(threshold=2, padding_factor=1)
    assert d.symbols[4:] == ["a", "b"]
    assert d.index("c") == d.unk


def test_finalize_nwords_counts_the_specials() -> None:
    d = _dict({s: 10 - i for i, s in enumerate("abcdef")})
    d.finalize(nwords=6, padding_factor=1)
    assert d.symbols[4:] == ["a", "b"]


def test_finalize_pads_to_multiple_with_madeupwords() -> None:
    d = _dict({"a": 3, "b": 2, "c": 1})  # 7 symbols
    d.finalize()
    assert len(d) == 8
    assert d.symbols[-1] == "madeupword0000" and d.count[-1] == 0
    d = _dict({s: 1 for s in "abcde"})  # 9 symbols -> 16
    d.finalize(padding_factor=8)
    assert len(d) == 16
    assert d.symbols[9:] == [f"madeupword{i:04d}" for i in range(7)]


def test_save_writes_fairseq_format(tmp_path: Path) -> None:
    d = _dict({"über": 3, "a": 7})
    d.finalize(padding_factor=1)
    path = tmp_path / "dict.txt"
    d.save(path)
    assert path.read_text(encoding="utf-8") == "a 7\nüber 3\n"


def test_save_load_round_trip(tmp_path: Path) -> None:
    d = _dict({f"w{i}": i + 1 for i in range(30)})
    d.finalize()
    d.save(tmp_path / "dict.txt")
    loaded = Dictionary.load(tmp_path / "dict.txt")
    assert loaded.symbols == d.symbols
    assert loaded.count[4:] == d.count[4:]
    assert loaded == d


def test_load_overwrite_flag_redefines_a_special(tmp_path: Path) -> None:
    path = tmp_path / "dict.txt"
    path.write_text("<unk> 0 #fairseq:overwrite\nhello 4\n", encoding="utf-8")
    d = Dictionary.load(path)
    assert d.symbols[4:] == ["<unk>", "hello"]


@pytest.mark.parametrize(
    ("content", "line", "what"),
    [
        ("a 1\nb\n", 2, "malformed"),
        ("a 1\nb x\n", 2, "malformed"),
        ("a 1\n\nb 2\n", 2, "malformed"),
        ("a 1\nb 2\na 3\n", 3, "duplicate"),
        ("<pad> 5\n", 1, "duplicate"),
    ],
)
def test_load_malformed_names_the_line(tmp_path: Path, content: str, line: int, what: str) -> None:
    path = tmp_path / "dict.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=f"dict.txt: line {line}: .*{what}"):
        Dictionary.load(path)


def test_load_invalid_utf8_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "dict.txt"
    path.write_bytes(b"a 1\n\xff\xfe 2\n")
    with pytest.raises(UserError, match="line 2: invalid UTF-8"):
        Dictionary.load(path)
    with pytest.raises(UserError, match=r"nope\.txt: dictionary file not found"):
        Dictionary.load(tmp_path / "nope.txt")


def test_from_symbols_round_trip_and_validation() -> None:
    d = _dict({"x": 2, "y": 1})
    d.finalize()
    rebuilt = Dictionary.from_symbols(list(d.symbols))
    assert rebuilt == d and rebuilt.index("y") == d.index("y")
    with pytest.raises(UserError, match="must start with"):
        Dictionary.from_symbols(["x", "<s>"])
    with pytest.raises(UserError, match="duplicate"):
        Dictionary.from_symbols([*Dictionary().symbols, "x", "x"])
