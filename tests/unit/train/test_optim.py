"""Optimizers for every name, gradient clipping, and the fp16 dynamic loss scaler."""

import math

import pytest
import torch

from nmt_preln.config import HardwareConfig, OptimConfig, Optimizer
from nmt_preln.errors import UserError
from nmt_preln.train.optim import (
    DynamicLossScaler,
    LossScaleError,
    build_optimizer,
    clip_grad_norm,
)


@pytest.fixture(autouse=True)
def _one_thread_fixed_seed(one_thread: None) -> None:
    torch.manual_seed(0)


def _quadratic_steps(optimizer: torch.optim.Optimizer, param: torch.Tensor, n: int) -> list[float]:
    losses = []
    for _ in range(n):
        optimizer.zero_grad()
        loss = ((param - 3.0) ** 2).sum()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("name", list(Optimizer))
@pytest.mark.parametrize("fused", [True, False])
def test_every_optimizer_builds_and_descends(name: Optimizer, fused: bool) -> None:
    param = torch.nn.Parameter(torch.zeros(4))
    cfg = OptimConfig(name=name, lr=0.05, momentum=0.9, fused=fused)
    optimizer = build_optimizer([param], cfg, device="cpu")
    losses = _quadratic_steps(optimizer, param, 30)
    assert losses[-1] < losses[0] * 0.9
    expected_fused = fused and name != Optimizer.radam  # torch has no fused RAdam
    assert bool(optimizer.defaults.get("fused")) is expected_fused


def test_hyperparameters_reach_the_optimizer() -> None:
    param = torch.nn.Parameter(torch.ones(3))
    cfg = OptimConfig(name=Optimizer.adamw, lr=0.01, betas=[0.8, 0.9], eps=1e-6, weight_decay=0.5)
    optimizer = build_optimizer([param], cfg, device=torch.device("cpu"))
    group = optimizer.param_groups[0]
    assert group["betas"] == (0.8, 0.9) and group["eps"] == 1e-6
    param.grad = torch.zeros(3)
    optimizer.step()  # decoupled weight decay alone shrinks the weights
    assert torch.allclose(param.detach(), torch.full((3,), 1 - 0.01 * 0.5))


def test_bad_settings_raise_user_errors() -> None:
    with pytest.raises(UserError, match=r"optim.betas"):
        OptimConfig(betas=[0.9]).validate()
    with pytest.raises(UserError, match=r"optim.lr"):
        OptimConfig(lr=0.0).validate()
    OptimConfig(name=Optimizer.sgd, betas=[]).validate()  # SGD has no betas


def _params_with_grads(*grads: list[float]) -> list[torch.nn.Parameter]:
    params = []
    for g in grads:
        p = torch.nn.Parameter(torch.zeros(len(g)))
        p.grad = torch.tensor(g)
        params.append(p)
    return params


def test_clip_grad_norm_returns_the_norm_before_clipping() -> None:
    params = _params_with_grads([3.0, 0.0], [4.0])  # norm 5
    norm = clip_grad_norm(params, 0.0)
    assert isinstance(norm, torch.Tensor) and norm.item() == pytest.approx(5.0)
    assert params[0].grad is not None and params[0].grad.tolist() == [3.0, 0.0]  # untouched
    norm = clip_grad_norm(params, 1.0)
    assert norm.item() == pytest.approx(5.0)
    assert clip_grad_norm(params, 0.0).item() == pytest.approx(1.0, rel=1e-4)
    assert clip_grad_norm([torch.nn.Parameter(torch.zeros(2))], 1.0).item() == 0.0
    assert not torch.isfinite(clip_grad_norm(_params_with_grads([math.inf]), 1.0))


def _scaler(window: int = 3) -> DynamicLossScaler:
    return DynamicLossScaler(init_scale=8.0, scale_window=window, min_scale=1.0)


def test_overflow_skips_the_step_and_halves_the_scale() -> None:
    param = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.SGD([param], lr=0.1)
    scaler = _scaler()
    param.grad = torch.tensor([math.inf, 1.0])
    stepped = scaler.step(optimizer, grad_norm=clip_grad_norm([param], 0.0))
    assert not stepped and param.detach().tolist() == [1.0, 1.0]
    assert scaler.loss_scale == 4.0
    param.grad = torch.tensor([1.0, 1.0])
    assert scaler.step(optimizer, grad_norm=clip_grad_norm([param], 0.0))
    assert param.detach().tolist() == pytest.approx([0.9, 0.9])


def test_scale_doubles_after_a_window_of_clean_updates() -> None:
    scaler = _scaler(window=3)
    for _ in range(2):
        scaler.update(overflow=False)
    assert scaler.loss_scale == 8.0
    scaler.update(overflow=True)  # resets the count
    for _ in range(2):
        scaler.update(overflow=False)
    assert scaler.loss_scale == 4.0
    scaler.update(overflow=False)
    assert scaler.loss_scale == 8.0


def test_scale_below_the_floor_raises_a_clear_error() -> None:
    scaler = _scaler()
    for _ in range(3):
        scaler.update(overflow=True)  # 8 -> 4 -> 2 -> 1 (the floor itself is allowed)
    with pytest.raises(LossScaleError, match=r"keeps overflowing.*optim.lr.*bf16") as info:
        scaler.update(overflow=True)
    assert isinstance(info.value, UserError) and isinstance(info.value, FloatingPointError)
    assert "\n" not in str(info.value)


def test_scale_and_unscale_round_trip_with_multiplier() -> None:
    scaler = _scaler()
    assert scaler.scale(torch.tensor(2.0)).item() == 16.0
    params = _params_with_grads([16.0, 32.0])
    scaler.unscale_(params, multiplier=0.5)
    assert params[0].grad is not None and params[0].grad.tolist() == [1.0, 2.0]


def test_scaler_state_round_trip_and_config() -> None:
    scaler = _scaler(window=5)
    scaler.update(overflow=True)
    scaler.update(overflow=False)
    restored = _scaler(window=5)
    restored.load_state_dict(scaler.state_dict())
    assert restored.state_dict() == {"loss_scale": 4.0, "clean_updates": 1}
    for _ in range(4):
        restored.update(overflow=False)
    assert restored.loss_scale == 8.0  # the restored count continues, not restarts
    hw = HardwareConfig(fp16_init_scale=64.0, fp16_scale_window=7, min_loss_scale=0.5)
    from_cfg = DynamicLossScaler.from_config(hw)
    assert (from_cfg.loss_scale, from_cfg.scale_window, from_cfg.min_scale) == (64.0, 7, 0.5)
