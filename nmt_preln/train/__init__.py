"""Training: the loop (:mod:`.trainer`), its blocks (batching, loss, optim, schedule, checkpoint),
data parallelism (:mod:`.distributed`) and what it reports (:mod:`.metrics`).

``from nmt_preln.train import train`` works; the trainer is imported on first use so that
importing a light module such as :mod:`.schedule` does not pull in the whole loop.
"""

from __future__ import annotations

from typing import Any

__all__ = ["train"]


def __getattr__(name: str) -> Any:
    if name == "train":
        from nmt_preln.train.trainer import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
