"""Properties of the building blocks: Residual placement, attention, FFN initialization."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nmt_preln.config import Activation, InitMethod, NormPosition
from nmt_preln.models.attention import MultiheadAttention
from nmt_preln.models.layers import FeedForward, Residual
from nmt_preln.models.placement import PLACEMENTS


def _row_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x.mean(-1), x.var(-1, unbiased=False)


def test_residual_holds_exactly_one_layernorm_on_the_right_side() -> None:
    pre = Residual(16, placement=PLACEMENTS[NormPosition.pre], dropout=0.0)
    post = Residual(16, placement=PLACEMENTS[NormPosition.post], dropout=0.0)
    assert isinstance(pre.pre_norm, nn.LayerNorm) and isinstance(pre.post_norm, nn.Identity)
    assert isinstance(post.pre_norm, nn.Identity) and isinstance(post.post_norm, nn.LayerNorm)


def test_pre_ln_sublayer_sees_normalized_input_and_output_is_not_normalized() -> None:
    residual = Residual(16, placement=PLACEMENTS[NormPosition.pre], dropout=0.0)
    x = 3.0 + 2.0 * torch.randn(4, 5, 16)  # (B, T, D), far from mean 0 / variance 1
    seen: list[torch.Tensor] = []

    def zero_sublayer(h: torch.Tensor) -> torch.Tensor:
        seen.append(h)
        return torch.zeros_like(h)

    out = residual(x, zero_sublayer)
    mean, var = _row_stats(seen[0])
    assert torch.allclose(mean, torch.zeros_like(mean), atol=1e-5)
    assert torch.allclose(var, torch.ones_like(var), atol=1e-3)
    # x + f(LN(x)) with f = 0 is x itself: the residual stream is never normalized.
    torch.testing.assert_close(out, x)


def test_post_ln_sublayer_sees_raw_input_and_output_is_normalized() -> None:
    residual = Residual(16, placement=PLACEMENTS[NormPosition.post], dropout=0.0)
    x = 3.0 + 2.0 * torch.randn(4, 5, 16)  # (B, T, D)
    seen: list[torch.Tensor] = []

    def shift_sublayer(h: torch.Tensor) -> torch.Tensor:
        seen.append(h)
        return h + 1.0

    out = residual(x, shift_sublayer)
    torch.testing.assert_close(seen[0], x)
    torch.testing.assert_close(out, F.layer_norm(2 * x + 1.0, (16,)))


def test_residual_dropout_applies_to_the_branch_only() -> None:
    residual = Residual(16, placement=PLACEMENTS[NormPosition.pre], dropout=0.5).train()
    x = torch.randn(8, 10, 16)
    out = residual(x, lambda h: torch.zeros_like(h))
    torch.testing.assert_close(out, x)  # dropping a zero branch leaves x untouched
    out = residual(x, lambda h: torch.ones_like(h))
    branch = out - x  # dropout(1) is 0 or 1 / (1 - p) = 2
    dropped = branch.abs() < 1e-5
    kept = (branch - 2.0).abs() < 1e-5
    assert (dropped | kept).all() and dropped.any() and kept.any()


def test_attention_matches_a_plain_softmax_reference() -> None:
    attn = MultiheadAttention(16, 4, attention_dropout=0.0, init=InitMethod.xavier_uniform)
    nn.init.normal_(attn.q_proj.bias)  # nonzero biases so a mix-up of projections shows
    nn.init.normal_(attn.v_proj.bias)
    x = torch.randn(2, 5, 16)  # (B, T, D)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])[:, None, None, :]

    def heads(t: torch.Tensor) -> torch.Tensor:
        return t.view(2, 5, 4, 4).transpose(1, 2)  # (B, H, T, Dh)

    q, k, v = heads(attn.q_proj(x)), heads(attn.k_proj(x)), heads(attn.v_proj(x))
    scores = q @ k.transpose(-1, -2) / math.sqrt(4)  # (B, H, T, T)
    probs = scores.masked_fill(~mask, float("-inf")).softmax(-1)
    expected = attn.out_proj((probs @ v).transpose(1, 2).reshape(2, 5, 16))
    torch.testing.assert_close(attn(x, mask=mask), expected, atol=1e-5, rtol=1e-5)


def _xavier_uniform_bound(linear: nn.Linear, gain: float) -> float:
    fan_out, fan_in = linear.weight.shape
    return gain * math.sqrt(6.0 / (fan_in + fan_out))


def test_attention_init_follows_fairseq() -> None:
    attn = MultiheadAttention(64, 4, attention_dropout=0.0, init=InitMethod.xavier_uniform)
    for proj, gain in [
        (attn.q_proj, 1 / math.sqrt(2)),
        (attn.k_proj, 1 / math.sqrt(2)),
        (attn.v_proj, 1 / math.sqrt(2)),
        (attn.out_proj, 1.0),
    ]:
        bound = _xavier_uniform_bound(proj, gain)
        largest = proj.weight.abs().max().item()
        assert 0.95 * bound < largest <= bound
        assert torch.count_nonzero(proj.bias) == 0


@pytest.mark.parametrize("init", list(InitMethod))
def test_ffn_init_is_plain_xavier_with_zero_bias(init: InitMethod) -> None:
    ffn = FeedForward(64, 256, activation=Activation.relu, activation_dropout=0.0, init=init)
    for linear in (ffn.fc1, ffn.fc2):
        fan_out, fan_in = linear.weight.shape
        expected_std = math.sqrt(2.0 / (fan_in + fan_out))
        assert linear.weight.std().item() == pytest.approx(expected_std, rel=0.1)
        assert torch.count_nonzero(linear.bias) == 0
    uniform = ffn.fc1.weight.abs().max().item() <= _xavier_uniform_bound(ffn.fc1, 1.0)
    assert uniform == (init == InitMethod.xavier_uniform)


def test_ffn_activation_is_configurable() -> None:
    init = InitMethod.xavier_uniform
    relu = FeedForward(8, 16, activation=Activation.relu, activation_dropout=0.0, init=init)
    gelu = FeedForward(8, 16, activation=Activation.gelu, activation_dropout=0.0, init=init)
    gelu.load_state_dict(relu.state_dict())
    x = torch.randn(3, 8)
    assert not torch.allclose(relu(x), gelu(x))
