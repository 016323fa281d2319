"""SentencePiece: learning, encoding on several threads, model bytes, clear errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from nmt_preln.data.tokenizer import SentencePieceTokenizer, train_sentencepiece
from nmt_preln.errors import UserError


def _train(prefix: str, tmp_path: Path, *, vocab: int = 50, model_type: str = "bpe") -> str:
    return train_sentencepiece(
        inputs=[prefix + ".de", prefix + ".en"],
        model_prefix=str(tmp_path / "m"),
        vocab_size=vocab,
        model_type=model_type,
        character_coverage=1.0,
        num_threads=1,
    )


@pytest.mark.parametrize("model_type", ["bpe", "unigram"])
def test_encode_decode_round_trip(
    corpus: Callable[..., str], tmp_path: Path, model_type: str
) -> None:
    prefix = corpus("train", 200)
    tok = SentencePieceTokenizer(_train(prefix, tmp_path, model_type=model_type))
    assert tok.vocab_size == 50
    lines = Path(prefix + ".de").read_text(encoding="utf-8").splitlines()[:20]
    pieces = tok.encode(lines, num_threads=2)
    assert [tok.decode(p) for p in pieces] == lines
    ids = tok.encode_ids(lines, num_threads=2)
    vocab = tok.pieces()
    assert [[vocab[i] for i in seq] for seq in ids] == pieces
    assert max(len(piece) for seq in pieces for piece in seq) > 2  # merges were learned


def test_model_bytes_round_trip(corpus: Callable[..., str], tmp_path: Path) -> None:
    tok = SentencePieceTokenizer(_train(corpus("train", 200), tmp_path))
    clone = SentencePieceTokenizer.from_bytes(tok.model_bytes())
    assert clone.encode(["der hund läuft"]) == tok.encode(["der hund läuft"])


def test_missing_and_corrupt_models(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"nope\.model: SentencePiece model not found"):
        SentencePieceTokenizer(str(tmp_path / "nope.model"))
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"this is not a protobuf")
    with pytest.raises(UserError, match=r"bad\.model: not a valid SentencePiece model"):
        SentencePieceTokenizer(str(bad))


def test_vocab_too_large_suggests_smaller(corpus: Callable[..., str], tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"--spm-vocab-size 8000 is too large .*at most \d+") as e:
        _train(corpus("train", 30), tmp_path, vocab=8000)
    assert "smaller --spm-vocab-size" in str(e.value)


def test_vocab_too_small_names_the_minimum(corpus: Callable[..., str], tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"--spm-vocab-size 5 is too small .*at least \d+"):
        _train(corpus("train", 30), tmp_path, vocab=5)
