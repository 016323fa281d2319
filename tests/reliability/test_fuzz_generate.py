"""Fuzz nmt-generate: damaged input text, data directories, checkpoints and options.

Each seeded case starts from a tiny trained checkpoint and its data directory, damages one
thing (raw input with invalid UTF-8, NUL bytes, junk, huge or empty lines, odd separators;
truncated or corrupt .bin/.idx and manifest files; another dictionary; the wrong language
direction; truncated, junk or mismatched checkpoints; out-of-range options) and runs
``nmt-generate``'s ``main`` in-process. The outcome must be a non-zero exit with exactly one
``nmt-generate: error:`` line and no traceback, or exit 0 with one hypothesis per input
sentence; never a hang.
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
import torch
from nmt_preln.cli import generate as cli

from nmt_preln.data.dataset import LanguagePairDataset

from .harness import CliResult, assert_clean_failure, run_cli, run_main

TEXT = ["w1 w2 w3", "w4 w5", "w7 w7 w7 w7", "w10 w11 w12 w13 w14", "w0"]
BAD_BYTES = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00", b"\x00\x00\xff", b"\xe2\x82"]
ODD = ["\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\ufeff", "<s>", "</s>", "<pad>", "\t"]


@dataclass
class Env:
    """Where a case works: its own copies of the data directory and the checkpoint."""

    work: Path
    data: Path
    ckpt: Path
    rng: random.Random


@dataclass
class Case:
    """``make(env)`` damages ``env`` and returns (argv after DATA, stdin bytes or None)."""

    name: str
    make: Callable[[Env], tuple[list[str], bytes | None]]


def _raw_lines(env: Env) -> list[bytes]:
    return [env.rng.choice(TEXT).encode() for _ in range(env.rng.randint(1, 6))]


def _join(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def _damaged_text(env: Env) -> bytes:
    lines = _raw_lines(env)
    kind = env.rng.randrange(7)
    i = env.rng.randrange(len(lines))
    if kind == 0:
        lines[i] += env.rng.choice(BAD_BYTES)
    elif kind == 1:
        lines[i] = env.rng.randbytes(env.rng.randint(1, 300)).replace(b"\n", b"")
    elif kind == 2:
        lines[i] = b" ".join([b"w3"] * env.rng.choice([2000, 50_000]))  # past max_positions
    elif kind == 3:
        lines[i] = b"x" * 100_000
    elif kind == 4:
        lines[i] = env.rng.choice([b"", b"   ", b"\t"])
    elif kind == 5:
        lines[i] += env.rng.choice(ODD).encode()
    else:
        return env.rng.choice([b"", b"\n", b"\n\n\n", _join(lines).rstrip(b"\n"), b"\r\n"])
    return _join(lines)


def _raw_file(env: Env) -> tuple[list[str], bytes | None]:
    path = env.work / "input.txt"
    path.write_bytes(_damaged_text(env))
    return ["--input", str(path)], None


def _stdin(env: Env) -> tuple[list[str], bytes | None]:
    return ["--input", "-", "--buffer-size", str(env.rng.choice([1, 2, 100]))], _damaged_text(env)


def _split_files(env: Env) -> list[Path]:
    return sorted(env.data.glob("test.de-en.*.bin")) + sorted(env.data.glob("test.de-en.*.idx"))


def _binary_data(env: Env) -> tuple[list[str], bytes | None]:
    path = env.rng.choice(_split_files(env))
    data = path.read_bytes()
    kind = env.rng.randrange(5)
    if kind == 0:
        path.write_bytes(data[: env.rng.randrange(len(data))])  # truncated
    elif kind == 1:
        path.write_bytes(data + env.rng.randbytes(env.rng.randint(1, 64)))  # trailing junk
    elif kind == 2:
        at = env.rng.randrange(len(data))
        path.write_bytes(data[:at] + env.rng.randbytes(8) + data[at + 8 :])  # overwritten
    elif kind == 3:
        path.unlink()
    else:
        other = env.rng.choice([p for p in _split_files(env) if p.suffix == path.suffix])
        shutil.copyfile(env.data / "valid.de-en.de.idx", other)  # another split's index
    return [], None


def _manifest(env: Env) -> tuple[list[str], bytes | None]:
    path = env.data / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    kind = env.rng.randrange(9)
    content: object
    if kind == 0:
        content = None
        path.write_bytes(env.rng.choice([b"", b"{", b"[]", env.rng.randbytes(40)]))
    elif kind == 1:
        content = {**manifest, "splits": 5}
    elif kind == 2:
        content = {**manifest, "source_lang": 3}
    elif kind == 3:
        content = {**manifest, "format_version": 99}
    elif kind == 4:
        content = {k: v for k, v in manifest.items() if k != env.rng.choice(list(manifest))}
    elif kind == 5:
        content = {**manifest, "source_lang": "en", "target_lang": "de"}
    elif kind == 6:
        content = {**manifest, "segmentation": "sentencepiece", "spm_models": {}}
    elif kind == 7:
        content = {**manifest, "splits": {"test": 10_000}}
    else:
        path.unlink()
        content = None
    if content is not None:
        path.write_text(json.dumps(content), encoding="utf-8")
    return [], None


def _dictionary(env: Env) -> tuple[list[str], bytes | None]:
    path = env.data / f"dict.{env.rng.choice(['de', 'en'])}.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    kind = env.rng.randrange(6)
    if kind == 0:
        lines.append("extra 1")
    elif kind == 1:
        lines[0], lines[1] = lines[1], lines[0]
    elif kind == 2:
        lines = lines[: len(lines) // 2]
    elif kind == 3:
        lines = ["junk"]
    elif kind == 4:
        lines = []
    else:
        path.unlink()
        return [], None
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return [], None


def _direction(env: Env) -> tuple[list[str], bytes | None]:
    return env.rng.choice(
        [
            ["--source-lang", "en", "--target-lang", "de"],
            ["--source-lang", "en"],
            ["--target-lang", "de"],
            ["--source-lang", "fr"],
            ["--source-lang", "en", "--target-lang", "de", "--input", "-"],
        ]
    ), b"v1 v2\n"


def _checkpoint(env: Env) -> tuple[list[str], bytes | None]:
    data = env.ckpt.read_bytes()
    kind = env.rng.randrange(9)
    if kind == 0:
        env.ckpt.write_bytes(data[: env.rng.randrange(len(data))])
    elif kind == 1:
        env.ckpt.write_bytes(env.rng.randbytes(env.rng.choice([0, 10, 5000])))
    elif kind == 2:
        return ["--path", str(env.work)], None  # a directory
    elif kind == 3:
        return ["--path", f"{env.ckpt}::{env.work / 'missing.pt'}"], None
    elif kind == 4:
        torch.save({"format_version": 1}, env.ckpt)
    elif kind == 5:
        state = torch.load(env.ckpt, weights_only=True)
        state["config"]["arch"]["d_model"] = 32  # weights of a 16-dim model
        torch.save(state, env.ckpt)
    elif kind == 6:
        state = torch.load(env.ckpt, weights_only=True)
        state["src_dict"] = state["src_dict"][:-1]
        torch.save(state, env.ckpt)
    elif kind == 7:
        state = torch.load(env.ckpt, weights_only=True)
        state["config"]["arch"]["norm_position"] = "sideways"
        torch.save(state, env.ckpt)
    else:
        state = torch.load(env.ckpt, weights_only=True)
        state["src_dict"] = [*state["src_dict"][:4], *reversed(state["src_dict"][4:])]
        other = env.work / "other.pt"
        torch.save(state, other)
        return ["--path", f"{env.ckpt}:{other}"], None  # an ensemble that disagrees
    return [], None


# Every option case once; {work} and {ckpt} are the case's own paths.
OPTIONS = [
    "--beam 0",
    "--nbest 3",
    "--batch-size 0",
    "--buffer-size 0 --input -",
    "--max-tokens 1",
    "--max-tokens -5",
    "--max-len-b 0",
    "--max-len-a 1e9",
    "--min-len 1000",
    "--temperature 0",
    "--temperature inf",
    "--lenpen nan",
    "--sampling-topp 2",
    "--sampling-topk 3",
    "--sampling --sampling-topk 0",
    "--sampling --sampling-topp 1e-9",
    "--sampling --beam 3 --nbest 3",
    "--gen-subset nonexistent",
    "--gen-subset train",
    "--results-path {ckpt}/sub",
    "--remove-bpe=",
    "--lenpen -5",
    "--no-repeat-ngram-size 1",
    "--unkpen 1e30",
    "--unkpen nan",
    "--device cuda",
    "--precision fp16",
    "--beam abc",
    "--input {work}/missing.txt",
    "--input {work}",
    "--quiet",
    "--output-format plain --input -",
]


def _option_case(index: int) -> Callable[[Env], tuple[list[str], bytes | None]]:
    def make(env: Env) -> tuple[list[str], bytes | None]:
        flags = OPTIONS[index].format(work=env.work, ckpt=env.ckpt).split()
        return flags, b"w1 w2\nw3\n"

    return make


def _cases() -> list[Case]:
    kinds = [
        ("raw-file", _raw_file, 30),
        ("stdin", _stdin, 16),
        ("binary-data", _binary_data, 14),
        ("manifest", _manifest, 10),
        ("dictionary", _dictionary, 8),
        ("direction", _direction, 6),
        ("checkpoint", _checkpoint, 12),
    ]
    cases = [Case(f"{name}-{i}", make) for name, make, n in kinds for i in range(n)]
    return cases + [Case(f"option-{i}", _option_case(i)) for i in range(len(OPTIONS))]


CASES = _cases()


def _expected_sentences(argv: list[str], stdin: bytes | None, data: Path) -> int | None:
    """How many hypotheses a successful run must print (None: not checkable)."""
    if "--quiet" in argv:
        return 0
    if "--input" in argv:
        value = argv[max(i for i, a in enumerate(argv) if a == "--input") + 1]
        raw = stdin or b"" if value == "-" else Path(value).read_bytes()
        return raw.count(b"\n") + (1 if raw and not raw.endswith(b"\n") else 0)
    subset = argv[argv.index("--gen-subset") + 1] if "--gen-subset" in argv else "test"
    return len(LanguagePairDataset(str(data), subset))


def _check_result(result: CliResult, argv: list[str], stdin: bytes | None, data: Path) -> None:
    assert "Traceback" not in result.stderr
    others = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not line.startswith(("nmt-generate: warning:", "Translated "))
    ]
    assert others == [], result.stderr
    expected = _expected_sentences(argv, stdin, data)
    if "plain" in argv:  # one translation line per input line
        assert len(result.stdout.splitlines()) == expected, result.stdout[:2000]
        return
    hyp_ids = {line.split("\t")[0] for line in result.stdout.splitlines() if line.startswith("H-")}
    assert hyp_ids == {f"H-{i}" for i in range(expected or 0)}, result.stdout[:2000]


def _env(tmp_path: Path, data_dir: Path, trained: Path, name: str) -> Env:
    work = tmp_path / "work"
    shutil.copytree(data_dir, work / "data")
    shutil.copyfile(trained, work / "model.pt")
    return Env(work=work, data=work / "data", ckpt=work / "model.pt", rng=random.Random(name))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fuzz_generate(case: Case, tmp_path: Path, data_dir: Path, trained: Path) -> None:
    env = _env(tmp_path, data_dir, trained, case.name)
    extra, stdin = case.make(env)
    argv = [str(env.data), "--path", str(env.ckpt), "--beam", "2", "--max-len-b", "20", *extra]
    result = run_main(cli.main, argv, stdin=stdin, timeout=60)
    if result.code == 0:
        _check_result(result, argv, stdin, env.data)
    else:
        assert_clean_failure(result, "nmt-generate")


def test_fuzz_case_count() -> None:
    assert len(CASES) >= 120


@pytest.mark.parametrize("make", [_raw_file, _checkpoint, _binary_data], ids=lambda f: f.__name__)
def test_fuzz_as_a_real_process(
    make: Callable[[Env], tuple[list[str], bytes | None]],
    tmp_path: Path,
    data_dir: Path,
    trained: Path,
) -> None:
    env = _env(tmp_path, data_dir, trained, "real")
    extra, stdin = make(env)
    argv = [str(env.data), "--path", str(env.ckpt), "--beam", "2", *extra]
    result = run_cli([sys.executable, "-m", "nmt_preln.cli.generate", *argv], stdin=stdin)
    if result.code == 0:
        _check_result(result, argv, stdin, env.data)
    else:
        assert_clean_failure(result, "nmt-generate")
