"""IWSLT14 German-English, as fairseq's ``examples/translation/prepare-iwslt14.sh`` builds it.

From the release ``de-en.tgz`` (or its extracted files) it writes
``OUT/{train,valid,test}.{de,en}``:

* train/valid: ``train.tags.de-en.{de,en}`` without the metadata lines (``<url>``, ``<talkid>``,
  ``<keywords>``, and any other line that is one whole XML element); the text of ``<title>`` and
  ``<description>`` is kept, as fairseq keeps it. Pairs are cleaned like Moses
  ``clean-corpus-n.perl -ratio 1.5 ... 1 175``; then every 23rd pair is valid, the rest train.
* test: the ``<seg>`` text of dev2010, TEDX.dev2012, tst2010, tst2011 and tst2012, concatenated.

``--variant cased`` (default) keeps the raw text for SentencePiece: XML entities of the test files
decoded, nothing else changed, the cleaning counting whitespace-separated words. ``--variant
fairseq`` lowercases and Moses-tokenizes (needs ``pip install sacremoses``), counting tokens as
fairseq does; fairseq's BPE step (subword-nmt) is out of scope.

Usage::

    python -m nmt_preln.data_prep.iwslt14 --raw-dir DIR --out data/iwslt14
    python -m nmt_preln.data_prep.iwslt14 --raw-dir DIR --out data/iwslt14 --splits test
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Callable
from pathlib import Path

from nmt_preln.data_prep.corpus_io import (
    SPLITS,
    ReleaseFiles,
    clean_pair,
    download,
    iter_lines,
    parse_splits,
    run_cli,
    segments,
    write_pairs,
)

from nmt_preln.errors import UserError

URL = "http://dl.fbaipublicfiles.com/fairseq/data/iwslt14/de-en.tgz"
LANGS = ("de", "en")
TEST_SETS = (
    "IWSLT14.TED.dev2010",
    "IWSLT14.TEDX.dev2012",
    "IWSLT14.TED.tst2010",
    "IWSLT14.TED.tst2011",
    "IWSLT14.TED.tst2012",
)
VALID_EVERY = 23  # fairseq: awk '{if (NR%23 == 0) print $0; }'
_DROPPED_TAGS = ("<url>", "<talkid>", "<keywords>")  # fairseq's grep -v
_UNWRAPPED = re.compile(r"</?(title|description)>")  # fairseq's sed: keep the text
# tokenizer.perl splits a line's final period even after "u.s.a"; sacremoses keeps "u.s.a."
_FINAL_PERIOD = re.compile(r"(\S*[^\s.])\.$")
_WHOLE_ELEMENT = re.compile(r"^\s*<(\w+)[^>]*>.*</\1>\s*$|^\s*</?\w+[^>]*>\s*$")

logger = logging.getLogger(__name__)
Tokenize = Callable[[str], str]


def train_text(path: Path) -> list[str]:
    """The text lines of a ``train.tags`` file: metadata dropped, title/description unwrapped."""
    lines = []
    for line in iter_lines(path):
        if any(tag in line for tag in _DROPPED_TAGS):
            continue
        line = _UNWRAPPED.sub("", line)
        # Other metadata (<speaker>, <reviewer>, <translator> in some WIT3 releases) is no text.
        if not _WHOLE_ELEMENT.match(line):
            lines.append(line.strip())
    return lines


def moses_tokenizers() -> dict[str, Tokenize]:
    """Moses tokenization per language like fairseq's tokenizer.perl call (escaping, no ``-a``)."""
    try:
        from sacremoses import MosesTokenizer
    except ImportError as e:
        raise UserError("--variant fairseq needs sacremoses: pip install sacremoses") from e

    def make(lang: str) -> Tokenize:
        tokenizer = MosesTokenizer(lang=lang)
        return lambda text: _FINAL_PERIOD.sub(
            r"\1 .", tokenizer.tokenize(text, escape=True, return_str=True)
        )

    return {lang: make(lang) for lang in LANGS}


def _train_valid(
    raw: ReleaseFiles,
    tokenize: dict[str, Tokenize] | None,
    *,
    min_len: int,
    max_len: int,
    ratio: float,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    names = [f"train.tags.de-en.{lang}" for lang in LANGS]
    hint = " (this release has no training split? --splits test prepares the test set only)"
    files = raw.require(names, hint=hint)
    de, en = (train_text(files[n]) for n in names)
    if len(de) != len(en):
        raise UserError(
            f"{files[names[0]]}: {len(de)} text lines but {len(en)} in the English file"
        )
    pairs = []
    for a, b in zip(de, en, strict=True):
        if tokenize is not None:
            a, b = tokenize["de"](a), tokenize["en"](b)
        pair = clean_pair(a, b, min_len=min_len, max_len=max_len, ratio=ratio)
        if pair is not None:
            pairs.append((pair[0].lower(), pair[1].lower()) if tokenize else pair)
    logger.info("cleaning kept %d of %d training pairs", len(pairs), len(de))
    valid = [p for i, p in enumerate(pairs, start=1) if i % VALID_EVERY == 0]
    train = [p for i, p in enumerate(pairs, start=1) if i % VALID_EVERY != 0]
    return train, valid


def _test(raw: ReleaseFiles, tokenize: dict[str, Tokenize] | None) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name in TEST_SETS:
        names = [f"{name}.de-en.{lang}.xml" for lang in LANGS]
        files = raw.require(names)
        # fairseq feeds the raw XML text to the Moses tokenizer, which escapes it again
        de, en = (segments(files[n], unescape=tokenize is None) for n in names)
        if len(de) != len(en):
            raise UserError(f"{files[names[0]]}: {len(de)} segments but {len(en)} in English")
        if tokenize is not None:
            de = [tokenize["de"](s.replace("’", "'")).lower() for s in de]
            en = [tokenize["en"](s.replace("’", "'")).lower() for s in en]
        pairs += zip(de, en, strict=True)
    return pairs


def prepare(
    *,
    raw_dir: Path | None,
    out_dir: Path,
    variant: str = "cased",
    splits: tuple[str, ...] = SPLITS,
    min_len: int = 1,
    max_len: int = 175,
    ratio: float = 1.5,
) -> dict[str, int]:
    """Write ``out_dir/{split}.{de,en}`` for each of ``splits``; returns the pairs per split.

    Args:
        raw_dir: a folder with ``de-en.tgz`` or its files; None downloads into ``out_dir/orig``.
        out_dir: output folder.
        variant: ``cased`` (raw text) or ``fairseq`` (lowercased, Moses-tokenized).
        splits: any of train, valid, test (valid is carved out of the training data).
        min_len: clean-corpus-n minimum words per side (training data only).
        max_len: clean-corpus-n maximum words per side.
        ratio: clean-corpus-n maximum length ratio.
    """
    if variant not in ("cased", "fairseq"):
        raise UserError(f"--variant must be cased or fairseq, not {variant!r}")
    tokenize = moses_tokenizers() if variant == "fairseq" else None
    if raw_dir is None:
        raw_dir = out_dir / "orig"
        download(URL, raw_dir)
    counts = {}
    with ReleaseFiles(raw_dir, scratch_parent=out_dir) as raw:
        if "train" in splits or "valid" in splits:
            train, valid = _train_valid(
                raw, tokenize, min_len=min_len, max_len=max_len, ratio=ratio
            )
            for split, pairs in (("train", train), ("valid", valid)):
                if split in splits:
                    counts[split] = write_pairs(out_dir, split, LANGS, pairs)
        if "test" in splits:
            counts["test"] = write_pairs(out_dir, "test", LANGS, _test(raw, tokenize))
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nmt_preln.data_prep.iwslt14",
        description="Prepare IWSLT14 de-en like fairseq's prepare-iwslt14.sh: "
        "OUT/{train,valid,test}.{de,en}.",
    )
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument(
        "--raw-dir",
        type=Path,
        help=f"folder with de-en.tgz or its extracted files (default: download {URL})",
    )
    parser.add_argument(
        "--variant",
        choices=["cased", "fairseq"],
        default="cased",
        help="cased: raw text for SentencePiece (default); fairseq: lowercased + Moses "
        "tokenized, needs sacremoses (BPE not included)",
    )
    parser.add_argument(
        "--splits",
        type=parse_splits,
        default=SPLITS,
        help="comma-separated splits to write (default train,valid,test)",
    )
    parser.add_argument("--max-len", type=int, default=175, help="clean: max words (175)")
    parser.add_argument("--ratio", type=float, default=1.5, help="clean: max length ratio (1.5)")
    args = parser.parse_args(argv)
    return run_cli(
        parser.prog,
        lambda: prepare(
            raw_dir=args.raw_dir,
            out_dir=args.out,
            variant=args.variant,
            splits=args.splits,
            max_len=args.max_len,
            ratio=args.ratio,
        ),
    )


if __name__ == "__main__":
    raise SystemExit(main())
