"""Collation: sentences of token ids -> one right-padded :class:`Batch` of tensors.

Shared by training (:mod:`nmt_preln.train.batching`), validation and decoding
(:mod:`nmt_preln.search.translator`), so that every consumer pads and shifts the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import torch
from torch import Tensor


@dataclass
class Batch:
    """A collated batch, right-padded with ``pad``.

    Attributes:
        ids: (batch,) dataset indices of the sentences, in row order.
        src_tokens: (batch, src_len) source tokens, each row ending in ``</s>``.
        src_lengths: (batch,) source lengths without padding.
        prev_output_tokens: (batch, tgt_len) decoder input ``</s> + target[:-1]``, or None
            when there are no targets.
        target: (batch, tgt_len) reference tokens, or None when there are no targets.
        ntokens: non-pad target tokens (source tokens when there are no targets).
    """

    ids: Tensor
    src_tokens: Tensor
    src_lengths: Tensor
    prev_output_tokens: Tensor | None
    target: Tensor | None
    ntokens: int

    def __len__(self) -> int:
        return int(self.ids.numel())

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> Batch:
        """A copy with every tensor on ``device``."""

        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device, non_blocking=non_blocking)

        return replace(
            self,
            ids=self.ids.to(device, non_blocking=non_blocking),
            src_tokens=self.src_tokens.to(device, non_blocking=non_blocking),
            src_lengths=self.src_lengths.to(device, non_blocking=non_blocking),
            prev_output_tokens=move(self.prev_output_tokens),
            target=move(self.target),
        )

    def pin_memory(self) -> Batch:
        """A copy in page-locked memory (faster, asynchronous copies to CUDA); a no-op
        without CUDA, where pinning is impossible."""
        if not torch.cuda.is_available():
            return self

        def pin(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.pin_memory()

        return replace(
            self,
            ids=self.ids.pin_memory(),
            src_tokens=self.src_tokens.pin_memory(),
            src_lengths=self.src_lengths.pin_memory(),
            prev_output_tokens=pin(self.prev_output_tokens),
            target=pin(self.target),
        )


def _pad_rows(rows: Sequence[np.ndarray], *, pad: int, shift_eos: int | None = None) -> Tensor:
    """Right-pad ``rows`` into (len(rows), max_len); with ``shift_eos`` build ``eos + row[:-1]``."""
    width = max(len(r) for r in rows)
    out = np.full((len(rows), width), pad, dtype=np.int64)  # (B, L)
    for i, row in enumerate(rows):
        if shift_eos is None:
            out[i, : len(row)] = row
        elif len(row) > 0:
            out[i, 0] = shift_eos
            out[i, 1 : len(row)] = row[:-1]
    return torch.from_numpy(out)


def collate(
    src: list[np.ndarray],
    tgt: list[np.ndarray] | None,
    *,
    pad: int,
    eos: int,
    ids: Sequence[int] | np.ndarray,
) -> Batch:
    """Stack sentences into a right-padded :class:`Batch`.

    Args:
        src: source sentences (token ids, each ending in ``</s>``).
        tgt: target sentences aligned with ``src``, or None (translation without references).
        pad: padding index.
        eos: end-of-sentence index; also the decoder's first input, as in fairseq.
        ids: the sentences' dataset indices.

    Returns:
        The batch; ``prev_output_tokens[i] = [eos] + target[i][:-1]``, padded like ``target``.
    """
    if not src:
        raise ValueError("collate needs at least one sentence")
    src_tokens = _pad_rows(src, pad=pad)  # (B, S)
    src_lengths = torch.tensor([len(s) for s in src], dtype=torch.int64)  # (B,)
    target = prev = None
    if tgt is None:
        ntokens = int(src_lengths.sum())
    else:
        target = _pad_rows(tgt, pad=pad)  # (B, T)
        prev = _pad_rows(tgt, pad=pad, shift_eos=eos)  # (B, T)
        ntokens = sum(len(t) for t in tgt)
    return Batch(
        ids=torch.as_tensor(np.asarray(ids, dtype=np.int64)),
        src_tokens=src_tokens,
        src_lengths=src_lengths,
        prev_output_tokens=prev,
        target=target,
        ntokens=ntokens,
    )


class _Indexed(Protocol):
    def __getitem__(self, index: int) -> np.ndarray: ...


class _Specials(Protocol):
    pad: int
    eos: int


class PairDataset(Protocol):
    """What batch loading needs from :class:`nmt_preln.data.dataset.LanguagePairDataset`."""

    src: _Indexed
    tgt: _Indexed | None
    src_dict: _Specials


def collate_indices(dataset: PairDataset, indices: np.ndarray) -> Batch:
    """Read the sentences ``indices`` from ``dataset`` and :func:`collate` them."""
    ids = indices.tolist()
    src = [dataset.src[i] for i in ids]
    tgt = None if dataset.tgt is None else [dataset.tgt[i] for i in ids]
    specials = dataset.src_dict
    return collate(src, tgt, pad=specials.pad, eos=specials.eos, ids=indices)
