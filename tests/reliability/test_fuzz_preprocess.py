"""Fuzz nmt-preprocess with generated malformed inputs: a clear error or a correct result.

Every case copies a small clean corpus, damages it in one seeded way (mismatched line counts,
invalid UTF-8, NUL bytes, binary junk, huge lines, empty files, odd line separators, wrong
languages, broken dictionaries or SentencePiece models, unusable destinations, bad options)
and runs ``nmt-preprocess``'s ``main`` in-process. The outcome must be either

* exit 0 and a data directory whose every split loads, source and target aligned, with every
  sentence of valid/test kept; or
* a non-zero exit with exactly one ``nmt-preprocess: error:`` line and no traceback,

within a time limit (no hang). A few cases run the real console script as a subprocess.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.corpus import write_pairs
from nmt_preln.cli import preprocess as cli

from nmt_preln.data.dataset import LanguagePairDataset

from .harness import CliResult, assert_clean_failure, run_cli, run_main

SPLITS = ("train", "valid", "test")
LANGS = ("de", "en")
BAD_UTF8 = [
    b"\xff",
    b"\xfe\xfe",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xe2\x82",
]
ODD_SEPARATORS = ["\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\t"]
ODD_TEXT = ["\ufeff", "\u200f", "e\u0301", "\U0001f600", "\u00a0", " \t ", "\\n", "<unk>", "</s>"]


@dataclass
class Case:
    """One fuzz input: ``damage(work_dir, rng)`` edits the copied corpus, returns extra flags."""

    name: str
    damage: Callable[[Path, random.Random], list[str]]
    segmentation: str = "none"


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def _write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def _pick_file(work: Path, rng: random.Random) -> Path:
    return work / f"{rng.choice(SPLITS)}.{rng.choice(LANGS)}"


def _insert_bytes(work: Path, rng: random.Random, junk: bytes) -> Path:
    path = _pick_file(work, rng)
    lines = _lines(path)
    i = rng.randrange(len(lines))
    cut = rng.randrange(len(lines[i]) + 1)
    lines[i] = lines[i][:cut] + junk + lines[i][cut:]
    _write_lines(path, lines)
    return path


def _invalid_utf8(work: Path, rng: random.Random) -> list[str]:
    _insert_bytes(work, rng, rng.choice(BAD_UTF8))
    return []


def _nul_bytes(work: Path, rng: random.Random) -> list[str]:
    _insert_bytes(work, rng, b"\x00" * rng.randint(1, 3))
    return []


def _mismatch(work: Path, rng: random.Random) -> list[str]:
    path = _pick_file(work, rng)
    lines = _lines(path)
    if rng.random() < 0.5:
        for _ in range(rng.randint(1, 3)):
            del lines[rng.randrange(len(lines))]
    else:
        lines += [b"extra line"] * rng.randint(1, 3)
    _write_lines(path, lines)
    return []


def _junk_file(work: Path, rng: random.Random) -> list[str]:
    _pick_file(work, rng).write_bytes(rng.randbytes(rng.choice([1, 17, 512, 4096])))
    return []


def _huge_line(work: Path, rng: random.Random) -> list[str]:
    split = rng.choice(SPLITS)
    words = rng.choice([50_000, 20_000]) if rng.random() < 0.5 else 1
    token = "x" * rng.choice([10, 100_000]) if words == 1 else "w3"
    for lang in LANGS:  # both sides, so the pair stays aligned
        path = work / f"{split}.{lang}"
        lines = _lines(path)
        lines[rng.randrange(len(lines))] = " ".join([token] * words).encode()
        _write_lines(path, lines)
    return []


def _empty(work: Path, rng: random.Random) -> list[str]:
    split, kind = rng.choice(SPLITS), rng.randrange(4)
    langs = LANGS if rng.random() < 0.5 else (rng.choice(LANGS),)
    for lang in langs:
        path = work / f"{split}.{lang}"
        n = len(_lines(path))
        content = [b"", b"\n" * n, b"   \n" * n, path.read_bytes().rstrip(b"\n")][kind]
        path.write_bytes(content)
    return []


def _odd_text(work: Path, rng: random.Random) -> list[str]:
    odd = rng.choice(ODD_SEPARATORS + ODD_TEXT).encode()
    for _ in range(rng.randint(1, 4)):
        _insert_bytes(work, rng, odd)
    if rng.random() < 0.3:  # Windows line endings everywhere
        for path in work.glob("*.*"):
            path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    return []


def _bad_dictionary(work: Path, rng: random.Random) -> list[str]:
    variants: list[bytes] = [
        b"",
        b"w1 5\nw1 3\n",
        b"w1\n",
        b"w1 five\n",
        b"w1 5 extra junk\n",
        rng.randbytes(300),
        b"w1 5\n\x00\n",
        b"#fairseq:overwrite\n",
        b"<s> 1 #fairseq:overwrite\n</s> 1 #fairseq:overwrite\n",
        b"w1 -3\n",
        b"\xff\xfe 1\n",
    ]
    content = rng.choice([*variants, None])
    path = work / "dict.txt"
    if content is not None:
        path.write_bytes(content)
    flag = rng.choice(["--srcdict", "--tgtdict"])
    return [flag, str(path if content is not None else work / "missing-dict.txt")]


def _bad_spm_model(work: Path, rng: random.Random) -> list[str]:
    path = work / "spm.model"
    content = rng.choice([b"", b"not a model\n", rng.randbytes(2048), None])
    if content is not None:
        path.write_bytes(content)
    return ["--spm-model", str(path if content is not None else work / "missing.model")]


def _wrong_language(work: Path, rng: random.Random) -> list[str]:
    choice = rng.randrange(4)
    if choice == 0:
        return ["--source-lang", "fr"]  # no train.fr
    if choice == 1:
        return ["--source-lang", "en", "--target-lang", "de"]  # reversed: fine
    if choice == 2:
        for split in SPLITS:
            (work / f"{split}.en").unlink()
        return []
    (work / "train.de").rename(work / "train.DE")
    return []


def _bad_destination(work: Path, rng: random.Random) -> list[str]:
    choice = rng.randrange(4)
    if choice == 0:
        (work / "out").write_text("a file\n")
        return ["--destdir", str(work / "out")]
    if choice == 1:
        (work / "blocker").write_text("a file\n")
        return ["--destdir", str(work / "blocker" / "out")]
    if choice == 2:
        (work / "out").mkdir()
        (work / "out" / "notes.txt").write_text("someone else's\n")
        (work / "out" / "manifest.json").write_text("{broken json")
        return ["--destdir", str(work / "out")]
    return ["--destdir", str(work / "train.de")]


def _bad_prefix(work: Path, rng: random.Random) -> list[str]:
    choice = rng.randrange(4)
    if choice == 0:
        (work / "dir.de").mkdir()
        (work / "dir.en").mkdir()
        return ["--validpref", str(work / "dir")]
    if choice == 1:
        return ["--validpref", f"{work}/valid,,{work}/test"]
    if choice == 2:
        return ["--testpref", f"{work}/valid,{work}/test"]  # two test sets: test, test1
    return ["--validpref", str(work / "train")]


def _bad_option(work: Path, rng: random.Random) -> list[str]:
    return rng.choice(
        [
            ["--workers", "-1"],
            ["--spm-vocab-size", "32"],
            ["--max-len", "abc"],
            ["--min-len", "5", "--max-len", "2"],
            ["--max-len-ratio", "-1"],
            ["--nwordssrc", "3"],
            ["--thresholdtgt", "1000"],
            ["--segmentation", "bpe"],
            ["--joined-dictionary", "--nwordstgt", "2"],
            ["--bogus-flag"],
        ]
    )


def _cases() -> list[Case]:
    kinds: list[tuple[str, Callable[[Path, random.Random], list[str]], int]] = [
        ("mismatched-lines", _mismatch, 12),
        ("invalid-utf8", _invalid_utf8, 14),
        ("nul-bytes", _nul_bytes, 8),
        ("binary-junk", _junk_file, 10),
        ("huge-line", _huge_line, 8),
        ("empty", _empty, 12),
        ("odd-text", _odd_text, 18),
        ("bad-dictionary", _bad_dictionary, 12),
        ("wrong-language", _wrong_language, 6),
        ("bad-destination", _bad_destination, 6),
        ("bad-prefix", _bad_prefix, 6),
        ("bad-option", _bad_option, 10),
    ]
    cases = [Case(f"{name}-{i}", damage) for name, damage, n in kinds for i in range(n)]
    cases += [Case(f"spm-bad-model-{i}", _bad_spm_model, "sentencepiece") for i in range(4)]
    for name, damage in (("odd-text", _odd_text), ("huge-line", _huge_line), ("empty", _empty)):
        cases += [Case(f"spm-{name}-{i}", damage, "sentencepiece") for i in range(3)]
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = tmp_path_factory.mktemp("clean")
    for split, n, seed in (("train", 40, 11), ("valid", 8, 12), ("test", 5, 13)):
        write_pairs(raw / split, n, seed=seed)
    return raw


def _argv(work: Path, case: Case, extra: list[str]) -> list[str]:
    argv = ["--source-lang", "de", "--target-lang", "en", "--trainpref", f"{work}/train"]
    argv += ["--validpref", f"{work}/valid", "--testpref", f"{work}/test"]
    argv += ["--destdir", f"{work}/bin", "--workers", "1", "--segmentation", case.segmentation]
    if case.segmentation == "sentencepiece":
        argv += ["--spm-vocab-size", "32"]
    return argv + extra  # argparse keeps the last of a repeated flag


def _last_value(argv: list[str], flag: str) -> str:
    return argv[max(i for i, a in enumerate(argv) if a == flag) + 1]


def _check_result(result: CliResult, argv: list[str]) -> None:
    """A successful run left a consistent data directory."""
    assert "Traceback" not in result.stderr
    dest = Path(_last_value(argv, "--destdir"))
    manifest = json.loads((dest / "manifest.json").read_text(encoding="utf-8"))
    src, tgt = manifest["source_lang"], manifest["target_lang"]
    for split, n in manifest["splits"].items():
        data = LanguagePairDataset(str(dest), split)
        assert len(data) == n and data.tgt is not None and len(data.tgt) == n
        assert all(data.src[i][-1] == data.src_dict.eos for i in range(n))
        if split != "train":  # valid/test keep every line
            prefix = _last_value(argv, "--validpref") if split == "valid" else None
            if prefix and "," not in prefix:
                lines = Path(f"{prefix}.{src}").read_bytes().count(b"\n")
                assert n == lines or n == lines + 1  # + 1: a last line without newline
    assert tgt


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fuzz_preprocess(case: Case, clean: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(clean, work)
    rng = random.Random(f"{case.name}")
    argv = _argv(work, case, case.damage(work, rng))
    result = run_main(cli.main, argv, timeout=60)
    if result.code == 0:
        _check_result(result, argv)
    else:
        assert_clean_failure(result, "nmt-preprocess")


def test_fuzz_case_count() -> None:
    assert len(CASES) >= 120


@pytest.mark.parametrize(
    "damage", [_mismatch, _junk_file, _empty], ids=["mismatch", "junk", "empty"]
)
def test_fuzz_as_a_real_process(
    damage: Callable[..., list[str]], clean: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    shutil.copytree(clean, work)
    argv = _argv(work, Case("real", damage), damage(work, random.Random(5)))
    result = run_cli([sys.executable, "-m", "nmt_preln.cli.preprocess", *argv], timeout=120)
    if result.code == 0:
        _check_result(result, argv)
    else:
        assert_clean_failure(result, "nmt-preprocess")
