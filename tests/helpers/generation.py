"""Running ``generate()`` in-process on the ``spm_toy`` folder (data-bin, a.pt, b.pt)."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

from nmt_preln.config import GenerateConfig, SearchConfig
from nmt_preln.generate.run import generate


def toy_config(toy: Path, **overrides: object) -> GenerateConfig:
    """Beam 3 over ``toy/data-bin`` with ``toy/a.pt``, outputs capped at 8 tokens (fast)."""
    values: dict[str, object] = {
        "data": str(toy / "data-bin"),
        "path": str(toy / "a.pt"),
        "beam": 3,
        "max_len_b": 8,
    }
    values.update(overrides)
    return generate_config(**values)


def generate_config(**values: object) -> GenerateConfig:
    """A GenerateConfig from flat flag-like keywords: search settings go to ``search``."""
    names = {f.name for f in dataclasses.fields(SearchConfig)}
    search = SearchConfig(**{k: v for k, v in values.items() if k in names})  # type: ignore[arg-type]
    rest = {k: v for k, v in values.items() if k not in names}
    return GenerateConfig(search=search, **rest)  # type: ignore[arg-type]


def run_generate(cfg: GenerateConfig, stdin: bytes = b"") -> tuple[str, str]:
    """``generate(cfg)`` reading ``stdin``; returns (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    generate(cfg, stdin=io.BytesIO(stdin), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_toy(toy: Path, stdin: bytes = b"", **overrides: object) -> tuple[str, str]:
    """:func:`run_generate` of :func:`toy_config` with ``overrides``."""
    return run_generate(toy_config(toy, **overrides), stdin)


def by_kind(text: str, kind: str) -> list[list[str]]:
    """The tab-split fields of the output lines of one kind (``"H"``: the ``H-<id>`` lines)."""
    return [line.split("\t") for line in text.splitlines() if line.startswith(kind + "-")]
