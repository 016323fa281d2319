"""Adopting a fairseq data-bin: what is checked, what the manifest says, what is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nmt_preln.data.dataset import LanguagePairDataset
from nmt_preln.errors import UserError
from nmt_preln.interop.config import FairseqDataImportConfig
from nmt_preln.interop.fairseq_data import adopt_fairseq_data, find_language_pair


def _adopt(data: Path, **langs: str) -> dict:
    return adopt_fairseq_data(FairseqDataImportConfig(data=str(data), **langs))


def test_the_adopted_directory_loads_like_nmt_preprocess_output(data_bin: Path) -> None:
    manifest = _adopt(data_bin)
    assert (manifest["source_lang"], manifest["target_lang"]) == ("de", "en")
    assert manifest["vocab_sizes"] == {"de": 1120, "en": 1120}
    test = LanguagePairDataset(str(data_bin), "test")
    assert len(test) == 20 and test.tgt is not None
    assert test.src_dict.string(test[0][0]).endswith(".")  # pieces, </s> stripped
    assert _adopt(data_bin) == manifest  # adopting again is harmless
    reverse = _adopt(data_bin, source_lang="en", target_lang="de")
    assert reverse["source_lang"] == "en" and reverse["splits"] == manifest["splits"]


def test_several_pairs_need_a_language(data_bin: Path) -> None:
    for path in data_bin.glob("test.de-en.*"):
        shutil.copy(path, data_bin / path.name.replace("de-en", "de-fr").replace(".en.", ".fr."))
    with pytest.raises(UserError, match=r"language pairs de-en, de-fr; choose with --source-lang"):
        _adopt(data_bin)
    assert find_language_pair(str(data_bin), target_lang="en") == ("de", "en")
    assert find_language_pair(str(data_bin), source_lang="fr") == ("fr", "de")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "dict.en.txt").unlink(), r"dict\.en\.txt: not found"),
        (
            lambda d: shutil.copy(d / "valid.de-en.en.idx", d / "test.de-en.en.idx"),
            r"test\.de-en\.en\.bin: \d+ bytes, but .*test\.de-en\.en\.idx describes",
        ),
        (
            lambda d: (d / "dict.en.txt").write_text("a 1\n", encoding="utf-8"),
            r"test\.de-en\.en\.bin: token index \d+ is outside dict\.en\.txt \(5 symbols\)",
        ),
        (lambda d: [p.unlink() for p in d.glob("*.bin")], r"\.bin: binarized data file not found"),
    ],
)
def test_damaged_data_bins_are_refused_in_one_line(data_bin: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    damage(data_bin)
    with pytest.raises(UserError, match=message) as info:
        _adopt(data_bin)
    assert "\n" not in str(info.value)
    assert not (data_bin / "manifest.json").exists()


def test_sides_of_different_lengths_are_refused(data_bin: Path) -> None:
    for ext in ("bin", "idx"):
        shutil.copy(data_bin / f"train.de-en.en.{ext}", data_bin / f"test.de-en.en.{ext}")
    with pytest.raises(
        UserError, match=r"split test has sides of different lengths \(de 20, en 300"
    ):
        _adopt(data_bin)


def test_not_a_data_bin_or_already_an_nmt_preln_directory(tmp_path: Path, data_bin: Path) -> None:
    with pytest.raises(
        UserError, match=r"no \{split\}\.\{src\}-\{tgt\}\.\{lang\}\.bin/\.idx files"
    ):
        _adopt(tmp_path)
    (data_bin / "manifest.json").write_text(json.dumps({"created_by": "nmt-preprocess"}))
    with pytest.raises(UserError, match=r"manifest\.json: exists \(created by nmt-preprocess\)"):
        _adopt(data_bin)
