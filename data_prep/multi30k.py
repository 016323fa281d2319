"""Multi30k task 1 English-German (image captions) from the raw release files.

Reads ``train.{en,de}.gz``, ``val.{en,de}.gz`` and ``TEST.{en,de}.gz`` (the files of
``multi30k/dataset``, ``data/task1/raw/``; plain or gzipped, under ``--raw-dir`` or downloaded)
and writes cased raw text ``OUT/{train,valid,test}.{en,de}``. The text is kept as it is (surrounding
whitespace stripped), except that training pairs with a side without any letter are dropped: the
release's ``train.de`` has two lines that are only ``@@``.

Usage::

    python -m nmt_preln.data_prep.multi30k --raw-dir DIR --out data/multi30k
    python -m nmt_preln.data_prep.multi30k --raw-dir DIR --out data/m30k17 --test test_2017_flickr
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from nmt_preln.data_prep.corpus_io import ReleaseFiles, download, iter_pairs, run_cli, write_pairs

from nmt_preln.errors import UserError

BASE_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/"
LANGS = ("en", "de")
TEST_SETS = ("test_2016_flickr", "test_2017_flickr", "test_2017_mscoco", "test_2018_flickr")
logger = logging.getLogger(__name__)


def _has_letter(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def prepare(
    *, raw_dir: Path | None, out_dir: Path, test: str = "test_2016_flickr"
) -> dict[str, int]:
    """Write ``out_dir/{train,valid,test}.{en,de}``; returns the pairs per split.

    Args:
        raw_dir: folder with the release files; None downloads them into ``out_dir/orig``.
        out_dir: output folder.
        test: which test set becomes ``test`` (one of :data:`TEST_SETS`).
    """
    if test not in TEST_SETS:
        raise UserError(f"--test must be one of {', '.join(TEST_SETS)}, not {test!r}")
    sources = {"train": "train", "valid": "val", "test": test}
    if raw_dir is None:
        raw_dir = out_dir / "orig"
        for name in sources.values():
            for lang in LANGS:
                download(f"{BASE_URL}{name}.{lang}.gz", raw_dir)
    counts = {}
    with ReleaseFiles(raw_dir, scratch_parent=out_dir) as raw:
        files = raw.require(f"{name}.{lang}" for name in sources.values() for lang in LANGS)
        for split, name in sources.items():
            both = iter_pairs(files[f"{name}.en"], files[f"{name}.de"])
            pairs = [(a.strip(), b.strip()) for a, b in both]
            if split == "train":
                kept = [(a, b) for a, b in pairs if _has_letter(a) and _has_letter(b)]
                logger.info("dropped %d training pairs without letters", len(pairs) - len(kept))
                pairs = kept
            counts[split] = write_pairs(out_dir, split, LANGS, pairs)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nmt_preln.data_prep.multi30k",
        description="Prepare Multi30k task 1 en-de (cased raw text): "
        "OUT/{train,valid,test}.{en,de}.",
    )
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument(
        "--raw-dir",
        type=Path,
        help=f"folder with train/val/test .gz files (default: download from {BASE_URL})",
    )
    parser.add_argument(
        "--test",
        choices=TEST_SETS,
        default="test_2016_flickr",
        help="test set written as OUT/test.* (default test_2016_flickr)",
    )
    args = parser.parse_args(argv)
    return run_cli(
        parser.prog, lambda: prepare(raw_dir=args.raw_dir, out_dir=args.out, test=args.test)
    )


if __name__ == "__main__":
    raise SystemExit(main())
