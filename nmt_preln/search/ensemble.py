"""Next-token log-probabilities for the search: one model or an ensemble, cached or not.

The search in :mod:`nmt_preln.search.beam_search` only sees a :class:`StepScorer`: feed it the
last token of every row, get ``(rows, vocab)`` float32 log-probabilities back, and tell it which
rows survive (``reorder``); ``step_with_attention`` also returns the attention that
``--print-alignment`` needs. :class:`EnsembleScorer` implements that over the decoding
interface of :class:`nmt_preln.models.transformer.Transformer` (``encode`` / ``init_cache`` /
``decode_step`` / ``decode`` and their ``*_with_attention`` twins), written here as the
:class:`DecodingModel` protocol so tests can use fake models.

Ensembles average probabilities, like fairseq: ``log p(y) = logsumexp_m log p_m(y) - log M``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import Tensor


class DecodingModel(Protocol):
    """The part of the Transformer's interface that decoding uses (see docs/INTERNALS.md)."""

    def encode(self, src_tokens: Tensor) -> Any:
        """``src_tokens (batch, src_len)`` -> an encoder output with ``reorder(order)``."""
        ...

    def init_cache(self, enc: Any, *, max_len: int) -> Any:
        """A decoder cache for ``max_len`` steps of ``enc``'s sentences (one row each), with
        ``reorder_beams(order, kept)`` (in place; see ``DecoderCache.reorder_beams``)."""
        ...

    def decode_step(self, tokens: Tensor, cache: Any) -> Tensor:
        """``tokens (rows,)`` -> logits ``(rows, vocab)``; advances ``cache`` by one position."""
        ...

    def decode(self, prev_output_tokens: Tensor, enc: Any) -> Tensor:
        """``prev_output_tokens (rows, tgt_len)`` -> logits ``(rows, tgt_len, vocab)``, causal."""
        ...

    def decode_step_with_attention(self, tokens: Tensor, cache: Any) -> tuple[Tensor, Tensor]:
        """:meth:`decode_step` plus the alignment attention ``(rows, src_len)`` (only called
        for ``--print-alignment``)."""
        ...

    def decode_with_attention(self, prev_output_tokens: Tensor, enc: Any) -> tuple[Tensor, Tensor]:
        """:meth:`decode` plus the alignment attention ``(rows, tgt_len, src_len)``."""
        ...


class StepScorer(Protocol):
    """What the search needs: per-step log-probabilities over rows it can reorder."""

    def step(self, tokens: Tensor) -> Tensor:
        """``tokens (rows,)``, the last token of each row -> ``(rows, vocab)`` float32 log-probs."""
        ...

    def step_with_attention(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`step` plus the alignment attention ``(rows, src_len)`` of the predicted token
        (the search calls it instead of ``step`` only when alignments are asked for)."""
        ...

    def reorder(self, order: Tensor, *, kept: Tensor | None = None) -> None:
        """Keep (and repeat) rows: row ``i`` of the new state is row ``order[i]`` of the old.

        Rows come in equal groups of consecutive rows, one group per sentence: new row ``i``
        belongs to sentence ``kept[i // g]`` (indices into the previous sentences), and
        ``kept=None`` means every sentence stays where it was.
        """
        ...


class EnsembleScorer:
    """Log-probabilities of the mean distribution of ``models`` for a batch of sources.

    The sources are encoded once at construction; with ``use_cache`` every step runs
    ``decode_step`` on the models' key/value caches, otherwise (for benchmarks and checks) the
    whole decoder is recomputed on the full prefix each step with ``decode``.
    """

    def __init__(
        self,
        models: Sequence[DecodingModel],
        src_tokens: Tensor,
        *,
        max_len: int,
        temperature: float = 1.0,
        use_cache: bool = True,
    ) -> None:
        """Encode the sources with every model.

        Args:
            models: one or more models sharing the target vocabulary.
            src_tokens: ``(batch, src_len)``, right-padded.
            max_len: the most decoder steps any row will take (cache capacity).
            temperature: logits are divided by it before the softmax (fairseq's --temperature).
            use_cache: incremental decoding (True) or full recomputation of the prefix (False).
        """
        if not models:
            raise ValueError("EnsembleScorer needs at least one model")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.models = list(models)
        self.temperature = temperature
        self.use_cache = use_cache
        encoder_outs = [m.encode(src_tokens) for m in self.models]
        pairs = zip(self.models, encoder_outs, strict=True)
        self.caches = [m.init_cache(e, max_len=max_len) for m, e in pairs] if use_cache else []
        # Only the no-cache path reads them again (the caches hold what decoding needs).
        self.encoder_outs = [] if use_cache else encoder_outs
        self.prefix = src_tokens.new_zeros((src_tokens.size(0), 0))  # (rows, steps), no-cache path

    def _logits(self, index: int, tokens: Tensor) -> Tensor:
        if self.use_cache:
            return self.models[index].decode_step(tokens, self.caches[index])  # (rows, V)
        return self.models[index].decode(self.prefix, self.encoder_outs[index])[:, -1]  # (rows, V)

    def _logits_and_attention(self, index: int, tokens: Tensor) -> tuple[Tensor, Tensor]:
        model = self.models[index]
        if self.use_cache:
            return model.decode_step_with_attention(tokens, self.caches[index])  # (R, V), (R, S)
        logits, attn = model.decode_with_attention(self.prefix, self.encoder_outs[index])
        return logits[:, -1], attn[:, -1]  # (R, V), (R, S)

    def _scaled(self, logits: Tensor) -> Tensor:
        # Skipped at the default temperature: a (rows, V) division per step is not free.
        return logits if self.temperature == 1.0 else logits / self.temperature

    def step(self, tokens: Tensor) -> Tensor:
        """Advance every row by ``tokens (rows,)``; return ``(rows, vocab)`` float32 log-probs."""
        if not self.use_cache:
            self.prefix = torch.cat([self.prefix, tokens[:, None]], dim=1)  # (rows, t+1)
        return self._mean([self._logits(i, tokens) for i in range(len(self.models))])

    def step_with_attention(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`step` plus the attention that fairseq aligns with, ``(rows, src_len)``.

        It is the last decoder layer's cross-attention averaged over heads and over the
        models (fairseq's EnsembleModel averages it too), for the token being predicted.
        """
        if not self.use_cache:
            self.prefix = torch.cat([self.prefix, tokens[:, None]], dim=1)  # (rows, t+1)
        pairs = [self._logits_and_attention(i, tokens) for i in range(len(self.models))]
        attention = torch.stack([a.float() for _, a in pairs]).mean(dim=0)  # (rows, S)
        return self._mean([logits for logits, _ in pairs]), attention

    def _mean(self, logits: list[Tensor]) -> Tensor:
        """Log of the mean of the models' distributions: (rows, V) float32."""
        # log_softmax in float32 even under autocast: bf16 log-probs would tie many beams.
        lprobs = [torch.log_softmax(self._scaled(x.float()), dim=-1) for x in logits]
        if len(lprobs) == 1:
            return lprobs[0]
        stacked = torch.stack(lprobs, dim=0)  # (M, rows, V)
        return torch.logsumexp(stacked, dim=0) - math.log(len(lprobs))

    def reorder(self, order: Tensor, *, kept: Tensor | None = None) -> None:
        """Select/repeat rows (``order (new_rows,)``), grouped by sentence as in StepScorer.

        The caches keep one cross-attention state per sentence (``kept`` selects them); the
        no-cache path keeps one encoder output per row instead.
        """
        for cache in self.caches:
            cache.reorder_beams(order, kept)
        if not self.use_cache:
            self.encoder_outs = [e.reorder(order) for e in self.encoder_outs]
            self.prefix = self.prefix.index_select(0, order)
