"""--prefix-size: the search forces the first tokens of a given target prefix."""

from __future__ import annotations

import pytest
import torch
from decoding_fakes import (
    EOS,
    PAD,
    SPECIALS,
    forced_score,
    gen_cfg,
    pad_batch,
    random_sources,
    trained_transformer,
)

from nmt_preln.config import GenerateConfig
from nmt_preln.search.beam_search import Hypothesis, beam_search
from nmt_preln.search.ensemble import EnsembleScorer

pytestmark = pytest.mark.usefixtures("one_thread")


def run(
    sources: list[torch.Tensor], cfg: GenerateConfig, prefix: torch.Tensor | None
) -> list[list[Hypothesis]]:
    src, lengths = pad_batch(sources)
    model = trained_transformer()
    with torch.no_grad():
        scorer = EnsembleScorer([model], src, max_len=64)
        return beam_search(
            scorer,
            src_lengths=lengths,
            cfg=cfg,
            specials=SPECIALS,
            max_len_limit=40,
            generator=torch.Generator().manual_seed(0),
            prefix_tokens=prefix,
        )


def random_prefixes(n: int, size: int, *, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(4, 24, (n, size), generator=gen)


@pytest.mark.parametrize("size", [1, 2, 4])
def test_every_hypothesis_starts_with_the_prefix(size: int) -> None:
    sources = random_sources(8, seed=31)
    prefix = random_prefixes(8, size, seed=size)
    model = trained_transformer()
    for cfg in (gen_cfg(beam=4, nbest=4), gen_cfg(beam=1), gen_cfg(beam=3, nbest=3, lenpen=0.6)):
        results = run(sources, cfg, prefix)
        for src, row, hyps in zip(sources, prefix.tolist(), results, strict=True):
            assert len(hyps) == cfg.nbest
            assert len({tuple(h.tokens) for h in hyps}) == len(hyps)
            for hyp in hyps:
                assert hyp.tokens[:size] == row and hyp.tokens[-1] == EOS
                # Forced tokens keep the model's log-probs: the score is the true one.
                expected = forced_score(model, src, hyp.tokens, lenpen=cfg.lenpen)
                assert hyp.score == pytest.approx(expected, abs=1e-4)


def test_an_empty_prefix_changes_nothing() -> None:
    sources = random_sources(8, seed=32)
    cfg = gen_cfg(beam=4, nbest=4)
    plain = run(sources, cfg, None)
    empty = run(sources, cfg, torch.zeros(8, 0, dtype=torch.long))
    for a, b in zip(plain, empty, strict=True):
        assert [h.tokens for h in a] == [h.tokens for h in b]
        assert [h.score for h in a] == [h.score for h in b]


def test_prefixes_shorter_than_prefix_size_as_fairseq_slices_them() -> None:
    # fairseq forces target[:, :N]; a reference shorter than N brings its </s> and padding:
    # the hypothesis is then the reference itself. Padding alone leaves the step free.
    sources = random_sources(3, seed=33)
    prefix = torch.tensor([[5, 6, 7], [8, EOS, PAD], [9, PAD, PAD]])
    results = run(sources, gen_cfg(beam=3, nbest=3), prefix)
    assert [h.tokens for h in results[1]] == [[8, EOS]]  # one hypothesis, not three copies
    assert all(h.tokens[:3] == [5, 6, 7] for h in results[0])
    assert all(h.tokens[0] == 9 for h in results[2])
    assert len({tuple(h.tokens) for h in results[2]}) == 3
    for i, src in enumerate(sources):  # each sentence as if decoded alone
        alone = run([src], gen_cfg(beam=3, nbest=3), prefix[i : i + 1])[0]
        assert [h.tokens for h in alone] == [h.tokens for h in results[i]]


def test_the_prefix_beats_min_len_and_ngram_blocking_and_yields_to_max_len() -> None:
    sources = random_sources(2, seed=34)
    forced_end = run(sources, gen_cfg(beam=2, min_len=3), torch.tensor([[6, EOS]] * 2))
    assert all(h[0].tokens == [6, EOS] for h in forced_end)  # the prefix is given, not chosen
    repeats = run(sources, gen_cfg(beam=2, no_repeat_ngram_size=1), torch.tensor([[6, 6]] * 2))
    assert all(h[0].tokens[:2] == [6, 6] and 6 not in h[0].tokens[2:] for h in repeats)
    capped = run(sources, gen_cfg(beam=2, max_len_b=2), random_prefixes(2, 5, seed=1))
    assert all(len(h[0].tokens) == 3 and h[0].tokens[-1] == EOS for h in capped)


def test_sampling_keeps_the_prefix() -> None:
    sources = random_sources(4, seed=35)
    prefix = random_prefixes(4, 2, seed=9)
    results = run(sources, gen_cfg(beam=3, nbest=3, sampling=True), prefix)
    for row, hyps in zip(prefix.tolist(), results, strict=True):
        assert hyps and all(h.tokens[:2] == row for h in hyps)


def test_bad_prefix_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="prefix_tokens"):
        run(random_sources(2), gen_cfg(beam=2), torch.zeros(3, 1, dtype=torch.long))
