"""Generated toy corpora and their preprocessed data directories (never real data).

Every corpus is a learnable task built from a small word list: the target side is a fixed
function of the source words (reversed and renamed, letters reversed, ...), so a tiny model
has something to learn and a decoder has something to get right.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from nmt_preln.config import PreprocessConfig, Segmentation
from nmt_preln.data.preprocess import preprocess

#: Symbol-like words: with whitespace segmentation the vocabulary is known in advance.
WORDS = [f"w{i}" for i in range(24)]
#: German-looking words, for tests that want SentencePiece something to split.
GERMAN_WORDS = ["haus", "katze", "hund", "baum", "rot", "blau", "gross", "klein", "der", "die"]
_LEXICON = (  # German:English word pairs, so that UTF-8 handling is exercised
    "haus:house katze:cat hund:dog baum:tree straße:street grün:green blau:blue schön:nice "
    "über:over fährt:drives läuft:runs der:the die:the das:the ein:a eine:an"
)
#: German -> English, one word each; German words with non-ASCII letters.
LEXICON = dict(pair.split(":") for pair in _LEXICON.split())

Target = Callable[[list[str]], str]


def renamed_reversal(words: list[str]) -> str:
    """``w3 w7`` -> ``v7 v3``: the words in reverse order, each renamed."""
    return " ".join(w.replace("w", "v") for w in reversed(words))


def reversed_order(words: list[str]) -> str:
    """``a b c`` -> ``c b a``."""
    return " ".join(reversed(words))


def letters_reversed(words: list[str]) -> str:
    """``haus rot`` -> ``suah tor``: each word spelled backwards, order kept."""
    return " ".join(w[::-1] for w in words)


def translated(words: list[str]) -> str:
    """``der hund`` -> ``the dog``: word by word through :data:`LEXICON`."""
    return " ".join(LEXICON[w] for w in words)


def mirrored(words: list[str]) -> str:
    """``haus rot`` -> ``tor suah``: the whole line spelled backwards."""
    return " ".join(words)[::-1]


def _sentences(
    rng: random.Random, n: int, *, words: Sequence[str], lengths: tuple[int, int]
) -> list[list[str]]:
    # The length is drawn before the words: the order every older copy of this used, so the
    # same seed still gives the same corpus.
    return [[rng.choice(words) for _ in range(rng.randint(*lengths))] for _ in range(n)]


def _write_side(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def write_parallel(prefix: Path, src: list[str], tgt: list[str]) -> Path:
    """Write the given lines to ``PREFIX.de`` and ``PREFIX.en`` (folder created); ``prefix``."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    _write_side(Path(f"{prefix}.de"), src)
    _write_side(Path(f"{prefix}.en"), tgt)
    return prefix


def write_pairs(
    prefix: Path,
    n: int,
    *,
    seed: int,
    words: Sequence[str] = WORDS,
    lengths: tuple[int, int] = (2, 9),
    target: Target = renamed_reversal,
) -> Path:
    """Write ``n`` sentence pairs to ``PREFIX.de`` and ``PREFIX.en``.

    Args:
        prefix: path without the language suffix; its folder is created.
        n: number of pairs.
        seed: seed of this split's own random generator.
        words: the source vocabulary.
        lengths: inclusive (shortest, longest) source length in words.
        target: maps the source words to the target line.

    Returns:
        ``prefix``.
    """
    sentences = _sentences(random.Random(seed), n, words=words, lengths=lengths)
    return write_parallel(prefix, [" ".join(s) for s in sentences], [target(s) for s in sentences])


def write_corpus(
    root: Path,
    *,
    sizes: dict[str, int],
    seed: int = 0,
    words: Sequence[str] = WORDS,
    lengths: tuple[int, int] = (2, 9),
    target: Target = renamed_reversal,
) -> Path:
    """Write ``root/{split}.de`` and ``.en`` for every split of ``sizes``, one generator for all.

    Args:
        root: the raw-text folder (created).
        sizes: pairs per split, e.g. ``{"train": 200, "valid": 8, "test": 12}``.
        seed: seed of the generator shared by the splits (in the order of ``sizes``).
        words, lengths, target: as in :func:`write_pairs`.

    Returns:
        ``root``.
    """
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in sizes.items():
        sentences = _sentences(rng, n, words=words, lengths=lengths)
        write_parallel(
            root / split, [" ".join(s) for s in sentences], [target(s) for s in sentences]
        )
    return root


def preprocess_dir(
    raw: Path,
    dest: Path,
    *,
    splits: Sequence[str] = ("train", "valid", "test"),
    segmentation: Segmentation = Segmentation.none,
    joined_dictionary: bool = False,
    spm_vocab_size: int | None = None,
) -> Path:
    """Run nmt-preprocess's library function on ``raw/{split}.{de,en}`` (de -> en) into ``dest``.

    Args:
        raw: folder holding the raw splits; ``train`` must be among ``splits``.
        dest: the data directory to create.
        splits: which of train/valid/test to binarize.
        segmentation: ``none`` (whitespace: fast, known vocabulary) or ``sentencepiece``.
        joined_dictionary: one dictionary for both sides.
        spm_vocab_size: SentencePiece vocabulary size (``None``: the config's default).

    Returns:
        ``dest``.
    """

    def prefix(split: str) -> str | None:
        return str(raw / split) if split in splits else None

    cfg = PreprocessConfig(
        source_lang="de",
        target_lang="en",
        trainpref=prefix("train"),
        validpref=prefix("valid"),
        testpref=prefix("test"),
        destdir=str(dest),
        segmentation=segmentation,
        joined_dictionary=joined_dictionary,
    )
    if spm_vocab_size is not None:
        cfg.spm_vocab_size = spm_vocab_size
    preprocess(cfg)
    return dest


def copy_tree(src: Path, dest: Path) -> Path:
    """A private copy of a shared directory, for a test that edits or adds files in it."""
    return Path(shutil.copytree(src, dest))


def make_spm_data(root: Path, *, segmentation: Segmentation = Segmentation.sentencepiece) -> Path:
    """The decoding tests' corpus: ``root/raw`` (200/8/12 pairs of 1-6 German-looking words,
    each spelled backwards on the target side) and ``root/data-bin`` (joined dictionary,
    SentencePiece with 60 pieces unless ``segmentation`` says otherwise).

    Returns:
        ``root / "data-bin"``.
    """
    raw = write_corpus(
        root / "raw",
        sizes={"train": 200, "valid": 8, "test": 12},
        words=[*GERMAN_WORDS, "und"],
        lengths=(1, 6),
        target=letters_reversed,
    )
    return preprocess_dir(
        raw,
        root / "data-bin",
        segmentation=segmentation,
        joined_dictionary=True,
        spm_vocab_size=60,
    )
