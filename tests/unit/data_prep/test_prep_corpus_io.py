"""The shared helpers of the dataset scripts: cleaning, aligned reading, release lookup, writing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from nmt_preln.data_prep import corpus_io
from prep_release import make_tgz, write_text, xml_doc

from nmt_preln.errors import UserError


@pytest.mark.parametrize(
    ("src", "tgt", "kept"),
    [
        ("a b", "c d e", True),  # ratio exactly 1.5
        ("a b", "c d e f", False),  # ratio 2
        ("a  b ", " c\td", True),
        ("", "c", False),
        ("a " * 6, "b " * 6, False),  # longer than max_len 5
    ],
)
def test_clean_pair(src: str, tgt: str, kept: bool) -> None:
    pair = corpus_io.clean_pair(src, tgt, min_len=1, max_len=5, ratio=1.5)
    assert (pair is not None) == kept
    if pair is not None:  # whitespace collapsed like clean-corpus-n
        assert pair == (" ".join(src.split()), " ".join(tgt.split()))


def test_iter_pairs_rejects_different_lengths(tmp_path: Path) -> None:
    a = write_text(tmp_path / "a.en", ["x", "y"])
    b = write_text(tmp_path / "b.de.gz", ["x"])
    with pytest.raises(UserError, match=r"b\.de\.gz has only 1 lines"):
        list(corpus_io.iter_pairs(a, b))


def test_segments(tmp_path: Path) -> None:
    path = write_text(tmp_path / "t.xml.gz", xml_doc(["a &amp; b", "c"]))
    assert corpus_io.segments(path, unescape=True) == ["a & b", "c"]
    assert corpus_io.segments(path, unescape=False) == ["a &amp; b", "c"]
    with pytest.raises(UserError, match="no <seg"):
        corpus_io.segments(write_text(tmp_path / "e.xml", ["<doc>"]), unescape=True)


def test_release_files_plain_gz_and_archive(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    write_text(raw / "sub" / "one.txt", ["1"])
    write_text(raw / "two.txt.gz", ["2"])
    make_tgz(raw / "pack.tgz", {"deep/dir/three.txt": ["3"]})
    with corpus_io.ReleaseFiles(raw, scratch_parent=tmp_path / "out") as files:
        found = files.require(["one.txt", "two.txt", "three.txt"])
        assert [next(corpus_io.iter_lines(found[n])) for n in sorted(found)] == ["1", "3", "2"]
        assert files.find(["four.txt"]) == {}
        with pytest.raises(UserError, match=r"four\.txt not found under --raw-dir"):
            files.require(["four.txt"])
    assert list((tmp_path / "out").iterdir()) == []  # the scratch copy is gone


def test_write_pairs_leaves_nothing_on_error(tmp_path: Path) -> None:
    def failing() -> Iterator[tuple[str, str]]:
        yield "a", "b"
        raise UserError("broken input")

    with pytest.raises(UserError, match="broken input"):
        corpus_io.write_pairs(tmp_path, "train", ("de", "en"), failing())
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match="no train pairs"):
        corpus_io.write_pairs(tmp_path, "train", ("de", "en"), [])
    assert corpus_io.write_pairs(tmp_path, "train", ("de", "en"), [("a\u2028b", "c\rd")]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.de", "train.en"]
    # a line break inside a sentence would misalign the files for str.splitlines() readers
    assert (tmp_path / "train.de").read_text(encoding="utf-8").splitlines() == ["a b"]
    assert (tmp_path / "train.en").read_bytes() == b"c d\n"


def test_download(tmp_path: Path) -> None:
    source = write_text(tmp_path / "src" / "file.gz", ["x"])
    got = corpus_io.download(source.as_uri(), tmp_path / "dl")
    assert got == tmp_path / "dl" / "file.gz" and got.read_bytes() == source.read_bytes()
    with pytest.raises(UserError, match=r"could not download .*; pass --raw-dir"):
        corpus_io.download((tmp_path / "nope.tgz").as_uri(), tmp_path / "dl")
    assert [p.name for p in (tmp_path / "dl").iterdir()] == ["file.gz"]  # no temp file left
