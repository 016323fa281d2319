"""Properties of the norm placements: what each builds, DeepNorm's constants, Sandwich-LN.

Incremental decoding == full forward and padding invariance are checked for every placement
by the ``list(NormPosition)`` parametrizations of test_model_decoding.py and
test_model_attention.py.
"""

from dataclasses import replace

import pytest
import torch
from tiny_models import tiny_config, tiny_model
from torch import nn

from nmt_preln.compose import compose_train_config
from nmt_preln.config import NormPosition
from nmt_preln.models.layers import Residual
from nmt_preln.models.placement import (
    PLACEMENTS,
    deepnorm_alpha,
    deepnorm_beta,
    placement_of,
)


def test_every_norm_position_has_one_placement() -> None:
    assert set(PLACEMENTS) == set(NormPosition)
    for name, placement in PLACEMENTS.items():
        assert placement.name == name and placement_of(name.value) is placement


@pytest.mark.parametrize("norm_position", list(NormPosition))
@pytest.mark.parametrize("size", ["", "_tiny", "_small", "_base"])
def test_arch_option_and_its_sizes_select_the_placement(
    norm_position: NormPosition, size: str
) -> None:
    option = f"{PLACEMENTS[norm_position].arch_option}{size}"
    cfg, _ = compose_train_config([f"+arch={option}", "data.path=d"])
    assert cfg.arch.norm_position == norm_position
    pre, _ = compose_train_config([f"+arch=preln{size}", "data.path=d"])
    assert replace(cfg.arch, norm_position=NormPosition.pre) == pre.arch  # same dimensions


@pytest.mark.parametrize("norm_position", list(NormPosition))
def test_stacks_end_in_a_final_norm_exactly_when_the_placement_says(
    norm_position: NormPosition,
) -> None:
    model = tiny_model(norm_position)
    expected = nn.LayerNorm if PLACEMENTS[norm_position].final_norm else nn.Identity
    assert isinstance(model.encoder.final_norm, expected)
    assert isinstance(model.decoder.final_norm, expected)


@pytest.mark.parametrize(("n", "m"), [(6, 6), (18, 18), (12, 3)])
def test_deepnorm_constants_are_the_papers_encoder_decoder_ones(n: int, m: int) -> None:
    assert deepnorm_alpha(n, m, "encoder") == pytest.approx(0.81 * (n**4 * m) ** 0.0625)
    assert deepnorm_beta(n, m, "encoder") == pytest.approx(0.87 / (n**4 * m) ** 0.0625)
    assert deepnorm_alpha(n, m, "decoder") == pytest.approx((3 * m) ** 0.25)
    assert deepnorm_beta(n, m, "decoder") == pytest.approx((12 * m) ** -0.25)
    # Deeper models: a stronger skip connection and smaller branches at initialization.
    assert deepnorm_alpha(2 * n, 2 * m, "encoder") > deepnorm_alpha(n, m, "encoder") > 1
    assert deepnorm_beta(2 * n, 2 * m, "decoder") < deepnorm_beta(n, m, "decoder") < 1


def test_deepnorm_model_scales_each_sides_residuals_by_its_alpha() -> None:
    model = tiny_model(NormPosition.deepnorm, encoder_layers=3, decoder_layers=2)
    enc, dec = deepnorm_alpha(3, 2, "encoder"), deepnorm_alpha(3, 2, "decoder")
    residuals = [m for m in model.encoder.modules() if isinstance(m, Residual)]
    assert len(residuals) == 3 * 2 and all(r.alpha == enc for r in residuals)
    residuals = [m for m in model.decoder.modules() if isinstance(m, Residual)]
    assert len(residuals) == 2 * 3 and all(r.alpha == dec for r in residuals)
    for placement in (NormPosition.pre, NormPosition.post, NormPosition.sandwich):
        assert all(
            r.alpha == 1.0 for r in tiny_model(placement).modules() if isinstance(r, Residual)
        )


def test_deepnorm_residual_computes_layernorm_of_alpha_x_plus_branch() -> None:
    residual = Residual(16, placement=PLACEMENTS[NormPosition.deepnorm], dropout=0.0, alpha=2.5)
    x = torch.randn(3, 4, 16)  # (B, T, D)
    branch = torch.randn(3, 4, 16)
    expected = nn.functional.layer_norm(2.5 * x + branch, (16,))
    torch.testing.assert_close(residual(x, lambda h: branch), expected)
    assert not torch.allclose(expected, nn.functional.layer_norm(x + branch, (16,)))


def test_deepnorm_init_scales_ffn_value_and_output_projections_by_beta_only() -> None:
    # The same seed draws the same numbers; DeepNorm only rescales some of them.
    torch.manual_seed(3)
    post = tiny_model(NormPosition.post, encoder_layers=3, decoder_layers=2)
    torch.manual_seed(3)
    deep = tiny_model(NormPosition.deepnorm, encoder_layers=3, decoder_layers=2)
    betas = {"encoder": deepnorm_beta(3, 2, "encoder"), "decoder": deepnorm_beta(3, 2, "decoder")}
    deep_params = dict(deep.named_parameters())
    scaled = 0
    for name, p_post in post.named_parameters():
        p_deep = deep_params[name]
        beta = betas[name.split(".")[0]] if name.endswith("weight") else 1.0
        if any(k in name for k in ("fc1.", "fc2.", "v_proj.", "out_proj.")) and beta != 1.0:
            torch.testing.assert_close(p_deep, beta * p_post, rtol=1e-5, atol=1e-7)
            scaled += 1
        else:
            assert torch.equal(p_deep, p_post), name
    # encoder: 3 layers x (fc1, fc2, v, out); decoder: 2 layers x (fc1, fc2, 2 x (v, out))
    assert scaled == 3 * 4 + 2 * 6


def test_sandwich_adds_a_normalized_branch_to_an_unnormalized_stream() -> None:
    residual = Residual(16, placement=PLACEMENTS[NormPosition.sandwich], dropout=0.0)
    x = 3.0 + 2.0 * torch.randn(4, 5, 16)  # (B, T, D), far from mean 0 / variance 1
    seen: list[torch.Tensor] = []

    def large_branch(h: torch.Tensor) -> torch.Tensor:
        seen.append(h)
        return 50.0 * h + 7.0

    added = residual(x, large_branch) - x  # (B, T, D)
    for t in (seen[0], added):  # the branch sees LN(x) and adds LN(f(LN(x)))
        assert t.mean(-1).abs().max() < 1e-4
        assert (t.var(-1, unbiased=False) - 1).abs().max() < 1e-3


def test_sandwich_is_pre_ln_plus_the_branch_norms() -> None:
    pre = tiny_model(NormPosition.pre)
    sandwich = tiny_model(NormPosition.sandwich)
    extra = set(sandwich.state_dict()) - set(pre.state_dict())
    assert extra and all(".branch_norm." in k for k in extra)
    assert set(pre.state_dict()) <= set(sandwich.state_dict())
    assert len(extra) == 2 * (2 * 2 + 2 * 3)  # weight + bias per block


@pytest.mark.parametrize("norm_position", list(NormPosition))
def test_every_placement_trains_one_step_to_a_finite_loss(norm_position: NormPosition) -> None:
    cfg = tiny_config(norm_position)
    model = tiny_model(norm_position).train()
    src = torch.randint(4, 40, (3, 6))
    prev = torch.randint(4, 48, (3, 5))
    logits = model(src, prev)  # (B, T, V)
    logits.logsumexp(-1).mean().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert cfg.norm_position == norm_position
