"""SentencePiece subword models: learning one, and encoding/decoding with it.

A thin layer over the ``sentencepiece`` package whose job is to turn its errors into one-line
UserErrors and to encode whole batches on all cores (``num_threads``).
"""

from __future__ import annotations

import os
import re

import sentencepiece as spm

from nmt_preln.config import SpmModelType
from nmt_preln.errors import UserError

# Sentences SentencePiece samples for training: enough for a stable 8k-32k vocabulary, and it
# keeps WMT-sized corpora from taking minutes (the SentencePiece README recommends this knob).
INPUT_SENTENCE_SIZE = 5_000_000
TRAIN_SEED = 1  # SentencePiece samples sentences at random: fix the seed for repeatable models


def available_cores() -> int:
    """CPU cores this process may run on (respects taskset/cgroup affinity where visible)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class SentencePieceTokenizer:
    """Encode text into SentencePiece pieces (or their ids) and decode pieces back to text.

    Args:
        model_path: a ``.model`` file written by SentencePiece.
    """

    def __init__(self, model_path: str) -> None:
        if not os.path.isfile(model_path):
            raise UserError(f"{model_path}: SentencePiece model not found")
        with open(model_path, "rb") as f:
            self._init(f.read(), name=model_path)

    @classmethod
    def from_bytes(cls, data: bytes, *, name: str = "<bytes>") -> SentencePieceTokenizer:
        """Load a model from its serialized bytes (as stored in checkpoints)."""
        tokenizer = cls.__new__(cls)
        tokenizer._init(data, name=name)
        return tokenizer

    def _init(self, data: bytes, *, name: str) -> None:
        self.name = name
        self._bytes = data
        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.LoadFromSerializedProto(data)
        except (RuntimeError, OSError):
            raise UserError(f"{name}: not a valid SentencePiece model (corrupt file?)") from None

    @property
    def vocab_size(self) -> int:
        """Number of pieces in the model, specials (``<unk>``, ``<s>``, ``</s>``) included."""
        return int(self._sp.GetPieceSize())

    def pieces(self) -> list[str]:
        """The piece of every id; ids that are not text (unknown, control) give their name
        (``<unk>``, ``<s>``, ``</s>``), which the Dictionary maps to ``<unk>``."""
        return [self._sp.IdToPiece(i) for i in range(self.vocab_size)]

    def encode(self, lines: list[str], *, num_threads: int = 0) -> list[list[str]]:
        """Split each line into pieces. ``num_threads`` 0 uses every available core."""
        return self._sp.Encode(lines, out_type=str, num_threads=_threads(num_threads))

    def encode_ids(self, lines: list[str], *, num_threads: int = 0) -> list[list[int]]:
        """Split each line into piece ids (the model's ids, not a Dictionary's)."""
        return self._sp.Encode(lines, out_type=int, num_threads=_threads(num_threads))

    def decode(self, pieces: list[str]) -> str:
        """Join pieces back into detokenized text."""
        return str(self._sp.DecodePieces(pieces))

    def model_bytes(self) -> bytes:
        """The serialized model, e.g. to store it in a checkpoint."""
        return self._bytes


def _threads(num_threads: int) -> int:
    return num_threads if num_threads > 0 else available_cores()


def train_sentencepiece(
    *,
    inputs: list[str],
    model_prefix: str,
    vocab_size: int,
    model_type: str,
    character_coverage: float,
    num_threads: int,
) -> str:
    """Learn a SentencePiece model on ``inputs`` and write ``MODEL_PREFIX.model`` (+ ``.vocab``).

    Args:
        inputs: text files, one sentence per line (empty lines are ignored by SentencePiece).
        model_prefix: output path without suffix.
        vocab_size: pieces in the model; SentencePiece refuses sizes the text cannot support.
        model_type: ``bpe`` or ``unigram``.
        character_coverage: share of characters covered by the model (1.0 for small alphabets).
        num_threads: training threads; 0 uses every available core.

    Returns:
        The path of the ``.model`` file.
    """
    model_type = SpmModelType(model_type).value
    spm.set_random_generator_seed(TRAIN_SEED)
    try:
        spm.SentencePieceTrainer.train(
            input=inputs,
            model_prefix=model_prefix,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            num_threads=_threads(num_threads),
            input_sentence_size=INPUT_SENTENCE_SIZE,
            shuffle_input_sentence=True,
            minloglevel=2,  # SentencePiece logs every step to stderr; our report says what matters
        )
    except RuntimeError as e:
        raise _training_error(str(e), inputs=inputs, vocab_size=vocab_size) from None
    return model_prefix + ".model"


def _training_error(message: str, *, inputs: list[str], vocab_size: int) -> UserError:
    where = ", ".join(inputs)
    too_high = re.search(r"Vocabulary size too high .*<= (\d+)", message)
    if too_high:
        return UserError(
            f"--spm-vocab-size {vocab_size} is too large for the training text of {where} "
            f"(SentencePiece can make at most {too_high.group(1)} pieces from it); "
            f"use a smaller --spm-vocab-size"
        )
    too_low = re.search(r"smaller than required_chars\. \d+ vs (\d+)", message)
    if too_low:
        return UserError(
            f"--spm-vocab-size {vocab_size} is too small for the characters of {where} "
            f"(needs at least {too_low.group(1)}); raise it or lower --spm-character-coverage"
        )
    # Drop SentencePiece's "INTERNAL: src/file.cc(123) [check] " prefix: it names no user input.
    detail = re.sub(r"^\w+: \S+\(\d+\) \[.*?\] ", "", message.strip()).splitlines()
    return UserError(f"SentencePiece training on {where} failed: {detail[0] if detail else '?'}")
