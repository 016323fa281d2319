"""WMT14 preparation on fabricated release archives with the real member names."""

from __future__ import annotations

from pathlib import Path

import pytest
from nmt_preln.data_prep import wmt14
from prep_release import make_tgz, read_lines, write_text, xml_doc

CORPORA = {
    "training-parallel-europarl-v7.tgz": "training/europarl-v7.de-en",
    "training-parallel-commoncrawl.tgz": "commoncrawl.de-en",
    "training-parallel-nc-v12.tgz": "training/news-commentary-v12.de-en",
}


@pytest.fixture
def wmt_release(tmp_path: Path) -> Path:
    """Three training archives of 100 pairs each (one dirty pair per corpus), dev, test-full."""
    raw = tmp_path / "raw"
    for k, (archive, member) in enumerate(CORPORA.items()):
        en = [f"en {k} pair {i} a b" for i in range(100)]
        de = [f"de {k} pair {i} a b" for i in range(100)]
        de[7] = ""  # an empty side (Europarl has those): cleaned away
        en[8] = f"en {k} pair 8 a b\x07\u200b"  # non-printing characters become spaces
        make_tgz(raw / archive, {f"{member}.en": en, f"{member}.de": de})
    dev = {"dev/newstest2013.en": ["en dev 0 x", "en dev 1 x"]}
    make_tgz(raw / "dev.tgz", {**dev, "dev/newstest2013.de": ["de dev 0 x", "de dev 1 x"]})
    test_en = xml_doc(["en test 0 AT&amp;T", "en test  1 x", "en test 2 x"], sgm=True)
    test_de = xml_doc(["de test 0 AT&amp;T", "de test 1 x", "de test 2 x"], sgm=True)
    make_tgz(
        raw / "test-full.tgz",
        {
            "test-full/newstest2014-deen-src.en.sgm": test_en,
            "test-full/newstest2014-deen-ref.de.sgm": test_de,
        },
    )
    return raw


def test_train_valid_test(wmt_release: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert wmt14.main(["--raw-dir", str(wmt_release), "--out", str(out)]) == 0
    train_en, train_de = read_lines(out / "train.en"), read_lines(out / "train.de")
    assert len(train_en) == len(train_de) == 297  # 3 x 100, one empty side per corpus
    assert all(a.split()[1:] == b.split()[1:] for a, b in zip(train_en, train_de, strict=True))
    assert "en 0 pair 8 a b" in train_en  # control/format characters removed, spaces collapsed
    assert read_lines(out / "valid.de") == ["de dev 0 x", "de dev 1 x"]
    # SGM test: segments as sacreBLEU reads them, entities kept, whitespace collapsed
    assert read_lines(out / "test.en") == ["en test 0 AT&amp;T", "en test 1 x", "en test 2 x"]


def test_valid_from_train_like_fairseq(wmt_release: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--raw-dir", str(wmt_release), "--out", str(out), "--valid", "train"]
    assert wmt14.main(args) == 0
    train, valid = read_lines(out / "train.en"), read_lines(out / "valid.en")
    assert (len(train), len(valid)) == (295, 2)  # every 100th of the 297 cleaned pairs
    assert not set(train) & set(valid)
    only_valid = tmp_path / "only_valid"
    args = ["--raw-dir", str(wmt_release), "--out", str(only_valid), "--valid", "train"]
    assert wmt14.main([*args, "--splits", "valid"]) == 0
    assert read_lines(only_valid / "valid.en") == valid


def test_newstest2013_from_sgm(wmt_release: Path, tmp_path: Path) -> None:
    make_tgz(
        wmt_release / "dev.tgz",
        {
            "dev/newstest2013-src.en.sgm": xml_doc(["en a"], sgm=True),
            "dev/newstest2013-ref.de.sgm": xml_doc(["de a"], sgm=True),
        },
    )
    out = tmp_path / "out"
    assert wmt14.main(["--raw-dir", str(wmt_release), "--out", str(out), "--splits", "valid"]) == 0
    assert read_lines(out / "valid.de") == ["de a"]


def test_valid_pref_warns_about_tokenized_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_text(tmp_path / "nt.en.gz", ["re ##AT##-##AT## election &quot;"])
    write_text(tmp_path / "nt.de.gz", ["Wiederwahl"])
    args = ["--out", str(tmp_path / "o"), "--splits", "valid", "--valid-pref", str(tmp_path / "nt")]
    assert wmt14.main(args) == 0  # no --raw-dir needed, nothing downloaded
    assert "looks tokenized" in caplog.text
    assert read_lines(tmp_path / "o" / "valid.de") == ["Wiederwahl"]


def test_missing_corpus_is_one_clear_line(
    wmt_release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (wmt_release / "training-parallel-commoncrawl.tgz").unlink()
    assert wmt14.main(["--raw-dir", str(wmt_release), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "commoncrawl.de-en.en not found" in err[0]
    assert not (tmp_path / "o" / "train.en").exists()


def test_misaligned_corpus_is_an_error(wmt_release: Path, tmp_path: Path) -> None:
    make_tgz(
        wmt_release / "training-parallel-nc-v12.tgz",
        {
            "training/news-commentary-v12.de-en.en": ["a", "b"],
            "training/news-commentary-v12.de-en.de": ["a"],
        },
    )
    out = tmp_path / "o"
    assert wmt14.main(["--raw-dir", str(wmt_release), "--out", str(out), "--splits", "train"]) == 1
    assert not list(out.glob("train.*"))  # no half-written split left behind


def test_download_failure_names_the_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = (tmp_path / "missing" / "test-full.tgz").as_uri()
    monkeypatch.setitem(wmt14.URLS, "test", (missing,))
    assert wmt14.main(["--out", str(tmp_path / "o"), "--splits", "test"]) == 1
    err = capsys.readouterr().err
    assert f"could not download {missing}" in err and "--raw-dir" in err
