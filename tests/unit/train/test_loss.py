"""Label-smoothed cross-entropy against a naive reference, pad handling, logging helpers."""

import math

import pytest
import torch
import torch.nn.functional as F

from nmt_preln.train.loss import (
    base2_per_token,
    label_smoothed_cross_entropy,
    perplexity,
)

PAD = 1


@pytest.fixture(autouse=True)
def _one_thread_fixed_seed(one_thread: None) -> None:
    torch.manual_seed(0)


def _naive(logits: torch.Tensor, target: torch.Tensor, eps: float) -> tuple[float, float]:
    """The definition: cross-entropy against an explicit smoothed distribution, pad skipped."""
    vocab = logits.size(-1)
    lprobs = torch.log_softmax(logits.double(), dim=-1).reshape(-1, vocab)
    loss = nll = 0.0
    for row, y in zip(lprobs, target.reshape(-1).tolist(), strict=True):
        if y == PAD:
            continue
        q = torch.full((vocab,), eps / (vocab - 1), dtype=torch.float64)
        q[y] = 1 - eps
        loss += float(-(q * row).sum())
        nll += float(-row[y])
    return loss, nll


def _data(batch: int = 3, length: int = 5, vocab: int = 11) -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.randn(batch, length, vocab) * 3
    target = torch.randint(0, vocab, (batch, length))
    target[0, 3:] = PAD  # a padded row
    target[2, 1] = PAD
    return logits, target


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_matches_the_naive_definition(eps: float) -> None:
    logits, target = _data()
    loss, nll = label_smoothed_cross_entropy(logits, target, epsilon=eps, pad=PAD)
    ref_loss, ref_nll = _naive(logits, target, eps)
    assert loss.item() == pytest.approx(ref_loss, rel=1e-5)
    assert nll.item() == pytest.approx(ref_nll, rel=1e-5)
    assert loss.dim() == 0 and loss.dtype == torch.float32


def test_nll_is_plain_cross_entropy_and_eps_zero_gives_nll() -> None:
    logits, target = _data()
    loss, nll = label_smoothed_cross_entropy(logits, target, epsilon=0.0, pad=PAD)
    expected = F.cross_entropy(
        logits.reshape(-1, 11), target.reshape(-1), ignore_index=PAD, reduction="sum"
    )
    assert nll.item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss.item() == pytest.approx(nll.item(), rel=1e-6)


def test_equals_torch_label_smoothing_with_rescaled_epsilon() -> None:
    # The docstring's claim: fairseq's eps/(V-1) equals torch's a/V with a = eps * V / (V - 1).
    logits, target = _data(vocab=9)
    loss, _ = label_smoothed_cross_entropy(logits, target, epsilon=0.1, pad=PAD)
    torch_loss = F.cross_entropy(
        logits.reshape(-1, 9),
        target.reshape(-1),
        ignore_index=PAD,
        reduction="sum",
        label_smoothing=0.1 * 9 / 8,
    )
    assert loss.item() == pytest.approx(torch_loss.item(), rel=1e-5)


def test_padding_contributes_nothing() -> None:
    logits, target = _data()
    loss, nll = label_smoothed_cross_entropy(logits, target, epsilon=0.1, pad=PAD)
    changed = logits.clone()
    changed[target == PAD] = torch.randn_like(changed[target == PAD]) * 100
    loss2, nll2 = label_smoothed_cross_entropy(changed, target, epsilon=0.1, pad=PAD)
    assert torch.allclose(loss, loss2) and torch.allclose(nll, nll2)
    all_pad = torch.full_like(target, PAD)
    zero, zero_nll = label_smoothed_cross_entropy(logits, all_pad, epsilon=0.1, pad=PAD)
    assert zero.item() == 0.0 and zero_nll.item() == 0.0


def test_half_precision_logits_give_float32_sums_and_gradients() -> None:
    logits, target = _data()
    half = logits.to(torch.bfloat16).requires_grad_()
    loss, nll = label_smoothed_cross_entropy(half, target, epsilon=0.1, pad=PAD)
    ref, _ = label_smoothed_cross_entropy(half.detach().float(), target, epsilon=0.1, pad=PAD)
    assert loss.dtype == nll.dtype == torch.float32
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    loss.backward()
    assert half.grad is not None and half.grad[target == PAD].abs().sum() == 0


def test_base2_and_perplexity() -> None:
    assert base2_per_token(torch.tensor(3 * 10 * math.log(2)), 10) == pytest.approx(3.0)
    assert base2_per_token(5.0, 0) == 0.0
    assert perplexity(3.0) == pytest.approx(8.0)
    assert perplexity(1e6) == math.inf
