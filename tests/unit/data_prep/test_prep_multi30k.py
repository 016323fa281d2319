"""Multi30k preparation on fabricated gzipped release files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from nmt_preln.data_prep import multi30k
from prep_release import read_lines, write_text


@pytest.fixture
def m30k_release(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    sizes = {"train": 6, "val": 2, "test_2016_flickr": 3, "test_2017_mscoco": 1}
    for name, n in sizes.items():
        en = [f"A {name} caption {i} ." for i in range(n)]
        de = [f"Eine {name} Beschreibung {i} ." for i in range(n)]
        if name == "train":
            de[2] = "@@"  # the release's defect
        write_text(raw / f"{name}.en.gz", en)
        write_text(raw / f"{name}.de.gz", de)
    return raw


def test_splits_and_defect_filter(m30k_release: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert multi30k.main(["--raw-dir", str(m30k_release), "--out", str(out)]) == 0
    assert len(read_lines(out / "train.en")) == len(read_lines(out / "train.de")) == 5
    assert "@@" not in read_lines(out / "train.de")
    assert "A train caption 2 ." not in read_lines(out / "train.en")  # its pair went with it
    assert read_lines(out / "valid.de") == [
        "Eine val Beschreibung 0 .",
        "Eine val Beschreibung 1 .",
    ]
    assert read_lines(out / "test.en")[2] == "A test_2016_flickr caption 2 ."


def test_other_test_set(m30k_release: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--raw-dir", str(m30k_release), "--out", str(out), "--test", "test_2017_mscoco"]
    assert multi30k.main(args) == 0
    assert read_lines(out / "test.de") == ["Eine test_2017_mscoco Beschreibung 0 ."]


def test_missing_test_file_is_one_clear_line(
    m30k_release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--raw-dir", str(m30k_release), "--out", str(tmp_path), "--test", "test_2017_flickr"]
    assert multi30k.main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "test_2017_flickr.en not found" in err[0]


def test_plain_files_work_too(m30k_release: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    for gz in m30k_release.iterdir():
        write_text(plain / gz.stem, gzip.decompress(gz.read_bytes()).decode().splitlines())
    a, b = tmp_path / "a", tmp_path / "b"
    multi30k.main(["--raw-dir", str(m30k_release), "--out", str(a)])
    multi30k.main(["--raw-dir", str(plain), "--out", str(b)])
    assert read_lines(a / "train.de") == read_lines(b / "train.de")
