"""Fuzz the checkpoint as data: every field of a real checkpoint, mutated, through four commands.

One tiny checkpoint is trained per session (``trained``). Each case changes one field (wrong
type, None, negative, huge, NaN, a path as a language code, empty, missing) and runs
``nmt-generate``, ``nmt-average``, ``nmt-export`` and a resuming ``nmt-train`` in-process.
Where the field is wrong, each command must exit non-zero with exactly one
``nmt-<cmd>: error:`` line, no traceback, and create no file (nothing under the case's work
directory or the data directory changes). A field that is legitimately absent or None (a
checkpoint without training state, no language codes), or a value that is in range, must work:
exit 0. The default suite runs a seeded subset; ``-m slow`` runs the whole cross product.
"""

from __future__ import annotations

import math
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from nmt_preln.cli import average as average_cli
from nmt_preln.cli import export as export_cli
from nmt_preln.cli import generate as generate_cli
from nmt_preln.cli import train as train_cli

from nmt_preln.checkpoint.store import LAST

from .harness import TINY_TRAIN, CliResult, assert_clean_failure, run_main

ALL = frozenset({"generate", "average", "export", "train"})
TRAIN = frozenset({"train"})
NONE: frozenset[str] = frozenset()
WEIGHT = "encoder.layers.0.ffn.fc1.weight"
_MUTATIONS: dict[str, list[str]] = {
    "int": ["type", "none", "negative", "huge", "missing"],
    "float": ["type", "none", "negative", "nan", "missing"],
    "bool": ["type", "none", "missing"],
    "enum": ["type", "bad", "none", "missing"],
    "lang": ["type", "none", "path", "missing"],
    "str": ["type", "none"],
    "dict": ["type", "none", "missing"],
    "list": ["type", "none", "empty", "missing"],
    "tensor": ["nan", "shape", "type", "missing"],
}


@dataclass(frozen=True)
class Field:
    """A field of the checkpoint, its kind, and who must refuse it when absent.

    Attributes:
        path: dotted path into the state (weight names under ``model.`` keep their dots).
        kind: a key of ``_MUTATIONS``.
        needed_by: the commands that must fail when the field is missing.
        accepted: mutations that leave a valid checkpoint (None where None means "absent",
            a huge counter, a negative value nobody reads).
    """

    path: str
    kind: str
    needed_by: frozenset[str] = ALL
    accepted: frozenset[str] = field(default_factory=frozenset)


FIELDS = [
    Field("format_version", "int"),
    Field("model", "dict"),
    Field(f"model.{WEIGHT}", "tensor"),
    Field("config", "dict"),
    Field("config.arch", "dict"),
    Field("config.arch.d_model", "int"),
    Field("config.arch.encoder_layers", "int"),
    Field("config.arch.num_heads", "int", needed_by=NONE),  # the default 4 divides 16
    Field("config.arch.max_positions", "int", needed_by=NONE),
    Field("config.arch.dropout", "float", needed_by=NONE),
    Field("config.arch.norm_position", "enum", needed_by=NONE),
    Field("config.arch.share_all_embeddings", "bool", needed_by=NONE),
    Field("config.optim.lr", "float", needed_by=NONE, accepted=frozenset({"negative"})),
    Field("src_dict", "list"),
    Field("tgt_dict", "list"),
    Field("src_dict.4", "str"),
    Field("spm_models", "dict", needed_by=NONE, accepted=frozenset({"none"})),
    Field("source_lang", "lang", needed_by=NONE, accepted=frozenset({"none"})),
    Field("target_lang", "lang", needed_by=NONE, accepted=frozenset({"none"})),
    Field("optimizer", "dict", needed_by=TRAIN),
    Field("optimizer.param_groups", "list"),
    Field("optimizer.param_groups.0.lr", "float", needed_by=NONE),
    Field("optimizer.param_groups.0.betas", "list", needed_by=NONE),  # this run's betas apply
    Field("optimizer.state", "dict"),
    Field("optimizer.state.0.exp_avg", "tensor"),
    Field("scheduler", "dict", needed_by=TRAIN),
    Field("scaler", "dict", needed_by=NONE, accepted=frozenset({"none"})),
    Field("rng", "dict", needed_by=TRAIN),
    Field("rng.python", "list"),
    Field("rng.numpy", "list"),
    Field("rng.torch", "tensor"),
    Field("iterator", "dict", needed_by=TRAIN),
    Field("iterator.epoch", "int", accepted=frozenset({"huge"})),
    Field("iterator.batch_index", "int", accepted=frozenset({"huge"})),
    Field("num_updates", "int", needed_by=TRAIN, accepted=frozenset({"huge"})),
    Field("best_metric", "float", needed_by=NONE, accepted=frozenset({"none"})),
    Field("bad_validations", "int", needed_by=NONE, accepted=frozenset({"huge"})),
]


@dataclass(frozen=True)
class Case:
    field: Field
    mutation: str

    @property
    def name(self) -> str:
        return f"{self.field.path}:{self.mutation}"

    def must_fail(self, command: str) -> bool:
        if self.mutation == "missing":
            return command in self.field.needed_by
        return self.mutation not in self.field.accepted


CASES = [Case(f, m) for f in FIELDS for m in _MUTATIONS[f.kind]]
# The default suite: a seeded sample that still covers every kind of mutation.
SAMPLE = random.Random(15).sample(CASES, 16)


def _mutated(value: Any, mutation: str, kind: str) -> Any:
    if mutation == "none":
        return None
    if mutation == "type":
        return {"int": "7", "float": "0.5", "bool": 1, "enum": 3, "lang": 5, "str": 5,
                "dict": [1], "list": {"a": 1}, "tensor": "x"}[kind]  # fmt: skip
    if mutation == "negative":
        return -3 if kind == "int" else -1.0
    if mutation == "huge":
        return 2**62
    if mutation == "nan":
        return torch.full(value.shape, math.nan) if kind == "tensor" else math.nan
    if mutation == "shape":
        return torch.ones(3)
    if mutation == "bad":
        return "middle"
    if mutation == "path":
        return "x/../../../../tmp/x/PWNED"
    assert mutation == "empty"
    return []


def _mutate(state: dict[str, Any], case: Case) -> None:
    path = case.field.path
    parts = path.split(".", 1) if path.startswith("model.") else path.split(".")
    keys: list[Any] = [int(k) if k.isdigit() else k for k in parts]
    node: Any = state
    for key in keys[:-1]:
        node = node[key]
    if case.mutation == "missing":
        del node[keys[-1]]
    else:
        node[keys[-1]] = _mutated(node[keys[-1]], case.mutation, case.field.kind)


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Size and mtime of every file below ``roots`` (a refused resume must add or change none:
    nmt-train validates the checkpoint before its TensorBoard writer creates an event file)."""
    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns)
        for root in roots
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _commands(
    work: Path, data: Path, case: Case
) -> dict[str, tuple[Callable[..., Any], list[str]]]:
    ckpt = work / "save" / LAST
    fmt = random.Random(case.name).choice(["safetensors", "ctranslate2"])
    out = str(work / "exported")
    generate = [str(data), "--path", str(ckpt), "--beam", "1", "--max-len-b", "3"]
    generate += ["--results-path", str(work / "generated")]
    train = [*TINY_TRAIN, f"data.path={data}", f"checkpoint.save_dir={work / 'save'}"]
    return {
        "generate": (generate_cli.main, [*generate, "--gen-subset", "test"]),
        "average": (average_cli.main, ["--inputs", str(ckpt), "--output", str(work / "a.pt")]),
        "export": (export_cli.main, ["--format", fmt, "--path", str(ckpt), "--out", out]),
        "train": (train_cli.main, [*train, "max_update=7"]),
    }  # fmt: skip


def _run_case(case: Case, tmp_path: Path, data_dir: Path, trained: Path) -> None:
    failures = []
    for command in ("generate", "average", "export", "train"):
        work = tmp_path / command
        shutil.copytree(trained.parent, work / "save")
        state = torch.load(work / "save" / LAST, weights_only=True)
        _mutate(state, case)
        torch.save(state, work / "save" / LAST)
        before = _snapshot(work, data_dir)
        main, argv = _commands(work, data_dir, case)[command]
        result: CliResult = run_main(main, argv, timeout=120)
        if case.must_fail(command):
            line = assert_clean_failure(result, f"nmt-{command}")
            assert str(work / "save" / LAST) in line, line
            after = _snapshot(work, data_dir)
            changed = sorted(
                k for k in before.keys() | after.keys() if before.get(k) != after.get(k)
            )
            assert not changed, f"{command} left files behind: {changed}; {line}"
        elif result.code != 0:
            failures.append(f"{command}: exit {result.code}: {result.stderr[-400:]}")
    assert not failures, failures
    assert not Path("/tmp/x/PWNED").exists() and not list(Path("/tmp/x").glob("PWNED*"))


@pytest.mark.parametrize("case", SAMPLE, ids=[c.name for c in SAMPLE])
def test_fuzz_checkpoint(case: Case, tmp_path: Path, data_dir: Path, trained: Path) -> None:
    _run_case(case, tmp_path, data_dir, trained)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fuzz_checkpoint_every_field(
    case: Case, tmp_path: Path, data_dir: Path, trained: Path
) -> None:
    _run_case(case, tmp_path, data_dir, trained)


def test_fuzz_covers_every_mutation() -> None:
    assert {c.mutation for c in SAMPLE} >= {"type", "none", "missing"}
    assert len(CASES) >= 120
