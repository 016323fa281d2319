"""The fused label-smoothed loss (issue 6) equals the reference log_softmax formulation."""

import pytest
import torch

from nmt_preln.train.loss import label_smoothed_cross_entropy, label_smoothed_nll_loss

PAD = 1


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.3])
def test_fused_loss_and_gradient_match_the_reference(epsilon: float) -> None:
    torch.manual_seed(0)
    logits = (3 * torch.randn(4, 6, 50, dtype=torch.float64)).requires_grad_()
    target = torch.randint(2, 50, (4, 6))
    target[0, 3:] = PAD
    target[2, 1:] = PAD
    loss, nll = label_smoothed_cross_entropy(logits, target, epsilon=epsilon, pad=PAD)
    (0.7 * loss + 0.2 * nll).backward()  # both outputs carry gradient
    fused_grad, logits.grad = logits.grad, None
    lprobs = torch.log_softmax(logits.reshape(-1, 50), dim=-1)
    ref_loss, ref_nll = label_smoothed_nll_loss(
        lprobs, target.reshape(-1), epsilon=epsilon, ignore_index=PAD
    )
    (0.7 * ref_loss + 0.2 * ref_nll).backward()
    torch.testing.assert_close(loss, ref_loss.float(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(nll, ref_nll.float(), rtol=1e-6, atol=1e-6)
    # the fused kernels compute in float32 whatever the logits dtype
    torch.testing.assert_close(fused_grad, logits.grad, rtol=1e-4, atol=1e-7)
    assert fused_grad[0, 3:].abs().sum() == 0  # pad positions get no gradient


def test_fused_gradient_is_the_analytic_formula() -> None:
    torch.manual_seed(1)
    logits = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([2, 3, PAD, 6, 0])
    loss, _ = label_smoothed_cross_entropy(logits, target, epsilon=0.1, pad=PAD)
    (grad,) = torch.autograd.grad(loss, logits)
    p = logits.softmax(-1)
    onehot = torch.nn.functional.one_hot(target, 7).double()
    eps_i = 0.1 / 6
    expected = (1 - 0.1 - eps_i) * (p - onehot) + eps_i * (7 * p - 1)
    expected[2] = 0
    torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-7)
