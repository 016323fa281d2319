"""Checkpoints in, hypotheses out: load an ensemble, check it against the data, decode batches.

:func:`load_ensemble` reads one or more checkpoints (``--path a.pt:b.pt``) and checks that they
share their dictionaries; :func:`check_dictionaries` compares those with the data directory's.
:class:`Translator` decodes :class:`~nmt_preln.generate.inputs.SourceItem` lists batch by batch
(sorted by length, under ``inference_mode`` and, on CUDA, autocast) and returns the hypotheses
in input order. The command itself (reading, writing, scoring) is :mod:`nmt_preln.generate.run`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from nmt_preln.config import Device, GenerateConfig, Precision
from nmt_preln.data.dictionary import Dictionary, symbol_difference
from nmt_preln.errors import UserError
from nmt_preln.generate.beam_search import Hypothesis, Specials, beam_search, max_lengths
from nmt_preln.generate.ensemble import EnsembleScorer
from nmt_preln.generate.inputs import SourceItem, make_batches
from nmt_preln.models.transformer import Transformer
from nmt_preln.train.batching import collate
from nmt_preln.train.checkpoint import load_model_from_checkpoint


@dataclass
class Ensemble:
    """The models of ``--path`` and what their (first) checkpoint says about the data."""

    models: list[Transformer]
    src_dict: Dictionary
    tgt_dict: Dictionary
    state: dict[str, Any]  # the first checkpoint, model weights dropped
    max_positions: int  # the smallest of the models'


def resolve_device(device: Device) -> torch.device:
    """``auto`` is CUDA when available; asking for CUDA without it is a user error."""
    if device == Device.cuda and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available")
    if device == Device.cpu or (device == Device.auto and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda")


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
    """Decode lists of source sentences with the search settings of ``cfg``.

    Args:
        ensemble: the loaded models (all on ``device``).
        cfg: beam/sampling/length settings, batch_size/max_tokens, precision, seed.
        device: where the models live.
        use_cache: incremental decoding with the KV cache (False recomputes the decoder
            on the whole prefix each step: only for benchmarks and checks).
    """

    def __init__(
        self,
        ensemble: Ensemble,
        *,
        cfg: GenerateConfig,
        device: torch.device,
        use_cache: bool = True,
    ) -> None:
        self.ensemble = ensemble
        self.cfg = cfg
        self.device = device
        self.use_cache = use_cache
        self.specials = Specials.of(ensemble.tgt_dict)
        self.generator = torch.Generator(device=device).manual_seed(cfg.seed)
        # Autocast only on CUDA: on CPU, bf16 matmuls are slower and fp16 barely supported.
        half = {Precision.bf16: torch.bfloat16, Precision.fp16: torch.float16}.get(cfg.precision)
        self.autocast_dtype = half if device.type == "cuda" else None

    def translate(self, items: Sequence[SourceItem]) -> list[list[Hypothesis]]:
        """Hypotheses of every item, in the order of ``items`` (empty items get none)."""
        results: list[list[Hypothesis]] = [[] for _ in items]
        todo = [i for i, item in enumerate(items) if len(item.src)]
        lengths = [len(items[i].src) for i in todo]
        for batch in make_batches(
            lengths, batch_size=self.cfg.batch_size, max_tokens=self.cfg.max_tokens
        ):
            chosen = [todo[b] for b in batch]
            hyps = self._decode([items[i].src for i in chosen])
            for i, h in zip(chosen, hyps, strict=True):
                results[i] = h
        return results

    def _decode(self, sources: list[Any]) -> list[list[Hypothesis]]:
        pad, eos = self.ensemble.src_dict.pad, self.ensemble.src_dict.eos
        batch = collate(sources, None, pad=pad, eos=eos, ids=list(range(len(sources))))
        src_tokens = batch.src_tokens.to(self.device)  # (B, S)
        src_lengths = batch.src_lengths.to(self.device)  # (B,)
        limit = self.ensemble.max_positions - 1  # the decoder's input also holds the first </s>
        # Size the KV cache for this batch's longest possible output, not for max_positions.
        steps = int(max_lengths(src_lengths, self.cfg, limit=limit).max()) + 1
        autocast = (
            torch.autocast(device_type="cuda", dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            scorer = EnsembleScorer(
                self.ensemble.models,
                src_tokens,
                max_len=steps,
                temperature=self.cfg.temperature,
                use_cache=self.use_cache,
            )
            return beam_search(
                scorer,
                src_lengths=src_lengths,
                cfg=self.cfg,
                specials=self.specials,
                max_len_limit=limit,
                generator=self.generator,
            )
