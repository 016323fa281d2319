"""Properties of the batched beam search, on hand-built tables and a tiny random Transformer."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from decoding_fakes import (
    EOS,
    PAD,
    SPECIALS,
    UNK,
    TableModel,
    forced_score,
    gen_cfg,
    pad_batch,
    random_sources,
    trained_transformer,
    uniform_table,
)

from nmt_preln.config import GenerateConfig
from nmt_preln.search.beam_search import Hypothesis, beam_search, greedy_search
from nmt_preln.search.ensemble import DecodingModel, EnsembleScorer

pytestmark = pytest.mark.usefixtures("one_thread")
A, B = 4, 5  # the two real words of the table models


def run_beam(
    models: list[DecodingModel], sources: list[torch.Tensor], cfg: GenerateConfig, **kw: bool
) -> list[list[Hypothesis]]:
    src, lengths = pad_batch(sources)
    with torch.no_grad():
        scorer = EnsembleScorer(models, src, max_len=64, **kw)
        return beam_search(
            scorer, src_lengths=lengths, cfg=cfg, specials=SPECIALS, max_len_limit=40
        )


def run_greedy(
    model: DecodingModel, sources: list[torch.Tensor], cfg: GenerateConfig
) -> list[Hypothesis]:
    src, lengths = pad_batch(sources)
    with torch.no_grad():
        scorer = EnsembleScorer([model], src, max_len=64)
        return greedy_search(
            scorer, src_lengths=lengths, cfg=cfg, specials=SPECIALS, max_len_limit=40
        )


def table_from_probs(
    rows: dict[tuple[int, int], dict[int, float]], *, steps: int = 6
) -> torch.Tensor:
    """Log-prob table: ``rows[(step, last)] = {token: prob}``; unspecified (step, last) -> </s>."""
    vocab = 6
    probs = torch.full((steps, vocab, vocab), 1e-6)
    probs[:, :, EOS] = 1.0
    for (step, last), dist in rows.items():
        probs[step, last] = 1e-6
        for token, p in dist.items():
            probs[step, last, token] = p
    return (probs / probs.sum(-1, keepdim=True)).log()


# A path greedy misses: A is the better first word, but B </s> beats every continuation of A.
TRAP = {
    (0, EOS): {A: 0.6, B: 0.4},
    (1, A): {A: 0.34, B: 0.33, EOS: 0.33},
    (1, B): {EOS: 0.99, A: 0.01},
}


def test_beam_finds_the_path_that_greedy_misses() -> None:
    model = TableModel(table_from_probs(TRAP))
    cfg = gen_cfg(beam=2, nbest=2, lenpen=1.0)
    greedy = run_greedy(model, [torch.tensor([A, EOS])], cfg)[0]
    best = run_beam([model], [torch.tensor([A, EOS])], cfg)[0]
    assert greedy.tokens == [A, A, EOS]
    assert best[0].tokens == [B, EOS]
    assert best[0].score == pytest.approx(math.log(0.4 * 0.99) / 2, abs=1e-4)
    assert best[0].score > greedy.score


def test_beam_one_equals_greedy_on_a_transformer() -> None:
    model = trained_transformer()
    sources = random_sources(9)
    for lenpen in (0.6, 1.0):
        cfg = gen_cfg(beam=1, lenpen=lenpen, max_len_b=12)
        beam = run_beam([model], sources, cfg)
        greedy = run_greedy(model, sources, cfg)
        lengths = {len(g.tokens) for g in greedy}
        assert len(lengths) > 1, "degenerate model: every greedy output has the same length"
        for hyps, ref in zip(beam, greedy, strict=True):
            assert hyps[0].tokens == ref.tokens
            assert hyps[0].score == pytest.approx(ref.score, abs=1e-5)


@pytest.mark.parametrize("lenpen", [0.0, 1.0, 2.0])
def test_scores_equal_teacher_forced_scores(lenpen: float) -> None:
    model = trained_transformer()
    sources = random_sources(6, seed=1)
    cfg = gen_cfg(beam=4, nbest=4, lenpen=lenpen, max_len_b=10)
    results = run_beam([model], sources, cfg)
    for src, hyps in zip(sources, results, strict=True):
        assert len(hyps) == 4
        for hyp in hyps:
            assert hyp.tokens[-1] == EOS and EOS not in hyp.tokens[:-1]
            assert len(hyp.positional_scores) == len(hyp.tokens)
            assert hyp.score == pytest.approx(
                forced_score(model, src, hyp.tokens, lenpen=lenpen), abs=1e-4
            )
            assert sum(hyp.positional_scores) / len(hyp.tokens) ** lenpen == pytest.approx(
                hyp.score, abs=1e-5
            )


def test_results_do_not_depend_on_batching_or_order() -> None:
    model = trained_transformer()
    sources = random_sources(10, seed=2)
    cfg = gen_cfg(beam=3, nbest=3, max_len_a=1.0, max_len_b=3)
    together = run_beam([model], sources, cfg)
    alone = [run_beam([model], [s], cfg)[0] for s in sources]
    reverse = run_beam([model], sources[::-1], cfg)[::-1]
    for a, b, c in zip(together, alone, reverse, strict=True):
        assert [h.tokens for h in a] == [h.tokens for h in b] == [h.tokens for h in c]
        for x, y, z in zip(a, b, c, strict=True):
            assert x.score == pytest.approx(y.score, abs=1e-5)
            assert x.score == pytest.approx(z.score, abs=1e-5)


def test_cached_and_uncached_decoding_agree() -> None:
    model = trained_transformer()
    sources = random_sources(5, seed=3)
    cfg = gen_cfg(beam=3, nbest=2)
    cached = run_beam([model], sources, cfg)
    full = run_beam([model], sources, cfg, use_cache=False)
    for a, b in zip(cached, full, strict=True):
        assert [h.tokens for h in a] == [h.tokens for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-4)


def test_nbest_is_sorted_and_limited() -> None:
    model = trained_transformer()
    for hyps in run_beam([model], random_sources(4, seed=4), gen_cfg(beam=5, nbest=3)):
        assert len(hyps) == 3
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == 3


def test_min_len_blocks_early_eos() -> None:
    model = TableModel(table_from_probs({}))  # </s> is almost certain at every step
    for min_len in (1, 3):
        hyps = run_beam(
            [model], [torch.tensor([A, EOS])], gen_cfg(beam=2, nbest=2, min_len=min_len)
        )[0]
        assert all(len(h.tokens) - 1 >= min_len for h in hyps)
        assert len(hyps[0].tokens) - 1 == min_len


def test_max_len_forces_eos_per_sentence() -> None:
    table = uniform_table(40, 6)
    table[:, :, A] = -0.01  # never wants to stop
    model = TableModel(table)
    sources = [torch.tensor([A] * n + [EOS]) for n in (1, 4, 2)]
    hyps = run_beam([model], sources, gen_cfg(beam=2, max_len_a=1.0, max_len_b=2))
    for src, h in zip(sources, hyps, strict=True):
        assert h[0].tokens == [A] * (src.numel() + 2) + [EOS]
    limited = run_beam([model], sources, gen_cfg(beam=2, max_len_b=200))  # capped by max_len_limit
    assert all(len(h[0].tokens) == 41 for h in limited)


def test_no_repeat_ngram_blocks_repeats() -> None:
    table = uniform_table(12, 6)
    table[:, :, A] = -0.1  # A A A ... would be best
    table[:, :, B] = -1.0
    table[:, :, EOS] = -3.0
    model = TableModel(table)
    plain = run_beam([model], [torch.tensor([A, EOS])], gen_cfg(beam=2, max_len_b=6))[0][0]
    assert plain.tokens[:3] == [A, A, A]
    for n in (1, 2, 3):
        hyp = run_beam(
            [model], [torch.tensor([A, EOS])], gen_cfg(beam=2, max_len_b=6, no_repeat_ngram_size=n)
        )[0][0]
        words = hyp.tokens[:-1]
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        assert len(grams) == len(set(grams)), hyp.tokens
        assert len(words) >= n  # blocking did not just stop the sentence at once


def test_unkpen_and_pad() -> None:
    table = uniform_table(6, 6)
    table[:, :, PAD] = 0.0  # pad is the most likely token but may never be produced
    table[:, :, UNK] = -0.5
    table[:, :, A] = -1.0
    table[:, :, EOS] = -1.5
    model = TableModel(table)
    src = [torch.tensor([A, EOS])]
    hyp = run_beam([model], src, gen_cfg(beam=2, max_len_b=3))[0][0]
    assert PAD not in hyp.tokens and hyp.tokens[0] == UNK
    penalised = run_beam([model], src, gen_cfg(beam=2, max_len_b=3, unkpen=0.2))[0][0]
    unk_lp = torch.log_softmax(table[0, EOS], dim=-1)[UNK].item()
    assert penalised.tokens[0] == UNK
    assert penalised.positional_scores[0] == pytest.approx(unk_lp - 0.2, abs=1e-5)
    avoided = run_beam([model], src, gen_cfg(beam=2, max_len_b=3, unkpen=5.0))[0][0]
    assert UNK not in avoided.tokens


def test_ensemble_of_one_and_of_twins_equals_the_model() -> None:
    model = trained_transformer()
    twin = copy.deepcopy(model)
    sources = random_sources(4, seed=5)
    cfg = gen_cfg(beam=3, nbest=3)
    single = run_beam([model], sources, cfg)
    for ensemble in ([model, twin], [model, model]):
        for a, b in zip(single, run_beam(ensemble, sources, cfg), strict=True):
            assert [h.tokens for h in a] == [h.tokens for h in b]
            assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)


def test_ensemble_averages_probabilities() -> None:
    first = TableModel(torch.log_softmax(torch.randn(4, 6, 6), dim=-1))
    second = TableModel(torch.log_softmax(torch.randn(4, 6, 6), dim=-1))
    src = torch.tensor([[A, EOS]])
    scorer = EnsembleScorer([first, second], src, max_len=4)
    got = scorer.step(torch.tensor([EOS]))
    expected = ((first.table[0, EOS].exp() + second.table[0, EOS].exp()) / 2).log()
    torch.testing.assert_close(got[0], expected)


def test_beam_wider_than_half_the_vocabulary() -> None:
    # Step 0 has one row per sentence and only 6 symbols: fewer than beam rows survive it.
    torch.manual_seed(3)
    model = TableModel(torch.log_softmax(torch.randn(6, 6, 6), dim=-1))
    cfg = gen_cfg(beam=8, nbest=8, max_len_b=4)
    hyps = run_beam([model], [torch.tensor([A, EOS]), torch.tensor([A, A, EOS])], cfg)
    for sentence in hyps:
        assert 1 <= len(sentence) <= 8
        assert [h.score for h in sentence] == sorted((h.score for h in sentence), reverse=True)
        for h in sentence:
            assert h.tokens[-1] == EOS and PAD not in h.tokens
            assert h.score == pytest.approx(sum(h.positional_scores) / len(h.tokens), abs=1e-5)
