"""Collation, token-budget bucketing, sharding and batch loading on generated sizes."""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from nmt_preln.data.collate import Batch, collate
from nmt_preln.errors import UserError
from nmt_preln.train.batch_plan import BatchPlan, batch_by_size, shard
from nmt_preln.train.batching import iterate_batches

PAD, EOS = 1, 2


def _sizes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    src = rng.integers(1, 100, n)
    tgt = np.clip(src + rng.integers(-10, 10, n), 1, None)
    return src, tgt


def padding_fraction(batches: Sequence[np.ndarray], src: np.ndarray, tgt: np.ndarray) -> float:
    """Share of padding among the token slots of ``batches``, both sides together:
    ``1 - real tokens / sum_b(n_b * longest_b)``."""
    real = padded = 0
    for sizes in (src, tgt):
        for batch in batches:
            real += int(sizes[batch].sum())
            padded += int(sizes[batch].max()) * len(batch)
    return 1.0 - real / padded


def test_collate_right_pads_and_shifts_the_target() -> None:
    src = [np.array([5, 6, EOS]), np.array([7, EOS])]
    tgt = [np.array([8, EOS]), np.array([9, 10, 11, EOS])]
    batch = collate(src, tgt, pad=PAD, eos=EOS, ids=[4, 0])
    assert batch.src_tokens.tolist() == [[5, 6, EOS], [7, EOS, PAD]]
    assert batch.src_lengths.tolist() == [3, 2]
    assert batch.target is not None and batch.prev_output_tokens is not None
    assert batch.target.tolist() == [[8, EOS, PAD, PAD], [9, 10, 11, EOS]]
    assert batch.prev_output_tokens.tolist() == [[EOS, 8, PAD, PAD], [EOS, 9, 10, 11]]
    assert batch.ntokens == 6 and batch.ids.tolist() == [4, 0] and len(batch) == 2
    assert batch.src_tokens.dtype == torch.int64


def test_collate_without_targets() -> None:
    batch = collate([np.array([5, EOS])], None, pad=PAD, eos=EOS, ids=np.array([3]))
    assert batch.target is None and batch.prev_output_tokens is None and batch.ntokens == 2
    moved = batch.to("cpu")
    assert moved.target is None and torch.equal(moved.src_tokens, batch.src_tokens)
    assert isinstance(batch.pin_memory(), Batch)


@pytest.mark.parametrize("max_sentences", [0, 16])
def test_batches_respect_limits_and_cover_every_index_once(max_sentences: int) -> None:
    src, tgt = _sizes(5000)
    batches = batch_by_size(src, tgt, max_tokens=1000, max_sentences=max_sentences, seed=1, epoch=1)
    for b in batches:
        assert len(b) * max(src[b].max(), tgt[b].max()) <= 1000
        assert max_sentences == 0 or len(b) <= max_sentences
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(5000))
    assert padding_fraction(batches, src, tgt) < 0.1


def test_sorted_buckets_pad_much_less_than_random_batches() -> None:
    src, tgt = _sizes(5000)
    batches = batch_by_size(src, tgt, max_tokens=1000, max_sentences=0, seed=1, epoch=1)
    random_batches = np.array_split(np.random.default_rng(0).permutation(5000), len(batches))
    assert padding_fraction(batches, src, tgt) * 5 < padding_fraction(random_batches, src, tgt)


def test_order_is_deterministic_per_seed_and_epoch() -> None:
    src, tgt = _sizes(3000)

    def make(seed: int, epoch: int) -> list[list[int]]:
        return [
            b.tolist()
            for b in batch_by_size(
                src, tgt, max_tokens=800, max_sentences=0, seed=seed, epoch=epoch
            )
        ]

    assert make(1, 1) == make(1, 1)
    assert make(1, 1) != make(1, 2)
    assert make(1, 1) != make(2, 1)
    # composition is fixed for a seed (fairseq); only the order changes across epochs
    assert sorted(make(1, 1)) == sorted(make(1, 2))


def test_too_long_sentences_are_skipped_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    src = np.array([5, 50, 6, 70, 7])
    with caplog.at_level(logging.WARNING):
        batches = batch_by_size(src, None, max_tokens=20, max_sentences=0, seed=1, epoch=1)
    assert sorted(np.concatenate(batches).tolist()) == [0, 2, 4]
    assert len(caplog.records) == 1 and "skipped 2 " in caplog.text
    with pytest.raises(UserError, match="max_tokens=4"):
        batch_by_size(src, None, max_tokens=4, max_sentences=0, seed=1, epoch=1)
    with pytest.raises(UserError, match="max_tokens"):
        batch_by_size(src, None, max_tokens=0, max_sentences=0, seed=1, epoch=1)


def test_sentence_limit_alone() -> None:
    batches = batch_by_size(np.arange(1, 11), None, max_tokens=0, max_sentences=3, seed=1, epoch=1)
    assert sorted(len(b) for b in batches) == [1, 3, 3, 3]


def test_batching_100k_sentences_is_fast() -> None:
    src, tgt = _sizes(100_000)
    start = time.perf_counter()
    batches = batch_by_size(src, tgt, max_tokens=4096, max_sentences=0, seed=1, epoch=1)
    elapsed = time.perf_counter() - start
    assert sum(len(b) for b in batches) == 100_000
    assert elapsed < 2.0  # ~0.1 s when the machine is idle; generous for shared CPUs


def _previous_batch_by_size(
    src: np.ndarray,
    tgt: np.ndarray | None,
    *,
    max_tokens: int,
    max_sentences: int,
    seed: int,
    epoch: int,
) -> list[np.ndarray]:
    """The algorithm before the BatchPlan rewrite (two stable sorts, a Python cutting loop):
    checkpoints written then must resume onto the same batches."""
    src = np.asarray(src, dtype=np.int64)
    longest = src if tgt is None else np.maximum(src, tgt)
    order = np.random.default_rng(seed).permutation(len(src))
    if tgt is not None:
        order = order[np.argsort(np.asarray(tgt)[order], kind="stable")]
    order = order[np.argsort(src[order], kind="stable")]
    if max_tokens > 0:
        order = order[longest[order] <= max_tokens]
    bounds, start, run = [], 0, 0
    for i, length in enumerate(longest[order].tolist()):
        count, new_run = i - start + 1, max(run, length)
        over = (max_tokens > 0 and new_run * count > max_tokens) or (
            max_sentences > 0 and count > max_sentences
        )
        if count > 1 and over:
            bounds.append(i)
            start, run = i, length
        else:
            run = new_run
    batches = np.split(order, bounds)
    return [batches[i] for i in np.random.default_rng([seed, epoch]).permutation(len(batches))]


@pytest.mark.parametrize(
    ("n", "max_tokens", "max_sentences", "with_tgt", "high"),
    [
        (3000, 800, 0, True, 100),
        (3000, 800, 16, True, 100),
        (3000, 0, 7, True, 100),
        (2000, 300, 0, False, 100),
        (2000, 90, 0, True, 100),  # sentences past the budget are skipped
        (500, 50_000, 0, True, 70_000),  # a key wider than 16 bits
        (1000, 64, 5, True, 3),  # many ties, zero-length sentences
    ],
)
def test_batches_equal_the_previous_algorithm(
    n: int, max_tokens: int, max_sentences: int, with_tgt: bool, high: int
) -> None:
    rng = np.random.default_rng(n + max_tokens)
    src = rng.integers(0, high, n).astype(np.int32)
    tgt = rng.integers(0, high, n).astype(np.int32) if with_tgt else None
    for seed, epoch in ((1, 1), (3, 2)):
        limits = {"max_tokens": max_tokens, "max_sentences": max_sentences}
        new = batch_by_size(src, tgt, **limits, seed=seed, epoch=epoch)
        old = _previous_batch_by_size(src, tgt, **limits, seed=seed, epoch=epoch)
        assert [b.tolist() for b in new] == [b.tolist() for b in old]


def test_the_plan_is_three_flat_arrays_not_an_object_per_sentence_or_batch() -> None:
    n = 200_000
    src, tgt = _sizes(n)
    plan = batch_by_size(src, tgt, max_tokens=2000, max_sentences=0, seed=1, epoch=1)
    assert isinstance(plan, BatchPlan) and len(plan) > 1000
    assert plan.order.dtype == np.int32 and plan.order.shape == (n,)
    assert plan.starts.shape == plan.ends.shape == (len(plan),)
    held = plan.order.nbytes + plan.starts.nbytes + plan.ends.nbytes
    assert held <= 4 * n + 16 * len(plan)
    batch = plan[5]
    assert batch.base is plan.order or batch.base is plan.order.base  # a view, not a copy
    part = shard(plan, 1, 3)
    assert isinstance(part, BatchPlan) and part.order is plan.order
    assert [b.tolist() for b in part] == [
        b.tolist() for b in list(plan)[1 : len(plan) // 3 * 3 : 3]
    ]


def test_select_equals_filtering_every_batch() -> None:
    src, tgt = _sizes(4000)
    plan = batch_by_size(src, tgt, max_tokens=600, max_sentences=0, seed=2, epoch=1)
    keep = (src < 60) & (tgt < 70)
    expected = [b[keep[b]] for b in plan if keep[b].any()]
    selected = plan.select(keep)
    assert [b.tolist() for b in selected] == [b.tolist() for b in expected]
    assert selected.starts.dtype == selected.ends.dtype == np.int64
    assert plan.select(np.ones(4000, dtype=bool)) is plan
    assert len(plan.select(np.zeros(4000, dtype=bool))) == 0


def test_shard_gives_every_rank_the_same_count_of_distinct_batches() -> None:
    batches = [np.array([i]) for i in range(10)]
    shards = [shard(batches, rank, 3) for rank in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]
    taken = sorted(int(b[0]) for s in shards for b in s)
    assert taken == list(range(9))  # the remainder (batch 9) is dropped
    assert shard(batches, 0, 1) == batches
    with pytest.raises(UserError, match="4 ranks"):
        shard(batches[:3], 0, 4)


@dataclass
class _Specials:
    pad: int = PAD
    eos: int = EOS


class _FakePairs:
    """A LanguagePairDataset stand-in: sentence i is [i+10] * (i % 5 + 1) + [EOS]."""

    def __init__(self, n: int) -> None:
        self.src = [np.array([i + 10] * (i % 5 + 1) + [EOS]) for i in range(n)]
        self.tgt = [np.array([i + 20] * (i % 3 + 1) + [EOS]) for i in range(n)]
        self.src_dict = _Specials()


@pytest.mark.parametrize("num_workers", [0, 2])
def test_iterate_batches_yields_in_order_from_start(num_workers: int) -> None:
    data = _FakePairs(40)
    batches = [np.arange(i, i + 4) for i in range(0, 40, 4)]
    loaded = list(iterate_batches(data, batches, start=3, num_workers=num_workers, pin_memory=True))
    assert [b.ids.tolist() for b in loaded] == [b.tolist() for b in batches[3:]]
    first = loaded[0]
    assert first.target is not None
    assert first.src_tokens[0, 0].item() == 22 and first.target[0, 0].item() == 32


def test_iterate_batches_can_stop_early() -> None:
    data = _FakePairs(40)
    batches = [np.array([i]) for i in range(40)]
    iterator = iterate_batches(data, batches, num_workers=2)
    assert next(iterator).ids.tolist() == [0]
    iterator.close()  # must not hang or leak the worker threads' pending work
