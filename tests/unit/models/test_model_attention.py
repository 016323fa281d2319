"""The cross-attention weights the decoder returns on request (for alignments)."""

import pytest
import torch
from tiny_models import EOS, PAD, SRC_VOCAB, TGT_VOCAB, random_tokens, tiny_model

from nmt_preln.config import NormPosition
from nmt_preln.models.attention import MultiheadAttention


@pytest.mark.parametrize("norm_position", list(NormPosition))
def test_incremental_attention_equals_the_full_forward(norm_position: NormPosition) -> None:
    model = tiny_model(norm_position)
    src = random_tokens([9, 4, 6], vocab=SRC_VOCAB)  # (3, 9), padded
    prev = random_tokens([7, 7, 7], vocab=TGT_VOCAB, first=EOS)  # (3, 7)
    with torch.no_grad():
        enc = model.encode(src)
        logits, attention = model.decode_with_attention(prev, enc)  # (B, T, V), (B, T, S)
        cache = model.init_cache(enc, max_len=prev.size(1))
        steps = [model.decode_step_with_attention(prev[:, t], cache) for t in range(7)]
        plain = model.decode(prev, enc)
    torch.testing.assert_close(logits, plain)  # asking for attention changes no number
    torch.testing.assert_close(torch.stack([a for _, a in steps], 1), attention, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.stack([x for x, _ in steps], 1), plain, atol=1e-5, rtol=1e-5)
    assert attention.shape == (3, 7, 9) and attention.dtype == torch.float32
    pad = src == PAD  # (B, S)
    assert (attention.masked_select(pad[:, None, :].expand_as(attention)) == 0).all()
    torch.testing.assert_close(attention.sum(-1), torch.ones(3, 7))


def test_beams_sharing_a_source_get_their_own_attention() -> None:
    model = tiny_model()
    src = random_tokens([6, 3], vocab=SRC_VOCAB)
    prev = random_tokens([5] * 6, vocab=TGT_VOCAB, first=EOS)  # 3 beams per sentence
    with torch.no_grad():
        enc = model.encode(src)
        cache = model.init_cache(enc, max_len=5)
        model.decode_step_with_attention(prev[::3, 0], cache)  # step 0: one row per sentence
        cache.reorder_beams(torch.tensor([0, 0, 0, 1, 1, 1]))
        steps = [model.decode_step_with_attention(prev[:, t], cache)[1] for t in range(1, 5)]
        _, full = model.decode_with_attention(prev, enc.reorder(torch.tensor([0, 0, 0, 1, 1, 1])))
    torch.testing.assert_close(torch.stack(steps, 1), full[:, 1:], atol=1e-5, rtol=0)


def test_attention_weights_are_the_softmax_that_attend_applies() -> None:
    torch.manual_seed(0)
    attn = MultiheadAttention(16, 4, attention_dropout=0.0, init=tiny_model().cfg.init).eval()
    q, k, v = (torch.randn(2, 4, 3, 4) for _ in range(3))  # (B, H, T, Dh)
    mask = torch.tensor([[True, True, True], [True, False, False]])[:, None, None, :]
    weights = attn.attention_weights(q, k, mask=mask)  # (B, T, S)
    manual = (q @ k.transpose(-1, -2) / 2).masked_fill(~mask, -torch.inf).softmax(-1)
    torch.testing.assert_close(weights, manual.mean(1))
    # attend() = out_proj(heads merged (softmax @ v)): the same probabilities.
    merged = (manual @ v).transpose(1, 2).reshape(2, 3, 16)
    with torch.no_grad():
        torch.testing.assert_close(attn.attend(q, k, v, mask=mask), attn.out_proj(merged))
