"""Reading a data directory written by ``nmt-preprocess``: manifest, dictionaries, splits.

Everything here fails with a one-line UserError that names the directory or file when the
directory is not a finished dataset, a split is missing, or binarized files are corrupt.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from nmt_preln.data.dictionary import Dictionary
from nmt_preln.data.indexed_dataset import IndexedDataset
from nmt_preln.errors import UserError

MANIFEST = "manifest.json"
# The manifest's format: nmt-preprocess writes it, every reader checks it (one definition).
FORMAT_VERSION = 1
# The keys every reader relies on, with their JSON types.
_REQUIRED_KEYS = {
    "source_lang": str,
    "target_lang": str,
    "segmentation": str,
    "spm_models": dict,
    "splits": dict,
}


def _looks_like_fairseq(data_dir: str) -> bool:
    """dict.*.txt and split .idx files, and nothing of an unfinished nmt-preprocess: no staging
    directory (``.partial-*``), no SentencePiece model (fairseq data is segmented outside)."""
    names = os.listdir(data_dir)
    if any(name.startswith((".partial-", "spm")) for name in names):
        return False
    has_dict = any(name.startswith("dict.") and name.endswith(".txt") for name in names)
    return has_dict and any(name.endswith(".idx") for name in names)


def load_manifest(data_dir: str) -> dict[str, Any]:
    """Read ``DATA_DIR/manifest.json``, the mark of a finished dataset.

    Raises:
        UserError: the directory or manifest is missing, unreadable, or of another format.
    """
    if not os.path.isdir(data_dir):
        raise UserError(f"{data_dir}: data directory not found")
    path = os.path.join(data_dir, MANIFEST)
    if not os.path.isfile(path):
        if _looks_like_fairseq(data_dir):
            raise UserError(
                f"{data_dir}: no {MANIFEST}: it looks like a fairseq data-bin; adopt it with "
                f"`nmt-import fairseq-data {data_dir}` (writes the manifest, keeps the binaries)"
            )
        raise UserError(
            f"{data_dir}: no {MANIFEST}: not a finished nmt-preprocess data directory "
            f"(did nmt-preprocess fail, or is it still running?)"
        )
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read: {e}") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: line {e.lineno}: corrupt manifest ({e.msg})") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{path}: corrupt manifest (not a JSON object)")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"{path}: format_version {manifest.get('format_version')!r}, this nmt-preln reads "
            f"{FORMAT_VERSION}; rerun nmt-preprocess"
        )
    missing = [key for key in _REQUIRED_KEYS if key not in manifest]
    if missing:
        raise UserError(f"{path}: corrupt manifest (missing {', '.join(missing)})")
    wrong = [key for key, kind in _REQUIRED_KEYS.items() if not isinstance(manifest[key], kind)]
    splits = manifest["splits"] if isinstance(manifest["splits"], dict) else {}
    wrong += [f"splits.{k}" for k, n in splits.items() if type(n) is not int or n < 0]
    if wrong:
        raise UserError(f"{path}: corrupt manifest (wrong type or value of {', '.join(wrong)})")
    return manifest


def load_dictionaries(
    data_dir: str, source_lang: str, target_lang: str
) -> tuple[Dictionary, Dictionary]:
    """Load ``dict.{source_lang}.txt`` and ``dict.{target_lang}.txt`` of a finished dataset."""
    load_manifest(data_dir)
    return (
        Dictionary.load(os.path.join(data_dir, f"dict.{source_lang}.txt")),
        Dictionary.load(os.path.join(data_dir, f"dict.{target_lang}.txt")),
    )


def _check_indices(data: IndexedDataset, dictionary: Dictionary, data_dir: str, lang: str) -> None:
    """Refuse token indices outside the dictionary (a corrupt .bin or a replaced dict file),
    which would otherwise surface as an IndexError deep inside training or decoding."""
    low, high = data.index_range()
    if low < 0 or high >= len(dictionary):
        bad = low if low < 0 else high
        raise UserError(
            f"{data.prefix}.bin: token index {bad} is outside dict.{lang}.txt of {data_dir} "
            f"({len(dictionary)} symbols): a corrupt file or another dictionary"
        )


class LanguagePairDataset:
    """The binarized source and target sentences of one split.

    Args:
        data_dir: a directory written by ``nmt-preprocess``.
        split: ``train``, ``valid``, ``valid1``, ``test`` ...
        source_lang: default: the manifest's. The reverse direction of the data also works
            (e.g. en->de from a de-en directory), as in fairseq.
        target_lang: default: the manifest's.

    Attributes:
        src, tgt: the sequences, each ending in ``</s>``; ``tgt`` is None when the split has
            no target side.
        src_dict, tgt_dict: the dictionaries of the two languages.
        src_sizes, tgt_sizes: (num_sentences,) tokens per sentence, ``</s>`` included.
    """

    def __init__(
        self,
        data_dir: str,
        split: str,
        *,
        source_lang: str | None = None,
        target_lang: str | None = None,
    ) -> None:
        manifest = load_manifest(data_dir)
        self.source_lang = source_lang or manifest["source_lang"]
        self.target_lang = target_lang or manifest["target_lang"]
        langs = {manifest["source_lang"], manifest["target_lang"]}
        if {self.source_lang, self.target_lang} != langs:
            raise UserError(
                f"{data_dir} holds {manifest['source_lang']}-{manifest['target_lang']} data, "
                f"not {self.source_lang}-{self.target_lang}"
            )
        if split not in manifest["splits"]:
            have = ", ".join(manifest["splits"]) or "none"
            raise UserError(f"{data_dir}: no split {split!r} (it has: {have})")
        self.split = split
        self.src_dict, self.tgt_dict = load_dictionaries(
            data_dir, self.source_lang, self.target_lang
        )
        src_prefix = self._prefix(data_dir, self.source_lang)
        tgt_prefix = self._prefix(data_dir, self.target_lang)
        if src_prefix is None:
            raise UserError(f"{data_dir}: split {split!r} has no {self.source_lang} side")
        self.src = IndexedDataset(src_prefix)
        self.tgt = IndexedDataset(tgt_prefix) if tgt_prefix is not None else None
        expected = manifest["splits"][split]
        for data in (self.src, self.tgt):
            if data is not None and len(data) != expected:
                raise UserError(
                    f"{data.prefix}: {len(data)} sentences, but {MANIFEST} says {expected}"
                )
        _check_indices(self.src, self.src_dict, data_dir, self.source_lang)
        if self.tgt is not None:
            _check_indices(self.tgt, self.tgt_dict, data_dir, self.target_lang)
        self.src_sizes: np.ndarray = self.src.sizes
        self.tgt_sizes: np.ndarray | None = self.tgt.sizes if self.tgt is not None else None

    def _prefix(self, data_dir: str, lang: str) -> str | None:
        """The file prefix of ``lang`` in this split, trying both language-pair orders
        (a prefix with only one of .bin/.idx is returned so that opening it names the gap)."""
        pairs = (
            f"{self.source_lang}-{self.target_lang}",
            f"{self.target_lang}-{self.source_lang}",
        )
        for pair in pairs:
            prefix = os.path.join(data_dir, f"{self.split}.{pair}.{lang}")
            if os.path.exists(prefix + ".bin") or os.path.exists(prefix + ".idx"):
                return prefix
        return None

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(src_len,) and (tgt_len,) int64 indices of sentence ``index`` (tgt may be None)."""
        return self.src[index], self.tgt[index] if self.tgt is not None else None
