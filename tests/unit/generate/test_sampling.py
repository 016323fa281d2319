"""Sampling: seeded, restricted to the top-k / nucleus, scored with the model's log-probs."""

from __future__ import annotations

import pytest
import torch
from decoding_fakes import (
    EOS,
    SPECIALS,
    TableModel,
    gen_cfg,
    pad_batch,
    random_sources,
    trained_transformer,
)

from nmt_preln.config import GenerateConfig
from nmt_preln.search.beam_search import Hypothesis, beam_search, greedy_search
from nmt_preln.search.ensemble import DecodingModel, EnsembleScorer
from nmt_preln.search.sampling import truncate_distribution

pytestmark = pytest.mark.usefixtures("one_thread")


def sample(
    model: DecodingModel, sources: list[torch.Tensor], cfg: GenerateConfig, seed: int
) -> list[list[Hypothesis]]:
    src, lengths = pad_batch(sources)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        scorer = EnsembleScorer([model], src, max_len=64, temperature=cfg.temperature)
        return beam_search(
            scorer, src_lengths=lengths, cfg=cfg, specials=SPECIALS, max_len_limit=30, generator=gen
        )


def tokens(results: list[list[Hypothesis]]) -> list[list[list[int]]]:
    return [[h.tokens for h in hyps] for hyps in results]


def test_truncate_distribution() -> None:
    probs = torch.tensor([[0.125, 0.5, 0.25, 0.375]]) / 1.25  # exact in binary
    kept = probs.clone()
    kept[0, [0, 2]] = 0.0
    assert torch.equal(truncate_distribution(probs, topk=2, topp=-1), kept)
    assert torch.equal(truncate_distribution(probs, topk=-1, topp=0.65), kept)
    assert torch.equal(truncate_distribution(probs, topk=3, topp=0.65), kept)
    kept[0, 3] = 0.0
    assert torch.equal(truncate_distribution(probs, topk=-1, topp=0.4), kept)
    assert torch.equal(truncate_distribution(probs, topk=-1, topp=1.0), probs)


def test_sampling_is_seeded_and_varies_with_the_seed() -> None:
    model = trained_transformer()
    sources = random_sources(6, seed=7)
    cfg = gen_cfg(beam=4, nbest=4, sampling=True, max_len_b=8)
    first, again, other = (sample(model, sources, cfg, seed) for seed in (1, 1, 2))
    assert tokens(first) == tokens(again)
    assert tokens(first) != tokens(other)
    assert all(len(hyps) == 4 for hyps in first)


def test_top1_sampling_is_greedy() -> None:
    model = trained_transformer()
    sources = random_sources(6, seed=8)
    cfg = gen_cfg(beam=1, sampling=True, sampling_topk=1, max_len_b=8)
    src, lengths = pad_batch(sources)
    with torch.no_grad():
        greedy = greedy_search(
            EnsembleScorer([model], src, max_len=64),
            src_lengths=lengths,
            cfg=cfg,
            specials=SPECIALS,
            max_len_limit=30,
        )
    for hyps, ref in zip(sample(model, sources, cfg, seed=3), greedy, strict=True):
        assert hyps[0].tokens == ref.tokens
        assert hyps[0].score == pytest.approx(ref.score, abs=1e-5)


@pytest.mark.parametrize(("topk", "topp"), [(2, -1.0), (-1, 0.5)])
def test_samples_stay_in_the_allowed_set(topk: int, topp: float) -> None:
    # Tokens 4 and 5 hold 0.6 of the mass, 6..9 share the rest: both settings allow only 4 and 5.
    probs = torch.tensor([1e-9, 1e-9, 0.05, 1e-9, 0.35, 0.25, 0.1, 0.1, 0.1, 0.05])
    table = (probs / probs.sum()).log().expand(6, 10, 10).clone()
    cfg = gen_cfg(
        beam=8, nbest=8, sampling=True, sampling_topk=topk, sampling_topp=topp, max_len_b=4
    )
    seen: set[int] = set()
    for hyps in sample(TableModel(table), [torch.tensor([4, EOS])] * 5, cfg, seed=0):
        assert len(hyps) == 8
        for h in hyps:
            seen.update(h.tokens[:-1])
            lp = table[0, 0, h.tokens].tolist()  # the model's own log-probs, not renormalized
            assert h.positional_scores == pytest.approx(lp, abs=1e-5)
    assert seen == {4, 5}


def test_low_temperature_is_greedy_and_high_temperature_varies() -> None:
    model = trained_transformer()
    sources = random_sources(6, seed=9)
    cold = gen_cfg(beam=1, sampling=True, temperature=1e-3, max_len_b=8)
    hot = gen_cfg(beam=1, sampling=True, temperature=3.0, max_len_b=8)
    assert tokens(sample(model, sources, cold, 1)) == tokens(sample(model, sources, cold, 2))
    assert tokens(sample(model, sources, hot, 1)) != tokens(sample(model, sources, hot, 2))
