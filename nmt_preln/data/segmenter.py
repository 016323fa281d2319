"""Text <-> pieces: SentencePiece, or pre-segmented text and fairseq's ``--post-process``.

:func:`post_process` is fairseq 0.12's ``post_process`` of ``--post-process``/``--remove-bpe``
(the same option there): it turns the space-joined pieces of an S-/T-/H- line into text.
:class:`Segmenter` is what ``nmt-generate`` and validation BLEU use to go from text to pieces
and back for one language.
"""

from __future__ import annotations

import re
from typing import Protocol

# fairseq 0.12.2's post-process symbols; "subword_nmt", "@@ " and "@@" all remove "@@ ".
POST_PROCESS = ("sentencepiece", "wordpiece", "letter", "silence", "_EOW", "subword_nmt", "@@ ",
                "@@", "none")  # fmt: skip


class _Tokenizer(Protocol):
    def encode(self, lines: list[str], *, num_threads: int = 0) -> list[list[str]]: ...

    def decode(self, pieces: list[str]) -> str: ...


def post_process(sentence: str, symbol: str | None) -> str:
    """Apply fairseq's ``--post-process SYMBOL`` to space-joined pieces (None: unchanged).

    ``sentencepiece``: drop the spaces, then each U+2581 becomes a space, then strip.
    ``subword_nmt`` / ``@@ `` / ``@@``: delete the ``@@ `` continuation marker.
    ``wordpiece`` / ``letter`` / ``_EOW``: the same with ``_`` / ``|`` / ``_EOW`` as the word
    boundary; ``silence``: drop ``<SIL>``; ``none``: unchanged.
    """
    if symbol is None or symbol == "none":
        return sentence
    boundary = {"sentencepiece": "\u2581", "wordpiece": "_", "letter": "|", "_EOW": "_EOW"}
    if symbol in boundary:
        return sentence.replace(" ", "").replace(boundary[symbol], " ").strip()
    if symbol == "silence":
        return re.sub(" +", " ", sentence.replace("<SIL>", "")).strip()
    if symbol in ("subword_nmt", "@@ ", "@@"):
        marker = "@@ " if symbol == "subword_nmt" else symbol
        return (sentence + " ").replace(marker, "").rstrip()
    raise ValueError(f"unknown post-process symbol {symbol!r}")  # validate() refuses it first


class Segmenter:
    """Text <-> pieces for one language: SentencePiece, or pre-segmented text.

    Args:
        tokenizer: a SentencePiece tokenizer, or None when the data is already segmented.
        remove_bpe: for pre-segmented data, how to detokenize: a fairseq ``--post-process``
            symbol (``"sentencepiece"``, ``"subword_nmt"``, ...) or a continuation marker to
            delete (e.g. ``"@@ "``); None keeps the pieces.
    """

    def __init__(self, tokenizer: _Tokenizer | None, *, remove_bpe: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.remove_bpe = remove_bpe

    def encode(self, lines: list[str]) -> list[list[str]]:
        """Lines -> pieces; one thread, since other work shares the cores."""
        if self.tokenizer is None:
            return [line.split() for line in lines]
        return self.tokenizer.encode(lines, num_threads=1)

    def decode(self, pieces: str) -> str:
        """Space-joined pieces -> text."""
        if self.tokenizer is not None:
            return self.tokenizer.decode(pieces.split())
        if self.remove_bpe in POST_PROCESS:  # fairseq's symbols: sentencepiece, subword_nmt...
            return post_process(pieces, self.remove_bpe)
        if self.remove_bpe:  # any other marker, deleted like "@@ "
            return (pieces + " ").replace(self.remove_bpe, "").rstrip()
        return pieces
