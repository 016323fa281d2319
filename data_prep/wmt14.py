"""WMT14 English-German in the shape of fairseq's ``examples/translation/prepare-wmt14en2de.sh``.

Writes cased raw text ``OUT/{train,valid,test}.{en,de}`` for SentencePiece:

* train: Europarl v7 + CommonCrawl + News Commentary v12 (``europarl-v7.de-en.*``,
  ``commoncrawl.de-en.*``, ``news-commentary-v12.de-en.*``), non-printing characters replaced by
  spaces (Moses ``remove-non-printing-char.perl``), cleaned like ``clean-corpus-n.perl -ratio 1.5
  ... 1 250`` counting whitespace-separated words.
* valid: newstest2013 (``newstest2013.{en,de}`` or its ``.sgm`` files), or ``--valid train``:
  every 100th training pair, as fairseq's script does; ``--valid-pref`` takes other files.
* test: newstest2014 from ``newstest2014-deen-{src.en,ref.de}.sgm`` (``test-full.tgz``), the
  ``<seg>`` text as sacreBLEU reads it (entities not decoded, whitespace runs collapsed).

fairseq's Moses punctuation normalization, tokenization and BPE are left to SentencePiece.

Usage::

    python -m nmt_preln.data_prep.wmt14 --raw-dir DIR --out data/wmt14
"""

from __future__ import annotations

import argparse
import functools
import logging
import re
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from nmt_preln.data_prep.corpus_io import (
    SPLITS,
    ReleaseFiles,
    clean_pair,
    download,
    iter_pairs,
    parse_splits,
    run_cli,
    segments,
    write_pairs,
)

from nmt_preln.errors import UserError

URLS = {  # fairseq's sources, by the split that needs them
    "train": (
        "http://statmt.org/wmt13/training-parallel-europarl-v7.tgz",
        "http://statmt.org/wmt13/training-parallel-commoncrawl.tgz",
        "http://data.statmt.org/wmt17/translation-task/training-parallel-nc-v12.tgz",
    ),
    "valid": ("http://data.statmt.org/wmt17/translation-task/dev.tgz",),
    "test": ("http://statmt.org/wmt14/test-full.tgz",),
}
LANGS = ("en", "de")
TRAIN_CORPORA = ("europarl-v7.de-en", "commoncrawl.de-en", "news-commentary-v12.de-en")
VALID_EVERY = 100  # fairseq: awk '{if (NR%100 == 0) print $0; }'
logger = logging.getLogger(__name__)


@functools.cache
def _non_printing() -> re.Pattern[str]:
    """Unicode category C (control, format, private use, surrogate), like Perl's ``\\p{C}``."""
    ranges, start = [], None
    for cp in range(sys.maxunicode + 2):
        inside = cp <= sys.maxunicode and unicodedata.category(chr(cp))[0] == "C"
        inside = inside and unicodedata.category(chr(cp)) != "Cn"  # unassigned: not in real text
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(cp - 1))}")
            start = None
    return re.compile(f"[{''.join(ranges)}]")


def _train_pairs(
    raw: ReleaseFiles, *, min_len: int, max_len: int, ratio: float
) -> Iterator[tuple[str, str]]:
    names = [f"{corpus}.{lang}" for corpus in TRAIN_CORPORA for lang in LANGS]
    hint = " (--splits valid,test prepares the evaluation sets only)"
    files = raw.require(names, hint=hint)
    kept = total = 0
    for corpus in TRAIN_CORPORA:
        for en, de in iter_pairs(files[f"{corpus}.en"], files[f"{corpus}.de"]):
            total += 1
            pattern = _non_printing()
            pair = clean_pair(
                pattern.sub(" ", en), pattern.sub(" ", de), min_len=min_len, max_len=max_len,
                ratio=ratio,
            )  # fmt: skip
            if pair is not None:
                kept += 1
                yield pair
    logger.info("cleaning kept %d of %d training pairs", kept, total)


def _sgm_pair(raw: ReleaseFiles, src: str, ref: str) -> list[tuple[str, str]]:
    files = raw.require([src, ref])
    # sacreBLEU's reading of an SGM file: entities kept, whitespace runs collapsed
    en, de = ([" ".join(s.split()) for s in segments(files[n], unescape=False)] for n in (src, ref))
    if len(en) != len(de):
        raise UserError(f"{files[src]}: {len(en)} segments but {files[ref]} has {len(de)}")
    return list(zip(en, de, strict=True))


def _newstest2013(raw: ReleaseFiles) -> list[tuple[str, str]]:
    plain = raw.find(["newstest2013.en", "newstest2013.de"])
    if len(plain) == 2:
        return list(iter_pairs(plain["newstest2013.en"], plain["newstest2013.de"]))
    sgm = ["newstest2013-src.en.sgm", "newstest2013-ref.de.sgm"]
    if len(raw.find(sgm)) < 2:
        raise UserError(
            f"newstest2013.en/.de (or {sgm[0]}) not found under --raw-dir {raw.raw_dir}; "
            "--valid-pref PREFIX takes other files"
        )
    return _sgm_pair(raw, *sgm)


def _files_with_prefix(prefix: str) -> list[tuple[str, str]]:
    paths = []
    for lang in LANGS:
        candidates = [Path(f"{prefix}.{lang}"), Path(f"{prefix}.{lang}.gz")]
        found = [p for p in candidates if p.is_file()]
        if not found:
            raise UserError(f"--valid-pref {prefix}: neither {candidates[0]} nor .gz exists")
        paths.append(found[0])
    pairs = list(iter_pairs(paths[0], paths[1]))
    if any("##AT##" in en or "&quot;" in en for en, _ in pairs[:1000]):
        logger.warning("%s looks tokenized (Stanford ##AT## / &quot;): not raw text", paths[0])
    return pairs


def prepare(
    *,
    raw_dir: Path | None,
    out_dir: Path,
    splits: tuple[str, ...] = SPLITS,
    valid: str = "newstest2013",
    valid_pref: str | None = None,
    min_len: int = 1,
    max_len: int = 250,
    ratio: float = 1.5,
) -> dict[str, int]:
    """Write ``out_dir/{split}.{en,de}`` for each of ``splits``; returns the pairs per split.

    Args:
        raw_dir: folder with the release archives or their files; None downloads them into
            ``out_dir/orig``.
        out_dir: output folder.
        splits: any of train, valid, test.
        valid: ``newstest2013``, or ``train`` for every 100th training pair (fairseq's script).
        valid_pref: read the validation pairs from ``PREFIX.en``/``PREFIX.de`` instead.
        min_len: clean-corpus-n minimum words per side (training data).
        max_len: clean-corpus-n maximum words per side.
        ratio: clean-corpus-n maximum length ratio.
    """
    if valid not in ("newstest2013", "train"):
        raise UserError(f"--valid must be newstest2013 or train, not {valid!r}")
    counts = {}
    if "valid" in splits and valid_pref is not None:
        counts["valid"] = write_pairs(out_dir, "valid", LANGS, _files_with_prefix(valid_pref))
        splits = tuple(s for s in splits if s != "valid")
    if not splits:
        return counts
    if raw_dir is None:
        raw_dir = out_dir / "orig"
        needed = set(splits)
        if valid == "train" and "valid" in needed:  # carved out of the training data
            needed = (needed - {"valid"}) | {"train"}
        for split in sorted(needed):
            for url in URLS[split]:
                download(url, raw_dir)
    with ReleaseFiles(raw_dir, scratch_parent=out_dir) as raw:
        held_out: list[tuple[str, str]] = []  # fairseq's valid: every 100th training pair
        if "train" in splits or ("valid" in splits and valid == "train"):
            train = _train_pairs(raw, min_len=min_len, max_len=max_len, ratio=ratio)
            if valid == "train":
                train = _hold_out(train, held_out)
            if "train" in splits:
                counts["train"] = write_pairs(out_dir, "train", LANGS, train)
            else:
                for _pair in train:  # only the held-out pairs are wanted
                    pass
        if "valid" in splits:
            pairs = held_out if valid == "train" else _newstest2013(raw)
            counts["valid"] = write_pairs(out_dir, "valid", LANGS, pairs)
        if "test" in splits:
            test = _sgm_pair(raw, "newstest2014-deen-src.en.sgm", "newstest2014-deen-ref.de.sgm")
            counts["test"] = write_pairs(out_dir, "test", LANGS, test)
    return counts


def _hold_out(
    pairs: Iterator[tuple[str, str]], held_out: list[tuple[str, str]]
) -> Iterator[tuple[str, str]]:
    """Yield the pairs except every ``VALID_EVERY``-th, which goes to ``held_out``."""
    for i, pair in enumerate(pairs, start=1):
        if i % VALID_EVERY == 0:
            held_out.append(pair)
        else:
            yield pair


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nmt_preln.data_prep.wmt14",
        description="Prepare WMT14 en-de (cased raw text): OUT/{train,valid,test}.{en,de}.",
    )
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument(
        "--raw-dir",
        type=Path,
        help="folder with the release .tgz files or their extracted files (default: download "
        "them from statmt.org into OUT/orig, about 1.5 GB)",
    )
    parser.add_argument(
        "--splits", type=parse_splits, default=SPLITS, help="comma-separated (train,valid,test)"
    )
    parser.add_argument(
        "--valid",
        choices=["newstest2013", "train"],
        default="newstest2013",
        help="validation set: newstest2013 (default) or every 100th training pair (fairseq)",
    )
    parser.add_argument(
        "--valid-pref", help="take the validation set from PREFIX.en and PREFIX.de (or .gz)"
    )
    parser.add_argument("--max-len", type=int, default=250, help="clean: max words (250)")
    parser.add_argument("--ratio", type=float, default=1.5, help="clean: max length ratio (1.5)")
    args = parser.parse_args(argv)
    return run_cli(
        parser.prog,
        lambda: prepare(
            raw_dir=args.raw_dir,
            out_dir=args.out,
            splits=args.splits,
            valid=args.valid,
            valid_pref=args.valid_pref,
            max_len=args.max_len,
            ratio=args.ratio,
        ),
    )


if __name__ == "__main__":
    raise SystemExit(main())
