"""Loading an epoch's batches, collated ahead of the training loop when asked.

Which sentences form each batch is decided by :mod:`nmt_preln.train.batch_plan`; collation into
tensors is :mod:`nmt_preln.data.collate`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from nmt_preln.data.collate import Batch, PairDataset, collate_indices


def iterate_batches(
    dataset: PairDataset,
    batches: Sequence[np.ndarray],
    *,
    start: int = 0,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> Iterator[Batch]:
    """Yield the collated batches ``batches[start:]`` in order.

    Args:
        dataset: where the sentences come from.
        batches: index arrays, e.g. from :func:`batch_by_size` then :func:`shard`.
        start: batches to skip (the iterator position of a resumed epoch).
        num_workers: background threads collating ahead (``data.num_workers``); 0 collates
            in the caller's thread. Order is kept either way.
        pin_memory: pin each batch for asynchronous copies to CUDA (ignored without CUDA).

    Yields:
        :class:`Batch` objects on the CPU.
    """

    def load(indices: np.ndarray) -> Batch:
        batch = collate_indices(dataset, indices)
        return batch.pin_memory() if pin_memory else batch

    todo = iter(batches[start:])
    if num_workers <= 0:
        yield from (load(indices) for indices in todo)
        return
    pool = ThreadPoolExecutor(max_workers=num_workers, thread_name_prefix="batches")
    try:
        # A bounded window of futures keeps order and memory in check.
        window: deque[Future[Batch]] = deque()
        for indices in todo:
            window.append(pool.submit(load, indices))
            if len(window) > 2 * num_workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
