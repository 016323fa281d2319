"""``nmt-import fairseq-data DIR``: adopt a fairseq-preprocess data-bin without rewriting it.

A fairseq data-bin holds ``dict.{lang}.txt`` and ``{split}.{src}-{tgt}.{lang}.bin/.idx``
(MMapIndexedDataset) files. Adopting it checks every split (both .idx layouts are read, the
sides have the same number of sentences, every token index is in its dictionary) and writes the
``manifest.json`` nmt-train and nmt-generate look for, with segmentation "none": the text is
segmented outside (BPE with "@@ " markers, say), so decoding takes ``--remove-bpe`` as in
fairseq. The binaries and dictionaries are left as they are.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from nmt_preln.data.dataset import FORMAT_VERSION, MANIFEST
from nmt_preln.data.destination import write_json_atomic
from nmt_preln.data.dictionary import Dictionary
from nmt_preln.data.indexed_dataset import IndexedDataset
from nmt_preln.errors import UserError
from nmt_preln.interop.config import FairseqDataImportConfig

CREATED_BY = "nmt-import fairseq-data"
_SPLIT_FILE = re.compile(
    r"^(?P<split>[^.]+)\.(?P<src>[^.-]+)-(?P<tgt>[^.-]+)\.(?P<lang>[^.]+)\.(bin|idx)$"
)


def _split_files(data_dir: str) -> list[re.Match[str]]:
    if not os.path.isdir(data_dir):
        raise UserError(f"{data_dir}: data directory not found")
    return [m for m in map(_SPLIT_FILE.match, sorted(os.listdir(data_dir))) if m]


def find_language_pair(
    data_dir: str, *, source_lang: str | None = None, target_lang: str | None = None
) -> tuple[str, str]:
    """(source, target) of the data-bin's ``{split}.{src}-{tgt}.*`` files.

    The file names give the direction, as in fairseq; one given language picks among several
    pairs, both given may also ask for the reverse direction.

    Raises:
        UserError: no split files, or several pairs and no language to choose.
    """
    if source_lang and target_lang:
        return source_lang, target_lang
    pairs = sorted({(m["src"], m["tgt"]) for m in _split_files(data_dir)})
    if not pairs:
        raise UserError(
            f"{data_dir}: no {{split}}.{{src}}-{{tgt}}.{{lang}}.bin/.idx files: not a fairseq "
            f"data-bin"
        )
    given = source_lang or target_lang
    if given:
        pairs = [p for p in pairs if given in p]
        pairs = [(a, b) if given == (a if source_lang else b) else (b, a) for a, b in pairs]
    if len(pairs) != 1:
        names = ", ".join(f"{a}-{b}" for a, b in pairs) or "none with that language"
        raise UserError(
            f"{data_dir}: language pairs {names}; choose with --source-lang/--target-lang"
        )
    return pairs[0]


def _count_split(data_dir: str, split: str, pair: str, dicts: dict[str, Dictionary]) -> int:
    """Sentences of one split, after checking both sides and their token indices."""
    counts = {}
    for lang, dictionary in dicts.items():
        prefix = os.path.join(data_dir, f"{split}.{pair}.{lang}")
        if not (os.path.exists(prefix + ".bin") or os.path.exists(prefix + ".idx")):
            continue
        data = IndexedDataset(prefix)
        low, high = data.index_range()
        if low < 0 or high >= len(dictionary):
            raise UserError(
                f"{prefix}.bin: token index {high if high >= len(dictionary) else low} is "
                f"outside dict.{lang}.txt ({len(dictionary)} symbols)"
            )
        counts[lang] = len(data)
    if len(set(counts.values())) > 1:
        sides = ", ".join(f"{lang} {n}" for lang, n in counts.items())
        raise UserError(f"{data_dir}: split {split} has sides of different lengths ({sides})")
    return next(iter(counts.values()))


def _check_existing(data_dir: str) -> None:
    path = os.path.join(data_dir, MANIFEST)
    if not os.path.exists(path):
        return
    try:
        with open(path, encoding="utf-8") as f:
            created_by = json.load(f).get("created_by")
    except (OSError, ValueError, AttributeError):
        created_by = None
    if created_by != CREATED_BY:
        raise UserError(
            f"{path}: exists (created by {created_by or 'something else'}); {data_dir} is "
            f"already an nmt-preln data directory"
        )


def adopt_fairseq_data(cfg: FairseqDataImportConfig) -> dict[str, Any]:
    """Check the data-bin ``cfg.data`` and write its ``manifest.json``; return the manifest.

    Raises:
        UserError: not a fairseq data-bin, a missing dictionary, unreadable or inconsistent
            splits, or a manifest of another origin already there.
    """
    data_dir = cfg.data
    src, tgt = find_language_pair(
        data_dir, source_lang=cfg.source_lang, target_lang=cfg.target_lang
    )
    _check_existing(data_dir)
    dicts = {}
    for lang in (src, tgt):
        path = os.path.join(data_dir, f"dict.{lang}.txt")
        if not os.path.isfile(path):
            raise UserError(f"{path}: not found (every language needs its dictionary)")
        dicts[lang] = Dictionary.load(path)
    pairs = {f"{src}-{tgt}", f"{tgt}-{src}"}
    found = sorted({(m["split"], f"{m['src']}-{m['tgt']}") for m in _split_files(data_dir)})
    splits = {
        split: _count_split(data_dir, split, pair, dicts) for split, pair in found if pair in pairs
    }
    manifest = {
        "format_version": FORMAT_VERSION,
        "source_lang": src,
        "target_lang": tgt,
        "segmentation": "none",
        "spm_models": {},
        "joined_dictionary": dicts[src] == dicts[tgt],
        "splits": splits,
        "dictionaries": {lang: f"dict.{lang}.txt" for lang in (src, tgt)},
        "vocab_sizes": {lang: len(d) for lang, d in dicts.items()},
        "created_by": CREATED_BY,
    }
    try:
        write_json_atomic(os.path.join(data_dir, MANIFEST), manifest)
    except OSError as e:
        raise UserError(f"{data_dir}: cannot write {MANIFEST}: {e.strerror}") from None
    return manifest
