"""Lexically constrained decoding (--constraints ordered/unordered): tracker and search."""

from __future__ import annotations

import copy
import random

import pytest
import torch
from decoding_fakes import (
    EOS,
    SPECIALS,
    TableModel,
    forced_score,
    gen_cfg,
    pad_batch,
    random_sources,
    trained_transformer,
    uniform_table,
)

from nmt_preln.config import GenerateConfig
from nmt_preln.errors import UserError
from nmt_preln.search.beam_search import Hypothesis, beam_search
from nmt_preln.search.constraints import ConstraintTable
from nmt_preln.search.ensemble import DecodingModel, EnsembleScorer

pytestmark = pytest.mark.usefixtures("one_thread")
MODES = pytest.mark.parametrize("mode", ["ordered", "unordered"])


def run(
    models: list[DecodingModel],
    sources: list[torch.Tensor],
    cfg: GenerateConfig,
    constraints: list[list[list[int]]] | None = None,
) -> list[list[Hypothesis]]:
    src, lengths = pad_batch(sources)
    with torch.no_grad():
        scorer = EnsembleScorer(models, src, max_len=64)
        return beam_search(
            scorer,
            src_lengths=lengths,
            cfg=cfg,
            specials=SPECIALS,
            max_len_limit=40,
            constraints=constraints,
        )


def occurs(seq: list[int], phrase: list[int], start: int) -> int | None:
    """End of the leftmost occurrence of ``phrase`` in ``seq[start:]``, or None."""
    for i in range(start, len(seq) - len(phrase) + 1):
        if seq[i : i + len(phrase)] == phrase:
            return i + len(phrase)
    return None


def satisfies(seq: list[int], phrases: list[list[int]], *, mode: str) -> bool:
    """The definition in constraints.py, by brute force (leftmost matches are optimal)."""
    if mode == "ordered":
        start = 0
        for phrase in phrases:
            end = occurs(seq, phrase, start)
            if end is None:
                return False
            start = end
        return True
    for phrase in phrases:
        needed, start, found = phrases.count(phrase), 0, 0
        while found < needed and (end := occurs(seq, phrase, start)) is not None:
            found, start = found + 1, end
        if found < needed:
            return False
    return True


def track(seq: list[int], phrases: list[list[int]], *, mode: str) -> list[bool]:
    """``finished`` of the tensor tracker after each prefix of ``seq`` (one row)."""
    table = ConstraintTable.build([phrases], ordered=mode == "ordered", device=torch.device("cpu"))
    state, sent, result = table.initial_state(1), torch.zeros(1, dtype=torch.long), []
    for token in seq:
        state = table.advance(state, torch.tensor([token]), sent=sent)
        result.append(bool(table.finished(state, sent)))
    return result


@MODES
def test_tracker_agrees_with_the_definition_on_random_sequences(mode: str) -> None:
    rng = random.Random(0)
    for _ in range(400):
        phrases = [[rng.choice([4, 5, 6]) for _ in range(rng.randint(1, 3))] for _ in range(3)]
        phrases = phrases[: rng.randint(1, 3)]
        seq = [rng.choice([4, 5, 6]) for _ in range(rng.randint(0, 12))]
        expected = [satisfies(seq[: i + 1], phrases, mode=mode) for i in range(len(seq))]
        assert track(seq, phrases, mode=mode) == expected, (seq, phrases)


def test_tracker_cases() -> None:
    # A false start must not hide the real match (KMP): a a a b contains a a b.
    assert track([4, 4, 4, 5], [[4, 4, 5]], mode="ordered")[-1]
    assert not track([5, 4], [[4], [5]], mode="ordered")[-1]  # wrong order
    assert track([5, 4], [[4], [5]], mode="unordered")[-1]
    assert not track([4], [[4], [4]], mode="unordered")[-1]  # listed twice: needed twice
    assert track([4, 4], [[4], [4]], mode="unordered")[-1]
    assert track([4, 5, 6], [[4, 5], [5, 6]], mode="unordered")[-1]  # different phrases overlap
    assert not track([4, 5, 6], [[4, 5], [5, 6]], mode="ordered")[-1]  # in order: one after


def has_constraints(hyp: Hypothesis, phrases: list[list[int]], *, mode: str) -> bool:
    return satisfies(hyp.tokens[:-1], phrases, mode=mode)


def random_constraints(n: int, *, seed: int) -> list[list[list[int]]]:
    rng = random.Random(seed)
    return [
        [[rng.randrange(4, 24) for _ in range(rng.randint(1, 2))] for _ in range(rng.randint(0, 3))]
        for _ in range(n)
    ]


@MODES
def test_every_hypothesis_contains_the_constraints(mode: str) -> None:
    model = trained_transformer()
    sources = random_sources(8, seed=11)
    constraints = random_constraints(8, seed=1)
    cfg = gen_cfg(beam=5, nbest=5, max_len_b=20, constraints=mode)
    results = run([model], sources, cfg, constraints)
    plain = run([model], sources, gen_cfg(beam=5, nbest=5, max_len_b=20))
    unmet = 0  # sentences whose unconstrained translations miss a constraint
    for src, phrases, hyps, free in zip(sources, constraints, results, plain, strict=True):
        assert hyps, phrases
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == len(hyps)  # no hypothesis twice
        for hyp in hyps:
            assert has_constraints(hyp, phrases, mode=mode), (hyp.tokens, phrases)
            assert hyp.tokens[-1] == EOS and EOS not in hyp.tokens[:-1]
            # The reported scores are the model's, not bonuses of the allocation.
            assert hyp.score == pytest.approx(forced_score(model, src, hyp.tokens, lenpen=1.0))
        unmet += not all(has_constraints(h, phrases, mode=mode) for h in free)
    assert unmet >= 3  # the test is not trivially true


def test_a_constraint_the_model_dislikes_is_still_produced() -> None:
    table = uniform_table(12, 8)
    table[:, :, 4] = -0.1  # the model wants 4 4 4 ...
    table[:, :, EOS] = -0.5
    table[:, :, 7] = -30.0  # and never 7
    hyps = run(
        [TableModel(table)],
        [torch.tensor([4, EOS])],
        gen_cfg(beam=3, nbest=3, constraints="ordered"),
        [[[7, 7], [5]]],
    )[0]
    assert hyps and all(has_constraints(h, [[7, 7], [5]], mode="ordered") for h in hyps)
    assert hyps[0].positional_scores[0] < -20  # it paid for the unlikely token


@MODES
def test_a_constraint_that_greedy_already_produces_changes_nothing(mode: str) -> None:
    model = trained_transformer()
    sources = random_sources(8, seed=12)
    free = run([model], sources, gen_cfg(beam=1))
    cfg = gen_cfg(beam=1, constraints=mode)
    for src, hyps in zip(sources, free, strict=True):
        words = hyps[0].tokens[:-1]
        for phrases in ([words], [words[-1:]], [words[:1], words[-1:]] if len(words) > 1 else []):
            got = run([model], [src], cfg, [phrases])[0][0]
            assert got.tokens == hyps[0].tokens
            assert got.score == pytest.approx(hyps[0].score, abs=1e-6)


@MODES
def test_no_constraints_is_plain_beam_search(mode: str) -> None:
    model = trained_transformer()
    sources = random_sources(8, seed=13)
    plain = run([model], sources, gen_cfg(beam=4, nbest=4))
    empty = run([model], sources, gen_cfg(beam=4, nbest=4, constraints=mode), [[]] * 8)
    for a, b in zip(plain, empty, strict=True):
        assert [h.tokens for h in a] == [h.tokens for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-6)


def test_batching_and_ensembles_of_one() -> None:
    model = trained_transformer()
    sources = random_sources(6, seed=14)
    constraints = random_constraints(6, seed=2)
    cfg = gen_cfg(beam=4, nbest=2, max_len_b=16, constraints="unordered")
    together = run([model], sources, cfg, constraints)
    twins = run([model, copy.deepcopy(model)], sources, cfg, constraints)
    for i, (src, phrases) in enumerate(zip(sources, constraints, strict=True)):
        alone = run([model], [src], cfg, [phrases])[0]
        assert [h.tokens for h in together[i]] == [h.tokens for h in alone]
        assert [h.tokens for h in twins[i]] == [h.tokens for h in alone]
        assert [h.score for h in twins[i]] == pytest.approx([h.score for h in alone], abs=1e-5)


def test_constraints_that_do_not_fit_leave_the_sentence_without_hypotheses() -> None:
    model = trained_transformer()
    sources = random_sources(2, seed=15)
    cfg = gen_cfg(beam=3, nbest=3, max_len_b=3, constraints="ordered")
    results = run([model], sources, cfg, [[[5, 6, 7, 8]], [[5]]])
    assert results[0] == []  # four tokens and </s> do not fit in three
    assert results[1] and all(5 in h.tokens for h in results[1])


def test_arguments_and_options_are_checked() -> None:
    model = trained_transformer()
    src = random_sources(2)
    with pytest.raises(ValueError, match="together"):
        run([model], src, gen_cfg(beam=2), [[[5]], [[6]]])
    with pytest.raises(ValueError, match="together"):
        run([model], src, gen_cfg(beam=2, constraints="ordered"))
    with pytest.raises(ValueError, match="1 constraint lists for 2"):
        run([model], src, gen_cfg(beam=2, constraints="ordered"), [[[5]]])
    for bad in ({"constraints": "sorted"}, {"constraints": "ordered", "sampling": True}):
        with pytest.raises(UserError, match="--constraints"):
            gen_cfg(**bad).validate()
    gen_cfg(constraints="unordered", prefix_size=2).validate()
