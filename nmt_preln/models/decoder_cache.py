"""The key/value state of incremental decoding, and how beam search reorders it.

:meth:`nmt_preln.models.transformer.Decoder.init_cache` allocates it; ``Decoder.step`` writes one
position per call. Kept apart from the model because it is all about memory traffic: what is
copied per step (the filled self-attention prefix, once) and what is not (the encoder state,
shared by a sentence's beams).
"""

from __future__ import annotations

import torch
from torch import Tensor


class DecoderCache:
    """Key/value state of incremental decoding, allocated once by ``Decoder.init_cache``.

    Beam search keeps its ``beam`` rows of a sentence consecutive. The cross-attention state is
    stored once per sentence and a sentence's rows attend to it together (see
    ``DecoderLayer._cross_and_ffn``), so it is copied only when sentences leave the batch.

    Attributes:
        self_k, self_v: (layers, rows, heads, max_len, head_dim); positions [0, step) are filled.
        cross_k, cross_v: (layers, sentences, heads, src_len, head_dim), the projected encoder
            states; ``rows`` is a multiple of ``sentences``.
        cross_mask: (sentences, 1, 1, src_len) bool, True where a source token may be attended.
        step: number of tokens decoded so far (the position of the next token).
    """

    def __init__(
        self, self_kv: tuple[Tensor, Tensor], cross_kv: tuple[Tensor, Tensor], cross_mask: Tensor
    ) -> None:
        self.self_k, self.self_v = self_kv
        self.cross_k, self.cross_v = cross_kv
        self.cross_mask = cross_mask
        self.step = 0
        # Reordering gathers the filled prefix into a second pair of buffers and swaps the
        # pairs: one copy per step instead of a gather plus a write-back. Both pairs keep their
        # full capacity (``self_k`` may be a view of the first rows of ``_active``).
        self._active: tuple[Tensor, Tensor] = self_kv
        self._spare: tuple[Tensor, Tensor] | None = None

    @property
    def max_len(self) -> int:
        return self.self_k.size(3)

    @property
    def group(self) -> int:
        """Rows per source sentence."""
        return self.self_k.size(1) // self.cross_k.size(1)

    def reorder_beams(self, order: Tensor, kept: Tensor | None = None) -> None:
        """Beam search's reordering: rows stay grouped by sentence, ``g`` consecutive rows each.

        Args:
            order: (rows',) new row ``i`` is old row ``order[i]``, which must belong to the
                sentence ``kept[i // g]``, where ``g = rows' / sentences'``.
            kept: (sentences',) the sentences still decoded, as indices into the old ones;
                None when all of them stay in place (then nothing of the encoder is copied).
        """
        self._reorder_rows(order)
        if kept is not None:
            self._reorder_sentences(kept)

    def _reorder_sentences(self, index: Tensor) -> None:
        self.cross_k = self.cross_k.index_select(1, index)  # (L, n', H, S, Dh)
        self.cross_v = self.cross_v.index_select(1, index)  # (L, n', H, S, Dh)
        self.cross_mask = self.cross_mask.index_select(0, index)  # (n', 1, 1, S)

    def _reorder_rows(self, order: Tensor) -> None:
        """Gather the filled prefix [0, step) of rows ``order`` into the spare pair; swap."""
        rows = order.size(0)
        if self._spare is None or self._spare[0].size(1) < rows:
            # Positions >= step are written before they are read: no need to zero them.
            shape = (self.self_k.size(0), rows, *self.self_k.shape[2:])  # (L, rows', H, M, Dh)
            self._spare = (self.self_k.new_empty(shape), self.self_v.new_empty(shape))
        new = (self._spare[0][:, :rows], self._spare[1][:, :rows])  # (L, rows', H, M, Dh)
        for old, dst in zip((self.self_k, self.self_v), new, strict=True):
            prefix = old[:, :, :, : self.step]  # (L, rows, H, step, Dh)
            torch.index_select(prefix, 1, order, out=dst[:, :, :, : self.step])
        self._active, self._spare = self._spare, self._active
        self.self_k, self.self_v = new
