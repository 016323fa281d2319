"""Learning-rate schedules at update 0, 1, the end of warm-up and late; zero warm-up; resume."""

import math
from dataclasses import replace

import pytest
import torch

from nmt_preln.config import ScheduleConfig, ScheduleName
from nmt_preln.errors import UserError
from nmt_preln.train.schedule import LRScheduler, lr_at, step_inverse_sqrt

PEAK = 5e-4
INIT = 1e-7
EPOCH_DECAY_SCHEDULES = (ScheduleName.step_decay, ScheduleName.step_inverse_sqrt)


def _cfg(name: ScheduleName, warmup: int, **overrides: object) -> ScheduleConfig:
    cfg = ScheduleConfig(name=name, warmup_updates=warmup, warmup_init_lr=INIT, min_lr=1e-6)
    return replace(cfg, **{"total_updates": 1000, "decay_epoch": 3, **overrides})


def _lr(cfg: ScheduleConfig, update: int, epoch: int = 1, start: int | None = None) -> float:
    return lr_at(
        cfg, peak_lr=PEAK, update=update, epoch=epoch, max_update=0, decay_start_update=start
    )


@pytest.mark.parametrize("name", list(ScheduleName))
def test_warmup_starts_at_init_and_reaches_peak_continuously(name: ScheduleName) -> None:
    cfg = _cfg(name, warmup=100)
    assert _lr(cfg, 0) == pytest.approx(INIT)
    assert _lr(cfg, 1) == pytest.approx(INIT + (PEAK - INIT) / 100)
    assert _lr(cfg, 50) == pytest.approx((INIT + PEAK) / 2)
    assert _lr(cfg, 100) == pytest.approx(PEAK)
    step = (PEAK - INIT) / 100
    assert abs(_lr(cfg, 100) - _lr(cfg, 99)) <= step * 1.0001
    assert abs(_lr(cfg, 101) - _lr(cfg, 100)) <= step  # no jump after the warm-up either


@pytest.mark.parametrize("name", list(ScheduleName))
def test_zero_warmup_is_peak_at_updates_0_and_1(name: ScheduleName) -> None:
    cfg = _cfg(name, warmup=0)
    assert _lr(cfg, 0) == PEAK
    assert _lr(cfg, 1) == pytest.approx(PEAK)
    assert 0 < _lr(cfg, 2) <= PEAK


@pytest.mark.parametrize("name", list(ScheduleName))
@pytest.mark.parametrize("warmup", [0, 10])
def test_lr_stays_between_zero_and_peak(name: ScheduleName, warmup: int) -> None:
    cfg = _cfg(name, warmup=warmup)
    for update in range(0, 3000, 37):
        for epoch in (1, 2, 3, 9):
            assert 0 <= _lr(cfg, update, epoch, start=40) <= PEAK * (1 + 1e-12)


def test_inverse_sqrt_late_values() -> None:
    assert _lr(_cfg(ScheduleName.inverse_sqrt, warmup=4000), 16000) == pytest.approx(PEAK / 2)
    no_warmup = _cfg(ScheduleName.inverse_sqrt, warmup=0)
    assert _lr(no_warmup, 4) == pytest.approx(PEAK / 2)
    assert _lr(no_warmup, 10000) == pytest.approx(PEAK / 100)


def test_constant_stays_at_peak() -> None:
    cfg = _cfg(ScheduleName.constant, warmup=10)
    assert _lr(cfg, 10) == _lr(cfg, 10**6) == PEAK


def test_step_decay_multiplies_from_decay_epoch_on() -> None:
    cfg = _cfg(ScheduleName.step_decay, warmup=0, decay_factor=0.1)
    assert _lr(cfg, 500, epoch=2) == PEAK
    assert _lr(cfg, 500, epoch=3) == pytest.approx(PEAK * 0.1)
    assert _lr(cfg, 5000, epoch=30) == pytest.approx(PEAK * 0.1)


def test_step_inverse_sqrt_decays_from_the_recorded_update() -> None:
    cfg = _cfg(ScheduleName.step_inverse_sqrt, warmup=0)
    assert _lr(cfg, 150, epoch=2) == PEAK
    assert _lr(cfg, 101, epoch=3, start=100) == pytest.approx(PEAK * math.sqrt(100 / 101))
    assert _lr(cfg, 400, epoch=3, start=100) == pytest.approx(PEAK / 2)
    # decay from the very first update (decay_epoch 1): peak at update 1, no division by zero
    assert _lr(replace(cfg, decay_epoch=1), 1, epoch=1, start=0) == pytest.approx(PEAK)
    with pytest.raises(ValueError, match="decay_start_update"):
        step_inverse_sqrt(5, 3, peak_lr=PEAK, decay_epoch=3, decay_start_update=None)


@pytest.mark.parametrize("name", [ScheduleName.linear, ScheduleName.cosine])
def test_linear_and_cosine_reach_min_lr_at_total_updates(name: ScheduleName) -> None:
    cfg = _cfg(name, warmup=100)  # total_updates 1000
    assert _lr(cfg, 550) == pytest.approx((PEAK + cfg.min_lr) / 2)
    assert _lr(cfg, 101) < PEAK
    assert _lr(cfg, 1000) == pytest.approx(cfg.min_lr)
    assert _lr(cfg, 5000) == pytest.approx(cfg.min_lr)
    # total_updates 0 falls back to max_update
    fallback = lr_at(
        replace(cfg, total_updates=0), peak_lr=PEAK, update=2000, epoch=1, max_update=2000
    )
    assert fallback == pytest.approx(cfg.min_lr)


def test_invalid_settings_raise_user_errors() -> None:
    with pytest.raises(UserError, match="total_updates"):
        _cfg(ScheduleName.cosine, warmup=10, total_updates=0).validate(max_update=0)
    with pytest.raises(UserError, match="warmup_updates"):
        _cfg(ScheduleName.constant, warmup=-1).validate(max_update=0)
    _cfg(ScheduleName.cosine, warmup=10, total_updates=0).validate(max_update=11)


def _run(scheduler: LRScheduler, optimizer: torch.optim.Optimizer, updates: range) -> list[float]:
    # 50 updates per epoch
    return [scheduler.set_lr(optimizer, update=u, epoch=(u - 1) // 50 + 1) for u in updates]


def test_scheduler_sets_lr_records_decay_start_and_resumes_identically() -> None:
    cfg = _cfg(ScheduleName.step_inverse_sqrt, warmup=10)  # decay_epoch 3 starts after 100
    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([param], lr=PEAK)
    full = LRScheduler(cfg, peak_lr=PEAK, max_update=0)
    lrs = _run(full, optimizer, range(1, 301))
    assert full.decay_start_update == 100
    assert optimizer.param_groups[0]["lr"] == lrs[-1] == pytest.approx(PEAK * math.sqrt(100 / 300))

    first = LRScheduler(cfg, peak_lr=PEAK, max_update=0)
    head = _run(first, optimizer, range(1, 151))
    resumed = LRScheduler(cfg, peak_lr=PEAK, max_update=0)
    resumed.load_state_dict(first.state_dict())
    assert head + _run(resumed, optimizer, range(151, 301)) == lrs
