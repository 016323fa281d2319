"""Checkpoints in, hypotheses out: load an ensemble, check it against the data, decode batches.

:func:`load_ensemble` reads one or more checkpoints (``--path a.pt:b.pt``) and checks that they
share their dictionaries; :func:`check_dictionaries` compares those with the data directory's.
:class:`Translator` decodes :class:`~nmt_preln.generate.inputs.SourceItem` lists batch by batch
(sorted by length, under ``inference_mode`` and, on CUDA, autocast) and returns the hypotheses
in input order. The command itself (reading, writing, scoring) is :mod:`nmt_preln.generate.run`.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from nmt_preln.checkpoint.store import load_model_from_checkpoint
from nmt_preln.config import Precision, SearchConfig
from nmt_preln.data.collate import collate
from nmt_preln.data.dictionary import Dictionary, symbol_difference
from nmt_preln.errors import UserError
from nmt_preln.models.transformer import Transformer
from nmt_preln.search.beam_search import Hypothesis, beam_search
from nmt_preln.search.ensemble import EnsembleScorer
from nmt_preln.search.search_memory import MIB, SearchFootprint, decoding_steps, search_budget
from nmt_preln.search.search_rules import Specials, max_lengths
from nmt_preln.search.source_items import SourceItem, make_batches


@dataclass
class Ensemble:
    """The models of ``--path`` and what their (first) checkpoint says about the data."""

    models: list[Transformer]
    src_dict: Dictionary
    tgt_dict: Dictionary
    state: dict[str, Any]  # the first checkpoint, model weights dropped
    max_positions: int  # the smallest of the models'


def load_ensemble(paths: str, *, device: torch.device) -> Ensemble:
    """Load the colon-separated checkpoints of ``--path`` as an ensemble.

    Raises:
        UserError: a checkpoint is missing/corrupt, or the dictionaries of two checkpoints differ.
    """
    files = [p for p in paths.split(":") if p]  # fairseq's separator
    if not files:
        raise UserError("--path: no checkpoint given")
    models, first = [], None
    for path in files:
        model, state = load_model_from_checkpoint(path, device=device)
        models.append(model)
        if first is None:
            first = {k: v for k, v in state.items() if k not in ("model", "optimizer")}
            first["path"] = path
            continue
        for key in ("src_dict", "tgt_dict"):
            if diff := symbol_difference(first[key], state[key]):
                raise UserError(f"--path: {path} and {first['path']} have different {key}: {diff}")
    assert first is not None
    return Ensemble(
        models=models,
        src_dict=Dictionary.from_symbols(first["src_dict"]),
        tgt_dict=Dictionary.from_symbols(first["tgt_dict"]),
        state=first,
        max_positions=min(m.cfg.max_positions for m in models),
    )


def check_dictionaries(
    ensemble: Ensemble, *, data_dir: str, source_lang: str, target_lang: str
) -> None:
    """Fail with one line when the data directory's dictionaries are not the checkpoint's."""
    for side, lang, ours in (
        ("source", source_lang, ensemble.src_dict),
        ("target", target_lang, ensemble.tgt_dict),
    ):
        path = os.path.join(data_dir, f"dict.{lang}.txt")
        theirs = Dictionary.load(path)
        if diff := symbol_difference(ours.symbols, theirs.symbols):
            raise UserError(
                f"{path}: the {side} dictionary differs from the one in checkpoint "
                f"{ensemble.state['path']} ({diff}); was the model trained on this data?"
            )


class Translator:
    """Decode lists of source sentences with the search settings of ``search``.

    ``nmt-generate`` and validation BLEU both decode through this class, so that they agree.

    Args:
        ensemble: the loaded models (all on ``device``).
        search: beam/sampling/length settings and the seed.
        device: where the models live.
        batch_size: most sentences per batch.
        max_tokens: most padded source tokens per batch, 0 off.
        precision: bf16/fp16 autocast on CUDA (CPU always decodes in fp32).
        score_reference: score each item's reference instead of searching.
        need_alignment: keep each hypothesis' cross-attention (A- lines, ``<unk>``
            replacement).
        use_cache: incremental decoding with the KV cache (False recomputes the decoder
            on the whole prefix each step: only for benchmarks and checks).
        warn: where the one warning about shrunk batches goes (None: not reported).

    Raises:
        UserError: the search of even the shortest sentence does not fit into the memory
            budget (``--max-search-memory-mb``; e.g. ``--beam 100000``).
    """

    def __init__(
        self,
        ensemble: Ensemble,
        *,
        search: SearchConfig,
        device: torch.device,
        batch_size: int = 128,
        max_tokens: int = 0,
        precision: Precision = Precision.fp32,
        score_reference: bool = False,
        need_alignment: bool = False,
        use_cache: bool = True,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.ensemble = ensemble
        self.search = search
        self.device = device
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.score_reference = score_reference
        self.need_alignment = need_alignment
        self.use_cache = use_cache
        self.warn = warn
        self.specials = Specials.of(ensemble.tgt_dict)
        self.generator = torch.Generator(device=device).manual_seed(search.seed)
        # Autocast only on CUDA: on CPU, bf16 matmuls are slower and fp16 barely supported.
        half = {Precision.bf16: torch.bfloat16, Precision.fp16: torch.float16}.get(precision)
        self.autocast_dtype = half if device.type == "cuda" else None
        self.limit = ensemble.max_positions - 1  # the decoder's input also holds the first </s>
        self.footprint = SearchFootprint(
            rows=1 if score_reference else search.beam,
            vocab=len(ensemble.tgt_dict),
            layers=[m.cfg.decoder_layers for m in ensemble.models],
            d_model=[m.cfg.d_model for m in ensemble.models],
            cache_bytes=2 if self.autocast_dtype is not None else 4,
        )
        self.budget = search_budget(search, device)
        self._shrunk = False
        self._sentence_bytes(2, what="the shortest sentence")  # refuse a hopeless beam up front

    def _sentence_bytes(self, src_len: int, *, what: str) -> int:
        """The footprint of one sentence; UserError when it alone exceeds the budget."""
        steps = decoding_steps(src_len, self.search, limit=self.limit)
        if self.score_reference:  # forced decoding: (steps, vocab) log-probs at once
            need = self.footprint.sentence_bytes(src_len=src_len, steps=steps) * steps
        else:
            need = self.footprint.sentence_bytes(src_len=src_len, steps=steps)
        if self.budget and need > self.budget:
            raise UserError(
                f"--beam {self.search.beam}: decoding {what} ({src_len} tokens with </s>, up to "
                f"{steps} steps, vocabulary {self.footprint.vocab}) needs about "
                f"{math.ceil(need / MIB)} "
                f"MiB, more than the {self.budget // MIB} MiB budget (--max-search-memory-mb; "
                "default 3/4 of the free memory); lower --beam or --max-len-a/--max-len-b"
            )
        return need

    def _batch_cap(self, width: int, item_id: int) -> int:
        """Most sentences of ``width`` tokens that one batch may decode within the budget."""
        if not self.budget:
            return self.batch_size
        cap = self.budget // self._sentence_bytes(width, what=f"sentence {item_id}")
        if cap < self.batch_size and not self._shrunk and self.warn is not None:
            self._shrunk = True
            self.warn(
                f"--batch-size {self.batch_size} x --beam {self.search.beam} does not fit into "
                f"the {self.budget // MIB} MiB search budget (--max-search-memory-mb): batches "
                f"of {width}-token sentences shrunk to {max(cap, 1)}"
            )
        return int(cap)

    def translate(self, items: Sequence[SourceItem]) -> list[list[Hypothesis]]:
        """Hypotheses of every item, in the order of ``items`` (empty items get none).

        Under ``score_reference`` each item's reference is scored instead (one hypothesis).
        """
        results: list[list[Hypothesis]] = [[] for _ in items]
        todo = [i for i, item in enumerate(items) if len(item.src)]
        lengths = [len(items[i].src) for i in todo]
        longest = {length: items[i].id for i, length in zip(todo, lengths, strict=True)}
        for batch in make_batches(
            lengths,
            batch_size=self.batch_size,
            max_tokens=self.max_tokens,
            max_sentences=lambda width: self._batch_cap(width, longest[width]),
        ):
            chosen = [items[todo[b]] for b in batch]
            if self.score_reference:
                hyps = [[h] for h in self._score_references(chosen)]
            else:
                hyps = self._decode(chosen)
            for b, h in zip(batch, hyps, strict=True):
                results[todo[b]] = h
        return results

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.autocast_dtype)

    def _score_references(self, items: list[SourceItem]) -> list[Hypothesis]:
        """Forced decoding (fairseq's ``--score-reference``): each reference as a hypothesis.

        Score = mean log-probability of the reference's tokens (``</s>`` included), without
        length penalty, temperature or ``--unkpen`` (fairseq's SequenceScorer); an ensemble
        averages the models' probabilities.
        """
        pad, eos = self.ensemble.src_dict.pad, self.ensemble.src_dict.eos
        refs = []
        for item in items:
            if item.ref is None or not len(item.ref):
                raise UserError(f"--score-reference: sentence {item.id} has no reference")
            refs.append(item.ref[: self.limit])  # the decoder sees at most limit + 1 positions
        batch = collate([i.src for i in items], refs, pad=pad, eos=eos, ids=list(range(len(items))))
        assert batch.prev_output_tokens is not None and batch.target is not None
        src = batch.src_tokens.to(self.device)  # (B, S)
        prev = batch.prev_output_tokens.to(self.device)  # (B, T)
        target = batch.target.to(self.device)  # (B, T)
        lprobs, attention = [], []
        with torch.inference_mode(), self._autocast():
            for model in self.ensemble.models:
                logits, attn = model.decode_with_attention(prev, model.encode(src))  # (B,T,V/S)
                lp = torch.log_softmax(logits.float(), dim=-1)  # (B, T, V)
                lprobs.append(lp.gather(-1, target[:, :, None])[:, :, 0])  # (B, T)
                attention.append(attn.float())  # (B, T, S)
            stacked = torch.stack(lprobs)  # (M, B, T)
            positional = torch.logsumexp(stacked, dim=0) - math.log(len(lprobs))  # (B, T)
            mean_attention = torch.stack(attention).mean(dim=0).cpu()  # (B, T, S)
        hyps = []
        rows = zip(target.tolist(), refs, positional.tolist(), items, strict=True)
        for b, (row, tokens, scores, item) in enumerate(rows):
            n, kept = len(tokens), scores[: len(tokens)]
            hyp = Hypothesis(tokens=row[:n], score=sum(kept) / n, positional_scores=kept)
            if self.need_alignment:
                hyp.attention = mean_attention[b, :n, : len(item.src)]  # (n, src_len)
            hyps.append(hyp)
        return hyps

    def _prefix_tokens(self, items: list[SourceItem]) -> torch.Tensor | None:
        """``--prefix-size N``: the first N reference tokens, pad-filled (fairseq's
        ``target[:, :N]``); a reference shorter than N brings its ``</s>``."""
        n = self.search.prefix_size
        if not n:
            return None
        pad = self.ensemble.tgt_dict.pad
        prefix = torch.full((len(items), n), pad, dtype=torch.long)
        for row, item in enumerate(items):
            if item.ref is None:
                raise UserError(f"--prefix-size: sentence {item.id} has no reference")
            ref = torch.as_tensor(item.ref[:n], dtype=torch.long)
            prefix[row, : len(ref)] = ref
        return prefix.to(self.device)  # (B, N)

    def _decode(self, items: list[SourceItem]) -> list[list[Hypothesis]]:
        sources = [item.src for item in items]
        pad, eos = self.ensemble.src_dict.pad, self.ensemble.src_dict.eos
        batch = collate(sources, None, pad=pad, eos=eos, ids=list(range(len(sources))))
        src_tokens = batch.src_tokens.to(self.device)  # (B, S)
        src_lengths = batch.src_lengths.to(self.device)  # (B,)
        limit = self.limit
        # Size the KV cache for this batch's longest possible output, not for max_positions.
        steps = int(max_lengths(src_lengths, self.search, limit=limit).max()) + 1
        with torch.inference_mode(), self._autocast():
            scorer = EnsembleScorer(
                self.ensemble.models,
                src_tokens,
                max_len=steps,
                temperature=self.search.temperature,
                use_cache=self.use_cache,
            )
            return beam_search(
                scorer,
                src_lengths=src_lengths,
                cfg=self.search,
                specials=self.specials,
                max_len_limit=limit,
                generator=self.generator,
                prefix_tokens=self._prefix_tokens(items),
                constraints=[item.constraints for item in items]
                if self.search.constraints
                else None,
                need_alignment=self.need_alignment,
            )
