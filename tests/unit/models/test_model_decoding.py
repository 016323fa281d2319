"""Incremental decoding, reordering, padding invariance and causality of the Transformer."""

import pytest
import torch
from tiny_models import EOS, PAD, SRC_VOCAB, TGT_VOCAB, random_tokens, tiny_model

from nmt_preln.config import NormPosition
from nmt_preln.models.transformer import DecoderCache, Transformer

PLACEMENTS = pytest.mark.parametrize("norm_position", list(NormPosition))


def _reorder(cache: DecoderCache, order: torch.Tensor) -> None:
    """Any reordering: new row i is old row order[i], each with its own sentence's source."""
    cache.reorder_beams(order, torch.div(order, cache.group, rounding_mode="floor"))


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Sources of different lengths (right-padded) and </s>-initial target prefixes."""
    src = random_tokens([9, 4, 6], vocab=SRC_VOCAB)  # (3, 9)
    prev = random_tokens([7, 7, 7], vocab=TGT_VOCAB, first=EOS)  # (3, 7)
    return src, prev


def _decode_steps(model: Transformer, prev: torch.Tensor, cache: DecoderCache) -> torch.Tensor:
    """Feed prev (B, T) one column at a time; logits (B, T, V)."""
    return torch.stack([model.decode_step(prev[:, t], cache) for t in range(prev.size(1))], 1)


@PLACEMENTS
@pytest.mark.parametrize("learned_positions", [False, True])
def test_incremental_decoding_equals_full_decoding(
    norm_position: NormPosition, learned_positions: bool
) -> None:
    model = tiny_model(norm_position, learned_positions=learned_positions)
    src, prev = _batch()
    with torch.no_grad():
        full = model(src, prev)  # (B, T, V)
        enc = model.encode(src)
        cache = model.init_cache(enc, max_len=prev.size(1) + 3)
        steps = _decode_steps(model, prev, cache)
    assert steps.dtype == torch.float32 and cache.step == prev.size(1)
    torch.testing.assert_close(steps, full, atol=1e-5, rtol=1e-5)


@PLACEMENTS
def test_incremental_decoding_after_reorder(norm_position: NormPosition) -> None:
    model = tiny_model(norm_position)
    src, prev = _batch()
    order = torch.tensor([2, 0, 0, 1])  # beam-search style: repeat, permute, grow the batch
    with torch.no_grad():
        enc = model.encode(src)
        cache = model.init_cache(enc, max_len=prev.size(1))
        _decode_steps(model, prev[:, :3], cache)
        _reorder(cache, order)
        rest = _decode_steps(model, prev[order, 3:], cache)
        full = model(src[order], prev[order])
    torch.testing.assert_close(rest, full[:, 3:], atol=1e-5, rtol=1e-5)


@PLACEMENTS
def test_beam_reorder_shares_one_encoder_state_per_sentence(norm_position: NormPosition) -> None:
    model = tiny_model(norm_position)
    src, _ = _batch()  # 3 sentences
    beams = 2
    rows = torch.arange(3).repeat_interleave(beams)  # (6,) row -> its sentence
    targets = random_tokens([7] * 6, vocab=TGT_VOCAB, first=EOS)  # (6, 7): each beam differs
    with torch.no_grad():
        cache = model.init_cache(model.encode(src), max_len=7)
        cache.reorder_beams(rows)  # expand: beams rows per sentence, kept=None
        assert cache.cross_k.shape[1] == 3 and cache.group == beams
        first = _decode_steps(model, targets[:, :3], cache)
        order = torch.tensor([3, 3, 5, 4])  # sentence 0 finished; beams move within sentences
        cache.reorder_beams(order, torch.tensor([1, 2]))
        assert cache.cross_k.shape[1] == 2 and cache.group == 2
        rest = _decode_steps(model, targets[order, 3:], cache)
        full = model(src[rows], targets)  # (6, 7, V): every row with its own encoder copy
    torch.testing.assert_close(first, full[:, :3], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rest, full[order, 3:], atol=1e-5, rtol=1e-5)


def test_reorder_with_same_batch_size_reuses_the_buffers() -> None:
    model = tiny_model()
    src, prev = _batch()
    with torch.no_grad():
        enc = model.encode(src)
        cache = model.init_cache(enc, max_len=10)
        _decode_steps(model, prev[:, :2], cache)
        pointers = {cache.self_k.data_ptr()}
        for order in ([1, 2, 0], [2, 0, 1], [0, 1, 2], [0, 2]):  # [0, 2]: one sentence left
            _reorder(cache, torch.tensor(order))
            pointers.add(cache.self_k.data_ptr())
        assert len(pointers) == 2  # the cache's buffer and its one spare, swapped
        assert cache.self_k.shape[1] == 2 and cache.cross_v.shape[1] == 2


def test_cache_is_preallocated_and_bounded() -> None:
    model = tiny_model()
    src, prev = _batch()
    with torch.no_grad():
        enc = model.encode(src)
        cache = model.init_cache(enc, max_len=2)
        # (layers, batch, heads, max_len, head_dim) and (layers, batch, heads, src_len, head_dim)
        assert cache.self_k.shape == (2, 3, 4, 2, 8) and cache.cross_k.shape == (2, 3, 4, 9, 8)
        pointer = cache.self_k.data_ptr()
        _decode_steps(model, prev[:, :2], cache)
        assert cache.self_k.data_ptr() == pointer
        with pytest.raises(ValueError, match="max_len"):
            model.decode_step(prev[:, 2], cache)


@PLACEMENTS
def test_logits_do_not_depend_on_padding_or_batch_mates(norm_position: NormPosition) -> None:
    model = tiny_model(norm_position)
    src, prev = _batch()
    with torch.no_grad():
        together = model(src, prev)  # (3, T, V)
        for row, length in enumerate([9, 4, 6]):
            alone = model(src[row : row + 1, :length], prev[row : row + 1])
            torch.testing.assert_close(alone[0], together[row], atol=1e-5, rtol=1e-5)
        extra_pad = torch.cat([src, torch.full((3, 5), PAD)], dim=1)  # (3, 14)
        torch.testing.assert_close(model(extra_pad, prev), together, atol=1e-5, rtol=1e-5)


@PLACEMENTS
def test_padding_changes_nothing_only_when_masked(norm_position: NormPosition) -> None:
    # Guard for the test above: the same extra tokens, if not pad, do change the logits.
    model = tiny_model(norm_position)
    src, prev = _batch()
    noise = torch.randint(4, SRC_VOCAB, (3, 5))
    with torch.no_grad():
        changed = model(torch.cat([src, noise], dim=1), prev)
        assert not torch.allclose(changed, model(src, prev), atol=1e-4)


@PLACEMENTS
def test_future_target_tokens_do_not_change_earlier_logits(norm_position: NormPosition) -> None:
    model = tiny_model(norm_position)
    src, prev = _batch()
    changed = prev.clone()
    changed[:, 4:] = torch.randint(4, TGT_VOCAB, (3, 3))
    with torch.no_grad():
        before, after = model(src, prev), model(src, changed)
    torch.testing.assert_close(after[:, :4], before[:, :4], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(after[:, 4:], before[:, 4:], atol=1e-4)
