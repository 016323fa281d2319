"""Diverse beam search (--diverse-beam-groups, --diverse-beam-strength)."""

from __future__ import annotations

import pytest
import torch
from decoding_fakes import (
    SPECIALS,
    forced_score,
    gen_cfg,
    pad_batch,
    random_sources,
    trained_transformer,
)

from nmt_preln.config import GenerateConfig
from nmt_preln.errors import UserError
from nmt_preln.search.beam_search import Hypothesis, beam_search
from nmt_preln.search.diverse_beam import diverse_candidates
from nmt_preln.search.ensemble import EnsembleScorer

pytestmark = pytest.mark.usefixtures("one_thread")


def run(sources: list[torch.Tensor], cfg: GenerateConfig) -> list[list[Hypothesis]]:
    src, lengths = pad_batch(sources)
    model = trained_transformer()  # trains on first use: outside no_grad
    with torch.no_grad():
        scorer = EnsembleScorer([model], src, max_len=64)
        return beam_search(
            scorer, src_lengths=lengths, cfg=cfg, specials=SPECIALS, max_len_limit=40
        )


def test_one_group_is_plain_beam_search() -> None:
    sources = random_sources(8, seed=21)
    plain = run(sources, gen_cfg(beam=4, nbest=4))
    grouped = run(sources, gen_cfg(beam=4, nbest=4, diverse_beam_groups=1))
    for a, b in zip(plain, grouped, strict=True):
        assert [h.tokens for h in a] == [h.tokens for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-6)


def test_a_group_per_beam_without_penalty_copies_greedy() -> None:
    # G = beam, strength 0: each group is a beam of one seeing the same scores, so all of them
    # follow the greedy path (see diverse_beam.py) and the nbest list is beam copies of it.
    sources = random_sources(8, seed=22)
    greedy = run(sources, gen_cfg(beam=1))
    copies = run(sources, gen_cfg(beam=4, nbest=4, diverse_beam_groups=4, diverse_beam_strength=0))
    for ref, hyps in zip(greedy, copies, strict=True):
        assert len(hyps) == 4
        for hyp in hyps:
            assert hyp.tokens == ref[0].tokens
            assert hyp.score == pytest.approx(ref[0].score, abs=1e-6)


@pytest.mark.parametrize(("groups", "beam"), [(2, 4), (3, 6)])
def test_groups_without_penalty_are_copies_of_a_smaller_beam(groups: int, beam: int) -> None:
    # The same argument for G < beam: G identical searches of beam / G.
    sources = random_sources(8, seed=25)
    small = run(sources, gen_cfg(beam=beam // groups, nbest=beam // groups))
    cfg = gen_cfg(beam=beam, nbest=beam, diverse_beam_groups=groups, diverse_beam_strength=0)
    for ref, hyps in zip(small, run(sources, cfg), strict=True):
        assert [h.tokens for h in hyps] == [h.tokens for h in ref for _ in range(groups)]


def distinct(results: list[list[Hypothesis]]) -> float:
    """Mean number of different hypotheses in a sentence's nbest list."""
    return sum(len({tuple(h.tokens) for h in hyps}) for hyps in results) / len(results)


def test_the_penalty_makes_groups_differ() -> None:
    sources = random_sources(10, seed=23)

    def spread(groups: int, strength: float) -> float:
        cfg = gen_cfg(beam=4, nbest=4, diverse_beam_groups=groups, diverse_beam_strength=strength)
        return distinct(run(sources, cfg))

    for groups in (2, 4):
        spreads = [spread(groups, strength) for strength in (0.0, 0.2, 0.5)]
        assert spreads == sorted(spreads) and spreads[0] < spreads[-1], spreads
    assert spread(4, 3.0) == 4.0  # every group found its own translation


def test_scores_include_the_penalty_like_fairseq() -> None:
    model = trained_transformer()
    sources = random_sources(6, seed=24)
    cfg = gen_cfg(beam=4, nbest=4, diverse_beam_groups=4, diverse_beam_strength=0.7)
    penalized = 0
    for src, hyps in zip(sources, run(sources, cfg), strict=True):
        for hyp in hyps:
            true = forced_score(model, src, hyp.tokens, lenpen=1.0)
            assert hyp.score <= true + 1e-5
            assert sum(hyp.positional_scores) / len(hyp.tokens) == pytest.approx(hyp.score)
            penalized += hyp.score < true - 1e-3
    assert penalized > 0


def test_candidates_interleave_the_groups() -> None:
    torch.manual_seed(0)
    lprobs = torch.log_softmax(torch.randn(2, 4, 9), dim=-1)  # (B, beam, V)
    cum = torch.randn(2, 4)
    scores, beams, tokens = diverse_candidates(lprobs, cum, beam=4, groups=2, strength=0.0)
    assert scores.shape == beams.shape == tokens.shape == (2, 8)
    assert (beams[:, 0::2] % 2 == 0).all() and (beams[:, 1::2] % 2 == 1).all()
    expected = cum.gather(1, beams) + lprobs[torch.arange(2)[:, None], beams, tokens]
    torch.testing.assert_close(scores, expected)
    # Group 1 pays strength per earlier candidate that picked the same token.
    s1, b1, t1 = diverse_candidates(lprobs, cum, beam=4, groups=2, strength=1.0)
    counts = (t1[:, 0::2][:, None, :] == t1[:, 1::2][:, :, None]).sum(-1)  # (B, 4)
    assert counts.sum() > 0  # the case is not trivial
    raw = cum.gather(1, b1[:, 1::2]) + lprobs[torch.arange(2)[:, None], b1[:, 1::2], t1[:, 1::2]]
    torch.testing.assert_close(s1[:, 1::2], raw - counts.float())


def test_beam_must_split_into_groups() -> None:
    with pytest.raises(UserError, match="--beam 5 must be a multiple of --diverse-beam-groups 2"):
        gen_cfg(beam=5, diverse_beam_groups=2).validate()
    for bad in ({"diverse_beam_groups": 0}, {"diverse_beam_groups": 2, "sampling": True}):
        with pytest.raises(UserError, match="--diverse-beam-groups"):
            gen_cfg(beam=4, **bad).validate()
    with pytest.raises(ValueError, match="divisible"):
        diverse_candidates(torch.zeros(1, 1, 5), torch.zeros(1, 1), beam=3, groups=2, strength=0)
    gen_cfg(beam=4, diverse_beam_groups=2).validate()
