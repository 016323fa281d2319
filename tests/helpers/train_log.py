"""train_log.jsonl records without their clock fields, for comparing two runs."""

from __future__ import annotations

from typing import Any

# Seconds measured by the run: they differ between two runs that compute the same thing.
CLOCK_FIELDS = frozenset({"wall", "train_wall", "valid_seconds"})


def without_clock(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` with the :data:`CLOCK_FIELDS` left out."""
    return [{k: v for k, v in r.items() if k not in CLOCK_FIELDS} for r in records]
