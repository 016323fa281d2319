"""Attention and hard alignments of hypotheses (--print-alignment)."""

from __future__ import annotations

import copy

import pytest
import torch
from decoding_fakes import (
    EOS,
    SPECIALS,
    gen_cfg,
    pad_batch,
    random_sources,
    tiny_transformer,
    trained_transformer,
)

from nmt_preln.config import GenerateConfig
from nmt_preln.models.transformer import Transformer
from nmt_preln.search.alignment import hard_alignment
from nmt_preln.search.beam_search import Hypothesis, beam_search
from nmt_preln.search.ensemble import EnsembleScorer

pytestmark = pytest.mark.usefixtures("one_thread")


def run(
    models: list[Transformer],
    sources: list[torch.Tensor],
    cfg: GenerateConfig,
    *,
    use_cache: bool = True,
    **search: object,
) -> list[list[Hypothesis]]:
    src, lengths = pad_batch(sources)
    with torch.no_grad():
        scorer = EnsembleScorer(models, src, max_len=64, use_cache=use_cache)
        return beam_search(
            scorer,
            src_lengths=lengths,
            cfg=cfg,
            specials=SPECIALS,
            max_len_limit=40,
            need_alignment=True,
            **search,  # type: ignore[arg-type]
        )


def full_attention(model: Transformer, src: torch.Tensor, tokens: list[int]) -> torch.Tensor:
    """(T, S) attention of a non-incremental forward of the hypothesis on its source alone."""
    prev = torch.tensor([[EOS, *tokens[:-1]]])
    with torch.no_grad():
        _, attention = model.decode_with_attention(prev, model.encode(src[None, :]))
    return attention[0]


def check(results: list[list[Hypothesis]], sources: list[torch.Tensor], models: list) -> None:
    for src, hyps in zip(sources, results, strict=True):
        assert hyps
        for hyp in hyps:
            assert hyp.attention is not None and hyp.alignment is not None
            assert hyp.attention.shape == (len(hyp.tokens), src.numel())
            expected = torch.stack([full_attention(m, src, hyp.tokens) for m in models]).mean(0)
            torch.testing.assert_close(hyp.attention, expected, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(hyp.attention.sum(1), torch.ones(len(hyp.tokens)))
            assert len(hyp.alignment) == len(hyp.tokens) - 1  # no pair for the final </s>
            assert all(0 <= s < src.numel() - 1 for s in hyp.alignment)  # never the source </s>
            assert hyp.alignment == hyp.attention[:-1, :-1].argmax(1).tolist()


@pytest.mark.parametrize("use_cache", [True, False])
def test_attention_equals_the_full_forward(use_cache: bool) -> None:
    model = trained_transformer()
    sources = random_sources(7, seed=41)  # different lengths: padded columns are cropped
    results = run([model], sources, gen_cfg(beam=3, nbest=3), use_cache=use_cache)
    check(results, sources, [model])


def test_alignment_does_not_change_the_translations() -> None:
    model = trained_transformer()
    sources = random_sources(7, seed=42)
    src, lengths = pad_batch(sources)
    with torch.no_grad():
        plain = beam_search(
            EnsembleScorer([model], src, max_len=64),
            src_lengths=lengths,
            cfg=gen_cfg(beam=3, nbest=3),
            specials=SPECIALS,
            max_len_limit=40,
        )
    aligned = run([model], sources, gen_cfg(beam=3, nbest=3))
    for a, b in zip(plain, aligned, strict=True):
        assert [h.tokens for h in a] == [h.tokens for h in b]
        assert [h.score for h in a] == [h.score for h in b]
        assert all(h.attention is None and h.alignment is None for h in a)


def test_ensembles_average_the_attention() -> None:
    model, other = trained_transformer(), tiny_transformer(seed=5)
    sources = random_sources(4, seed=43)
    check(run([model, other], sources, gen_cfg(beam=2, nbest=2)), sources, [model, other])
    twins = run([model, copy.deepcopy(model)], sources, gen_cfg(beam=2, nbest=2))
    single = run([model], sources, gen_cfg(beam=2, nbest=2))
    for a, b in zip(twins, single, strict=True):
        for x, y in zip(a, b, strict=True):
            assert x.alignment == y.alignment


def test_alignment_with_the_other_search_options() -> None:
    model = trained_transformer()
    sources = random_sources(5, seed=44)
    prefix = torch.randint(4, 24, (5, 2), generator=torch.Generator().manual_seed(1))
    check(run([model], sources, gen_cfg(beam=3, nbest=2), prefix_tokens=prefix), sources, [model])
    cfg = gen_cfg(beam=4, nbest=4, diverse_beam_groups=2)
    check(run([model], sources, cfg), sources, [model])
    cfg = gen_cfg(beam=3, nbest=3, max_len_b=16, constraints="ordered")
    constraints = [[[5, 6]], [], [[7], [8]], [[9]], [[10, 11]]]
    check(run([model], sources, cfg, constraints=constraints), sources, [model])


def test_hard_alignment_edge_cases() -> None:
    attention = torch.tensor([[0.1, 0.2, 0.7], [0.5, 0.4, 0.1], [0.0, 0.1, 0.9]])
    assert hard_alignment(attention, src_len=3) == [1, 0]  # the source </s> (col 2) is skipped
    assert hard_alignment(attention[:, :1], src_len=1) == []  # only </s>: nothing to align
    assert hard_alignment(attention[:1], src_len=3) == []  # the hypothesis is just </s>
