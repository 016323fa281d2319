"""The dataset scripts on the real release files in ../shared/data (slow; skipped when absent)."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import pytest
from nmt_preln.data_prep import iwslt14, multi30k, wmt14
from prep_release import read_lines

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} not available"),
]


def _gunzip_lines(path: Path) -> list[str]:
    return gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()


def test_iwslt14_test_set_matches_the_published_raw_text(tmp_path: Path) -> None:
    raw = DATA / "iwslt14-de-en"
    # the folder has no training split: the default run says so, --splits test works
    assert iwslt14.main(["--raw-dir", str(raw), "--out", str(tmp_path)]) == 1
    assert iwslt14.main(["--raw-dir", str(raw), "--out", str(tmp_path), "--splits", "test"]) == 0
    for lang in ("de", "en"):
        ours = read_lines(tmp_path / f"test.{lang}")
        assert len(ours) == 6750
        assert ours == _gunzip_lines(raw / "raw" / f"test.{lang}.gz")


def test_multi30k(tmp_path: Path) -> None:
    assert multi30k.main(["--raw-dir", str(DATA / "multi30k-en-de"), "--out", str(tmp_path)]) == 0
    sizes = {
        split: len(read_lines(tmp_path / f"{split}.de")) for split in ("train", "valid", "test")
    }
    assert sizes == {"train": 28998, "valid": 1014, "test": 1000}  # the two "@@" lines dropped


def test_wmt14_newstest2013_via_valid_pref(tmp_path: Path) -> None:
    prefix = DATA / "wmt14-en-de" / "newstest2013.tok"
    args = ["--out", str(tmp_path), "--splits", "valid", "--valid-pref", str(prefix)]
    assert wmt14.main(args) == 0
    assert len(read_lines(tmp_path / "valid.en")) == len(read_lines(tmp_path / "valid.de")) == 3000


@pytest.mark.skipif(importlib.util.find_spec("sacremoses") is None, reason="needs sacremoses")
def test_iwslt14_fairseq_variant_matches_fairseq_tokenized_test_set(tmp_path: Path) -> None:
    raw = DATA / "iwslt14-de-en"
    args = ["--raw-dir", str(raw), "--out", str(tmp_path), "--splits", "test"]
    assert iwslt14.main([*args, "--variant", "fairseq"]) == 0
    for lang in ("de", "en"):
        ours = read_lines(tmp_path / f"test.{lang}")
        assert ours == _gunzip_lines(raw / "fairseq-prep" / "tok" / f"test.{lang}.gz")
