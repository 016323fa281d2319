"""The embedded toy corpus: a synthetic German->English translation task generated from a grammar.

It is small (a few hundred words) yet a real translation task: German verb-second
main clauses and verb-final subordinate clauses (``dass``, ``weil``, ``wenn``) against English SVO,
separable verbs (``ruft ... an``), the perfect tense with its participle at the end, modal verbs,
case and gender agreement of determiners and adjectives, English do-support in negations and
questions, and ambiguities that the context resolves: ``sie`` is "she" or "they" by the verb's
ending, ``Bank`` is "bench" or "bank" by its preposition, ``tragen`` is "carry" or "wear" by its
object. Surface forms are natural text: ``Der kleine Hund sieht die Katze.``

Usage::

    nmt-toy-corpus --out data/toy --train 20000 --valid 500 --test 500 --seed 1

Every random choice goes through a ``random.Random`` seeded from ``--seed`` (never the global one),
so a seed fixes the corpus.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from nmt_preln.data_prep.corpus_io import make_dir, run_cli, write_pairs
from nmt_preln.data_prep.toy_grammar import sentence, surface

from nmt_preln.errors import UserError

MIN_WORDS, MAX_WORDS = 5, 25


def generate_pairs(n: int, *, seed: int, exclude: set[str] | None = None) -> list[tuple[str, str]]:
    """``n`` distinct (German, English) pairs of 5-25 words each, fixed by ``seed``.

    Args:
        n: number of pairs.
        seed: seed of the one ``random.Random`` that makes every choice.
        exclude: German sentences not to produce; the new ones are added to it.

    Raises:
        UserError: if the grammar cannot produce ``n`` new distinct sentences.
    """
    rng = random.Random(seed)
    seen = exclude if exclude is not None else set()
    pairs: list[tuple[str, str]] = []
    misses = 0
    while len(pairs) < n:
        de_words, en_words, end = sentence(rng)
        de, en = surface(de_words, end), surface(en_words, end)
        ok = all(MIN_WORDS <= len(s.split()) <= MAX_WORDS for s in (de, en))
        if not ok or de in seen:
            misses += 1
            if misses > 100 * n + 10_000:
                raise UserError(f"the toy grammar ran out of distinct sentences after {len(pairs)}")
            continue
        seen.add(de)
        pairs.append((de, en))
    return pairs


def generate_corpus(
    *, out_dir: str | Path, train: int, valid: int, test: int, seed: int
) -> dict[str, int]:
    """Write ``out_dir/{train,valid,test}.{de,en}``; no German sentence occurs twice in all of them.

    Args:
        out_dir: output folder, created if missing.
        train: training pairs.
        valid: validation pairs; 0 writes no valid files (and removes old ones).
        test: test pairs; 0 likewise.
        seed: fixes the corpus; the test set does not depend on ``train`` or ``valid``.

    Returns:
        The number of pairs written per split.
    """
    for name, n in (("--train", train), ("--valid", valid), ("--test", test)):
        if n < 0:
            raise UserError(f"{name} must be >= 0, got {n}")
    out = Path(out_dir)
    make_dir(out)
    seen: set[str] = set()
    counts = {}
    # test first, so that its sentences never depend on the sizes of the other splits
    for offset, (split, n) in enumerate((("test", test), ("valid", valid), ("train", train))):
        pairs = generate_pairs(n, seed=seed * 1000 + offset, exclude=seen)
        if n:
            counts[split] = write_pairs(out, split, ("de", "en"), pairs)
        else:  # a stale split from an earlier run would overlap the new ones
            counts[split] = 0
            for lang in ("de", "en"):
                (out / f"{split}.{lang}").unlink(missing_ok=True)
    return {split: counts[split] for split in ("train", "valid", "test")}


def main(argv: list[str] | None = None) -> int:
    """``nmt-toy-corpus``: write the synthetic German->English corpus."""
    parser = argparse.ArgumentParser(
        prog="nmt-toy-corpus",
        description="Write a synthetic German->English corpus: OUT/{train,valid,test}.{de,en}.",
    )
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--train", type=int, default=20000, help="training pairs (default 20000)")
    parser.add_argument("--valid", type=int, default=500, help="validation pairs (default 500)")
    parser.add_argument("--test", type=int, default=500, help="test pairs (default 500)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = parser.parse_args(argv)
    return run_cli(
        parser.prog,
        lambda: generate_corpus(
            out_dir=args.out, train=args.train, valid=args.valid, test=args.test, seed=args.seed
        ),
    )


if __name__ == "__main__":
    raise SystemExit(main())
