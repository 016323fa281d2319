"""nmt-preprocess as users run it: the console script, its report, and every bad input."""

from __future__ import annotations

import gzip
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from nmt_preln.cli.preprocess import main

SCRIPT = Path(sys.executable).with_name("nmt-preprocess")
LEXICON = (  # (de, en) word pairs; the sentences are word-by-word translations
    "haus:house katze:cat hund:dog baum:tree straße:street grün:green blau:blue schön:nice "
    "über:over fährt:drives läuft:runs der:the die:the ein:a"
)
PAIRS = [pair.split(":") for pair in LEXICON.split()]
WORDS = {"de": [de for de, _ in PAIRS], "en": [en for _, en in PAIRS]}


def _write(prefix: Path, lines: dict[str, list[str]]) -> str:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for lang, text in lines.items():
        Path(f"{prefix}.{lang}").write_text("".join(t + "\n" for t in text), encoding="utf-8")
    return str(prefix)


def _corpus(prefix: Path, n: int, *, seed: int = 0) -> str:
    rng = random.Random(seed)
    ids = [[rng.randrange(14) for _ in range(rng.randint(1, 8))] for _ in range(n)]
    lines = {lang: [" ".join(w[i] for i in s) for s in ids] for lang, w in WORDS.items()}
    return _write(prefix, lines)


def _args(dest: Path, *extra: str) -> list[str]:
    return [
        "--source-lang",
        "de",
        "--target-lang",
        "en",
        "--destdir",
        str(dest),
        "--workers",
        "1",
        "--spm-vocab-size",
        "60",
        *extra,
    ]


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str], pattern: str) -> str:
    """Run main(argv); it must exit 1 with exactly one ``nmt-preprocess: error:`` line."""
    assert main(argv) == 1
    log_line = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ \| ")  # progress lines of logging
    err_lines = [line for line in capsys.readouterr().err.splitlines() if not log_line.match(line)]
    assert len(err_lines) == 1, err_lines
    assert err_lines[0].startswith("nmt-preprocess: error: ")
    assert re.search(pattern, err_lines[0]), err_lines[0]
    return err_lines[0]


@pytest.fixture
def train(tmp_path: Path) -> str:
    return _corpus(tmp_path / "raw" / "train", 200)


def test_console_script_end_to_end(tmp_path: Path, train: str) -> None:
    valid = _corpus(tmp_path / "raw" / "valid", 10, seed=3)
    dest = tmp_path / "bin"
    run = subprocess.run(
        [str(SCRIPT), *_args(dest, "--trainpref", train, "--validpref", valid)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "[train] 200 pairs: 200 kept" in run.stdout
    assert "[valid] 10 pairs kept" in run.stdout
    assert run.stdout.strip() == (dest / "preprocess.log").read_text(encoding="utf-8").strip()
    for name in ("manifest.json", "dict.de.txt", "dict.en.txt", "spm.model"):
        assert (dest / name).is_file()
    for split in ("train", "valid"):
        for lang in ("de", "en"):
            for ext in ("bin", "idx"):
                assert (dest / f"{split}.de-en.{lang}.{ext}").is_file()


def test_console_script_error_exit_status(tmp_path: Path) -> None:
    run = subprocess.run(
        [str(SCRIPT), *_args(tmp_path / "bin", "--trainpref", str(tmp_path / "missing"))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"nmt-preprocess: error: {tmp_path}/missing.de: file not found"
    ]
    assert not (tmp_path / "bin").exists()


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--target-lang", "en"])
    assert info.value.code == 2
    assert "--source-lang" in capsys.readouterr().err


def test_line_count_mismatch_names_both_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = _write(tmp_path / "t", {"de": ["a", "b", "c"], "en": ["a", "b"]})
    _fails(
        capsys, _args(tmp_path / "bin", "--trainpref", prefix), r"t\.de has 3 lines, .*t\.en has 2"
    )
    assert not (tmp_path / "bin").exists()


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"gut\nschlecht \xe4 hier\n", r"t\.de: line 2: invalid UTF-8"),
        (b"gut\n\x7fELF\x00\x00\n", r"t\.de: line 2: NUL byte"),
    ],
)
def test_bad_bytes_name_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, pattern: str
) -> None:
    prefix = _write(tmp_path / "t", {"en": ["good", "bad"]})
    Path(f"{prefix}.de").write_bytes(content)
    _fails(capsys, _args(tmp_path / "bin", "--trainpref", prefix), pattern)
    assert not (tmp_path / "bin").exists()


def test_empty_training_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = _write(tmp_path / "e", {"de": [], "en": []})
    _fails(capsys, _args(tmp_path / "bin", "--trainpref", empty), r"e\.de: empty file")
    blank = _write(tmp_path / "b", {"de": ["", " "], "en": ["x", ""]})
    _fails(
        capsys,
        _args(tmp_path / "bin", "--trainpref", blank, "--segmentation", "none"),
        r"empty training set: all 2 pairs .*empty 2",
    )
    assert not (tmp_path / "bin").exists()


def test_destination_with_another_dataset(
    tmp_path: Path, train: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "bin"
    assert main(_args(dest, "--trainpref", train)) == 0
    assert main(_args(dest, "--trainpref", train)) == 0  # the same command again: replaced
    _fails(
        capsys,
        _args(dest, "--trainpref", train, "--spm-model-type", "unigram"),
        "already holds a different dataset",
    )
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    _fails(capsys, _args(other, "--trainpref", train), "is not empty .*--overwrite")
    assert main(_args(other, "--trainpref", train, "--overwrite")) == 0
    assert (other / "notes.txt").read_text(encoding="utf-8") == "mine"  # unrelated files stay


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (None, r"--srcdict .*dict\.de\.txt: dictionary file not found"),
        ("a 5\nb five\n", r"--srcdict .*dict\.de\.txt: line 2: malformed"),
    ],
)
def test_bad_srcdict(
    tmp_path: Path,
    train: str,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    pattern: str,
) -> None:
    path = tmp_path / "dict.de.txt"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    _fails(capsys, _args(tmp_path / "bin", "--trainpref", train, "--srcdict", str(path)), pattern)
    assert not (tmp_path / "bin").exists()


def test_bad_spm_model(tmp_path: Path, train: str, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "spm.model"
    _fails(
        capsys,
        _args(tmp_path / "bin", "--trainpref", train, "--spm-model", str(model)),
        r"spm\.model: SentencePiece model not found",
    )
    model.write_bytes(os.urandom(64))
    _fails(
        capsys,
        _args(tmp_path / "bin", "--trainpref", train, "--spm-model", str(model)),
        r"spm\.model: not a valid SentencePiece model",
    )
    assert not (tmp_path / "bin").exists()


def test_vocab_too_large_for_corpus(
    tmp_path: Path, train: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*_args(tmp_path / "bin", "--trainpref", train), "--spm-vocab-size", "8000"]
    _fails(capsys, argv, r"--spm-vocab-size 8000 is too large .*smaller --spm-vocab-size")
    assert not (tmp_path / "bin").exists()


def test_contradictory_options(
    tmp_path: Path, train: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "bin"
    _fails(capsys, _args(dest, "--validpref", train), r"without --trainpref, give the dict")
    _fails(
        capsys,
        _args(dest, "--trainpref", train, "--segmentation", "none", "--spm-separate"),
        "need --segmentation sentencepiece",
    )
    _fails(capsys, _args(dest, "--trainpref", train, "--validpref", f"{train},"), "empty prefix")


SHARED = Path("/work/shared/data")


def _gunzip(src: Path, dest: Path) -> None:
    with gzip.open(src, "rb") as f:
        dest.write_bytes(f.read())


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "multi30k-en-de").is_dir(), reason="no shared Multi30k")
def test_multi30k_joint_sentencepiece(tmp_path: Path) -> None:
    from nmt_preln.data.dataset import LanguagePairDataset
    from nmt_preln.data.tokenizer import SentencePieceTokenizer

    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("train", "val", "test_2016_flickr"):
        for lang in ("en", "de"):
            _gunzip(SHARED / "multi30k-en-de" / f"{name}.{lang}.gz", raw / f"{name}.{lang}")
    dest = tmp_path / "bin"
    argv = ["--source-lang", "en", "--target-lang", "de", "--trainpref", str(raw / "train"),
            "--validpref", str(raw / "val"), "--testpref", str(raw / "test_2016_flickr"),
            "--destdir", str(dest), "--joined-dictionary", "--spm-vocab-size", "8000"]  # fmt: skip
    assert main(argv) == 0
    data = LanguagePairDataset(str(dest), "test")
    assert len(data) == 1000 and data.tgt is not None
    tok = SentencePieceTokenizer(str(dest / "spm.model"))
    raw_de = (raw / "test_2016_flickr.de").read_text(encoding="utf-8").splitlines()
    decoded = [tok.decode(data.tgt_dict.string(data.tgt[i]).split()) for i in range(len(data))]
    assert sum(d == r for d, r in zip(decoded, raw_de, strict=True)) >= 990  # rare chars -> <unk>


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "iwslt14-de-en").is_dir(), reason="no shared IWSLT14")
def test_iwslt14_presegmented_bpe(tmp_path: Path) -> None:
    from nmt_preln.data.dataset import LanguagePairDataset

    bpe = SHARED / "iwslt14-de-en" / "fairseq-prep" / "bpe"
    for name in ("valid", "test"):
        for lang in ("de", "en"):
            _gunzip(bpe / f"{name}.{lang}.gz", tmp_path / f"{name}.{lang}")
    dest = tmp_path / "bin"
    argv = ["--source-lang", "de", "--target-lang", "en", "--trainpref", str(tmp_path / "valid"),
            "--validpref", str(tmp_path / "valid"), "--destdir", str(dest),
            "--segmentation", "none", "--max-len", "1000"]  # fmt: skip
    assert main(argv) == 0
    data = LanguagePairDataset(str(dest), "valid")
    raw = (tmp_path / "valid.de").read_text(encoding="utf-8").splitlines()
    assert len(data) == len(raw) == 7283
    assert all(data.src_dict.string(data.src[i]) == " ".join(raw[i].split()) for i in range(500))
