"""Validation during training: loss and NLL per token (base 2), perplexity, optional BLEU.

Every rank scores its share of the validation batches; the sums are then added over ranks, so
all ranks agree on the numbers (and on early stopping). BLEU decodes with nmt-generate's
``Translator`` and the search settings ``validate_bleu_beam``, ``validate_bleu_lenpen``,
``validate_bleu_max_len_a/_b`` (fairseq's ``--eval-bleu-args``; imported only when
``validate_bleu`` is set) and scores detokenized text with sacreBLEU's defaults.
"""

from __future__ import annotations

import contextlib
from typing import Any, cast

import torch
from torch import nn

from nmt_preln.config import GenerateConfig, Precision, SearchConfig, TrainConfig
from nmt_preln.data.collate import PairDataset
from nmt_preln.data.dataset import LanguagePairDataset
from nmt_preln.train import distributed
from nmt_preln.train.batch_plan import BatchPlan, batch_by_size
from nmt_preln.train.batching import iterate_batches
from nmt_preln.train.distributed import DistributedContext
from nmt_preln.train.loss import base2_per_token, label_smoothed_cross_entropy, perplexity


def autocast(precision: Precision, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16/fp16 autocast on ``device``'s type; nothing for fp32."""
    dtype = {Precision.bf16: torch.bfloat16, Precision.fp16: torch.float16}.get(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


class Validator:
    """Scores the validation split with the training loss (and optionally BLEU).

    Args:
        cfg: the training config (label smoothing, max_tokens, precision, validate_bleu).
        data: the validation split, with targets.
        ctx: the distributed context; each rank takes every ``W``-th batch.
        device: where the model lives.
        spm_models: ``{lang: model bytes}`` for detokenizing BLEU input; empty when the data
            is pre-segmented (then fairseq's ``@@ `` continuation marks are removed).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        data: LanguagePairDataset,
        *,
        ctx: DistributedContext,
        device: torch.device,
        spm_models: dict[str, bytes],
    ) -> None:
        self.cfg = cfg
        self.data = data
        self.ctx = ctx
        self.device = device
        self.spm_models = spm_models
        # LanguagePairDataset has what PairDataset asks for; mypy sees its mutable protocol
        # attributes as invariant, hence the cast.
        self.pairs = cast(PairDataset, data)
        batches = batch_by_size(
            data.src_sizes,
            data.tgt_sizes,
            max_tokens=cfg.data.max_tokens,
            max_sentences=cfg.data.batch_size,
            seed=cfg.seed,
            epoch=1,
        )
        # Pairs past the model's positions cannot be scored; training skips them too.
        limit = cfg.arch.max_positions
        assert data.tgt_sizes is not None
        fits = (data.src_sizes <= min(cfg.data.max_source_positions, limit)) & (
            data.tgt_sizes <= min(cfg.data.max_target_positions, limit)
        )
        # No gradients to synchronize, so ranks may get unequal shares (nothing is dropped).
        self.batches: BatchPlan = batches.select(fits)[ctx.rank :: ctx.world_size]
        # The first validate_bleu_print_samples translations of the last run (same on all ranks).
        self.samples: list[dict[str, Any]] = []

    def run(self, model: nn.Module) -> dict[str, float]:
        """Validate ``model`` (a collective: every rank must call it).

        Returns:
            ``loss`` and ``nll`` in bits per target token, ``ppl = 2 ** nll``, and ``bleu``
            when ``validate_bleu`` is set.
        """
        was_training = model.training
        model.eval()
        try:
            sums = self._loss_sums(model)
            loss, nll, ntokens = distributed.all_reduce_sum(sums, self.ctx).tolist()
            nll_bits = base2_per_token(nll, int(ntokens))
            stats = {
                "loss": base2_per_token(loss, int(ntokens)),
                "nll": nll_bits,
                "ppl": perplexity(nll_bits),
            }
            if self.cfg.validate_bleu:
                stats["bleu"] = self._bleu(model)
        finally:
            model.train(was_training)
        return stats

    def _loss_sums(self, model: nn.Module) -> torch.Tensor:
        """(3,) float64: summed loss, summed NLL (nats) and target tokens of this rank."""
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        pad = self.data.tgt_dict.pad
        pin = self.device.type == "cuda"
        with torch.no_grad(), autocast(self.cfg.hardware.precision, self.device):
            for batch in iterate_batches(self.pairs, self.batches, pin_memory=pin):
                batch = batch.to(self.device, non_blocking=True)
                assert batch.prev_output_tokens is not None and batch.target is not None
                logits = model(batch.src_tokens, batch.prev_output_tokens)  # (B, T, V)
                loss, nll = label_smoothed_cross_entropy(
                    logits, batch.target, epsilon=self.cfg.label_smoothing, pad=pad
                )
                sums[0] += loss.double()
                sums[1] += nll.double()
                sums[2] += batch.ntokens
        return sums

    def _bleu(self, model: nn.Module) -> float:
        """Corpus BLEU of the whole validation split (sacreBLEU); keeps the first samples."""
        from sacrebleu.metrics import BLEU

        gathered = distributed.all_gather_objects(self._translate(model), self.ctx)
        rows = sorted((row for part in gathered for row in part), key=lambda row: row[0])
        self.samples = [
            {"id": i, "source": src, "hypothesis": hyp, "reference": ref}
            for i, src, hyp, ref in rows[: self.cfg.validate_bleu_print_samples]
        ]
        hyps, refs = [row[2] for row in rows], [row[3] for row in rows]
        return float(BLEU().corpus_score(hyps, [refs]).score) if hyps else 0.0

    def _translate(self, model: nn.Module) -> list[tuple[int, str, str, str]]:
        """(id, source, hypothesis, reference), detokenized, for this rank's sentences.

        Decodes with nmt-generate's :class:`~nmt_preln.search.translator.Translator`
        (the search of ``validate_bleu_beam``, ``_lenpen``, ``_max_len_a``, ``_max_len_b``).
        """
        from nmt_preln.search.source_items import SourceItem
        from nmt_preln.search.translator import Ensemble, Translator

        cfg, data = self.cfg, self.data
        assert data.tgt is not None
        search = SearchConfig(
            beam=cfg.validate_bleu_beam,
            lenpen=cfg.validate_bleu_lenpen,
            max_len_a=cfg.validate_bleu_max_len_a,
            max_len_b=cfg.validate_bleu_max_len_b,
        )
        ensemble = Ensemble(
            models=[cast(Any, model)],
            src_dict=data.src_dict,
            tgt_dict=data.tgt_dict,
            state={},
            max_positions=cfg.arch.max_positions,
        )
        ids = [int(i) for batch in self.batches for i in batch]
        items = [SourceItem(id=i, src=data.src[i]) for i in ids]
        # No autocast of our own: the translator applies nmt-generate's precision policy
        # (autocast on CUDA only), so validation BLEU is what nmt-generate would score.
        translator = Translator(
            ensemble,
            search=search,
            device=self.device,
            batch_size=cfg.data.batch_size or GenerateConfig.batch_size,
            max_tokens=cfg.data.max_tokens,
            precision=cfg.hardware.precision,
        )
        hyps = translator.translate(items)
        src_text, tgt_text = self._segmenter(data.source_lang), self._segmenter(data.target_lang)
        return [
            (
                i,
                src_text.decode(data.src_dict.string(data.src[i].tolist())),
                tgt_text.decode(data.tgt_dict.string(h[0].tokens)) if h else "",
                tgt_text.decode(data.tgt_dict.string(data.tgt[i].tolist())),
            )
            for i, h in zip(ids, hyps, strict=True)
        ]

    def _segmenter(self, lang: str) -> Any:
        """Pieces -> text for ``lang``: its SentencePiece model, else remove ``@@ `` marks."""
        from nmt_preln.data.segmenter import Segmenter
        from nmt_preln.data.tokenizer import SentencePieceTokenizer

        spm = self.spm_models.get(lang)
        tokenizer = SentencePieceTokenizer.from_bytes(spm, name=lang) if spm else None
        return Segmenter(tokenizer, remove_bpe=None if spm else "@@ ")
