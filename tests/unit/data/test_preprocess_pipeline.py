"""preprocess(cfg) end to end on generated text: the data directory contract of INTERNALS.md."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.corpus import write_parallel

from nmt_preln.config import PreprocessConfig, Segmentation, SpmModelType
from nmt_preln.data.dataset import LanguagePairDataset, load_dictionaries, load_manifest
from nmt_preln.data.preprocess import preprocess
from nmt_preln.data.tokenizer import SentencePieceTokenizer
from nmt_preln.errors import UserError


def _cfg(tmp_path: Path, **overrides: Any) -> PreprocessConfig:
    values: dict[str, Any] = {
        "source_lang": "de",
        "target_lang": "en",
        "destdir": str(tmp_path / "bin"),
        "spm_vocab_size": 60,
        "workers": 1,
    }
    values.update(overrides)
    return PreprocessConfig(**values)


def _read(prefix: str, lang: str) -> list[str]:
    return Path(f"{prefix}.{lang}").read_text(encoding="utf-8").splitlines()


def test_joint_sentencepiece_directory(corpus: Callable[..., str], tmp_path: Path) -> None:
    train, valid = corpus("train", 300, seed=1), corpus("valid", 20, seed=2)
    cfg = _cfg(tmp_path, trainpref=train, validpref=valid, joined_dictionary=True)
    report = preprocess(cfg)
    dest = cfg.destdir
    manifest = load_manifest(dest)
    assert manifest["splits"] == {"train": 300, "valid": 20}
    assert manifest["spm_models"] == {"de": "spm.model", "en": "spm.model"}
    assert manifest["segmentation"] == "sentencepiece" and manifest["joined_dictionary"]
    assert not any(name.startswith(".") for name in os.listdir(dest))  # staging is gone
    src_dict, tgt_dict = load_dictionaries(dest, "de", "en")
    assert src_dict == tgt_dict and len(src_dict) % 8 == 0
    assert Path(dest, "preprocess.log").read_text(encoding="utf-8").strip() == report.format()
    # The binarized valid set decodes back to the raw text, sentence by sentence.
    data = LanguagePairDataset(dest, "valid", source_lang="de", target_lang="en")
    tok = SentencePieceTokenizer(os.path.join(dest, "spm.model"))
    for lang, side, d in (("de", data.src, src_dict), ("en", data.tgt, tgt_dict)):
        assert side is not None
        decoded = [tok.decode(d.string(side[i]).split()) for i in range(len(side))]
        assert decoded == _read(valid, lang)
        assert all(side[i][-1] == d.eos for i in range(len(side)))


def test_separate_unigram_models(corpus: Callable[..., str], tmp_path: Path) -> None:
    cfg = _cfg(
        tmp_path,
        trainpref=corpus("train", 300),
        spm_separate=True,
        spm_model_type=SpmModelType.unigram,
        spm_vocab_size=30,
    )
    preprocess(cfg)
    manifest = load_manifest(cfg.destdir)
    assert manifest["spm_models"] == {"de": "spm.de.model", "en": "spm.en.model"}
    src_dict, tgt_dict = load_dictionaries(cfg.destdir, "de", "en")
    assert "▁straße" in src_dict and "▁straße" not in tgt_dict
    assert "▁street" in tgt_dict and "▁street" not in src_dict


def test_presegmented_bpe_text(tmp_path: Path) -> None:
    de = ["der hu@@ nd läuft", "die kat@@ ze", "der baum"] * 5
    en = ["the do@@ g runs", "the c@@ at", "the tree"] * 5
    prefix = str(write_parallel(tmp_path / "raw" / "train", de, en))
    cfg = _cfg(tmp_path, trainpref=prefix, validpref=prefix, segmentation=Segmentation.none)
    preprocess(cfg)
    manifest = load_manifest(cfg.destdir)
    assert manifest["segmentation"] == "none" and manifest["spm_models"] == {}
    assert not list(Path(cfg.destdir).glob("spm*"))
    data = LanguagePairDataset(cfg.destdir, "valid")
    assert data.src_dict.string(data.src[0]) == "der hu@@ nd läuft"
    assert data.tgt is not None and data.tgt_dict.string(data.tgt[1]) == "the c@@ at"
    assert data.src_dict.count[data.src_dict.index("der")] == 10


def test_reuse_model_and_dictionaries_gives_identical_data(
    corpus: Callable[..., str], tmp_path: Path
) -> None:
    train, test = corpus("train", 300, seed=1), corpus("test", 30, seed=5)
    first = _cfg(tmp_path, trainpref=train, testpref=test, destdir=str(tmp_path / "a"))
    preprocess(first)
    a = Path(first.destdir)
    second = _cfg(
        tmp_path,
        testpref=test,
        destdir=str(tmp_path / "b"),
        spm_model=str(a / "spm.model"),
        srcdict=str(a / "dict.de.txt"),
        tgtdict=str(a / "dict.en.txt"),
    )
    preprocess(second)
    b = Path(second.destdir)
    for name in ("test.de-en.de.bin", "test.de-en.en.idx", "dict.de.txt", "spm.model"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert load_manifest(str(b))["splits"] == {"test": 30}


def test_cleaning_applies_to_train_only(tmp_path: Path) -> None:
    de = ["ein hund", "", "haus " * 30, "der baum", "ein hund läuft über die straße schön"]
    en = ["a dog", "x", "house " * 30, "the", "a dog runs over the street nicely"]
    prefix = str(write_parallel(tmp_path / "raw" / "train", de * 10, en * 10))
    cfg = _cfg(
        tmp_path,
        trainpref=prefix,
        validpref=prefix,
        segmentation=Segmentation.none,
        max_len=20,
        max_len_ratio=1.5,
    )
    report = preprocess(cfg)
    train, valid = report.splits
    assert train.dropped == {"empty": 10, "too_short": 0, "too_long": 10, "ratio": 10}
    assert train.kept == 20 and valid.kept == 50 and valid.empty_kept == 10
    assert load_manifest(cfg.destdir)["splits"] == {"train": 20, "valid": 50}
    assert LanguagePairDataset(cfg.destdir, "valid").src_sizes[1] == 1  # just </s>


def test_dictionary_thresholds_and_limits(tmp_path: Path) -> None:
    de = ["a a a a b b b c c d"] * 2
    en = ["x y"] * 2
    prefix = str(write_parallel(tmp_path / "raw" / "train", de, en))
    cfg = _cfg(
        tmp_path, trainpref=prefix, segmentation=Segmentation.none, thresholdsrc=5, nwordstgt=5
    )
    preprocess(cfg)
    src_dict, tgt_dict = load_dictionaries(cfg.destdir, "de", "en")
    assert src_dict.symbols[4:6] == ["a", "b"] and "c" not in src_dict  # c: 4 < 5
    assert tgt_dict.symbols[4:] == ["x", "madeupword0000", "madeupword0001", "madeupword0002"]
    data = LanguagePairDataset(cfg.destdir, "train")
    assert data.src[0].tolist()[-2:] == [src_dict.unk, src_dict.eos]


def test_several_valid_and_test_prefixes(corpus: Callable[..., str], tmp_path: Path) -> None:
    prefixes = [corpus(name, 5, seed=i) for i, name in enumerate(["v0", "v1", "v2", "t0"])]
    cfg = _cfg(
        tmp_path,
        trainpref=corpus("train", 200),
        validpref=",".join(prefixes[:3]),
        testpref=prefixes[3],
    )
    preprocess(cfg)
    assert set(load_manifest(cfg.destdir)["splits"]) == {
        "train",
        "valid",
        "valid1",
        "valid2",
        "test",
    }
    assert LanguagePairDataset(cfg.destdir, "valid2").src.prefix.endswith("valid2.de-en.de")


def test_rerun_same_command_but_refuse_a_different_dataset(
    corpus: Callable[..., str], tmp_path: Path
) -> None:
    cfg = _cfg(tmp_path, trainpref=corpus("train", 200), validpref=corpus("valid", 5))
    preprocess(cfg)
    preprocess(_cfg(tmp_path, trainpref=cfg.trainpref, validpref=cfg.validpref, workers=2))
    other = _cfg(tmp_path, trainpref=cfg.trainpref, spm_vocab_size=50)
    with pytest.raises(UserError, match=r"already holds a different dataset.*--overwrite"):
        preprocess(other)
    other.overwrite = True
    preprocess(other)
    assert load_manifest(cfg.destdir)["splits"] == {"train": 200}
    assert not Path(cfg.destdir, "valid.de-en.de.bin").exists()  # stale split removed


def test_failure_after_start_leaves_old_dataset_untouched(
    corpus: Callable[..., str], tmp_path: Path
) -> None:
    cfg = _cfg(tmp_path, trainpref=corpus("train", 200))
    preprocess(cfg)
    before = {p.name: p.read_bytes() for p in Path(cfg.destdir).iterdir()}
    bad = _cfg(tmp_path, trainpref=cfg.trainpref, max_len=0, min_len=0, overwrite=True)
    with pytest.raises(UserError, match=r"empty training set: all 200 pairs .* too_long 200"):
        preprocess(bad)
    assert {p.name: p.read_bytes() for p in Path(cfg.destdir).iterdir()} == before
    fresh = _cfg(
        tmp_path, trainpref=cfg.trainpref, max_len=0, min_len=0, destdir=str(tmp_path / "new")
    )
    with pytest.raises(UserError, match="empty training set"):
        preprocess(fresh)
    assert not Path(fresh.destdir).exists()


def test_dataset_reader_errors(corpus: Callable[..., str], tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, trainpref=corpus("train", 100), spm_vocab_size=40)
    preprocess(cfg)
    dest = cfg.destdir
    with pytest.raises(UserError, match=r"no split 'valid' \(it has: train\)"):
        LanguagePairDataset(dest, "valid")
    with pytest.raises(UserError, match="holds de-en data, not de-fr"):
        LanguagePairDataset(dest, "train", target_lang="fr")
    reverse = LanguagePairDataset(dest, "train", source_lang="en", target_lang="de")
    assert reverse.src.prefix.endswith("train.de-en.en")
    bin_path = Path(dest, "train.de-en.en.bin")
    bin_path.write_bytes(bin_path.read_bytes()[:-3])
    with pytest.raises(UserError, match=r"train\.de-en\.en\.bin: .* \(truncated or corrupt\)"):
        LanguagePairDataset(dest, "train")
    manifest = Path(dest, "manifest.json")
    manifest.write_text('{"format_version": 1,\n "splits": {', encoding="utf-8")
    with pytest.raises(UserError, match=r"manifest\.json: line 2: corrupt manifest"):
        load_manifest(dest)
    manifest.write_text(json.dumps({"format_version": 7}), encoding="utf-8")
    with pytest.raises(UserError, match="format_version 7"):
        load_manifest(dest)
    manifest.unlink()
    with pytest.raises(UserError, match=r"no manifest\.json: not a finished"):
        LanguagePairDataset(dest, "train")
    with pytest.raises(UserError, match="data directory not found"):
        load_manifest(str(tmp_path / "nowhere"))
    assert np.all(reverse.src_sizes >= 1)
