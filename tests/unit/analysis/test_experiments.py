"""The shipped experiment configs: every paper run has a CPU-scale twin with the paper's ratios."""

from __future__ import annotations

from functools import cache

import pytest

from nmt_preln.compose import compose_train_config, group_options
from nmt_preln.config import NormPosition, ScheduleName, TrainConfig

# Updates per epoch behind the warm-up ratios (conf/experiment/*/_base.yaml, docs/REPRODUCTION.md).
UPDATES_PER_EPOCH = {"iwslt14": 1100, "wmt14": 5400, "cpu": 129}


@cache  # each config is composed once for all tests (read-only use)
def compose(name: str) -> TrainConfig:
    return compose_train_config([f"+experiment={name}", "data.path=d"])[0]


def paper_runs() -> list[tuple[str, str]]:
    """(paper-scale option, its CPU-scale twin)."""
    runs = []
    for name in group_options("experiment"):
        scale, stem = name.split("/")
        if scale in ("iwslt14", "wmt14") and not stem.startswith("_"):
            runs.append((name, f"cpu/{stem}" if scale == "iwslt14" else f"cpu/wmt_{stem}"))
    return runs


def test_the_paper_runs_are_all_there() -> None:
    names = {p for p, _ in paper_runs()}
    for opt in ("adam", "sgd"):
        for lr in ("5e-4", "1e-3"):
            for warmup in ("warmup4000", "warmup500", "nowarmup"):
                assert f"iwslt14/postln_{opt}_{lr}_{warmup}" in names
    fig4 = {
        "iwslt14/preln_adam_5e-4_stepdecay",
        "iwslt14/preln_radam_5e-4_stepdecay",
        "iwslt14/postln_radam_5e-4_stepdecay",
        "wmt14/preln_adam_7e-4_stepinvsqrt",
        "wmt14/preln_adam_1.5e-3_stepinvsqrt",
        "wmt14/postln_adam_7e-4_warmup4000",
    }
    assert fig4 <= names


@pytest.mark.parametrize("paper,cpu", paper_runs())
def test_cpu_twin_keeps_the_papers_settings_and_ratios(paper: str, cpu: str) -> None:
    big, small = compose(paper), compose(cpu)
    assert big.arch.norm_position is small.arch.norm_position
    assert (big.optim.name, big.optim.lr) == (small.optim.name, small.optim.lr)
    assert big.schedule.name is small.schedule.name
    assert big.label_smoothing == small.label_smoothing == 0.1
    scale = paper.split("/")[0]
    ratio = big.schedule.warmup_updates / UPDATES_PER_EPOCH[scale]
    assert small.schedule.warmup_updates / UPDATES_PER_EPOCH["cpu"] == pytest.approx(
        ratio, abs=0.01
    )
    assert big.validate_bleu and small.validate_bleu
    assert small.arch.d_model <= 128 and small.hardware.num_threads == 1


@pytest.mark.parametrize("paper,cpu", paper_runs())
def test_names_say_what_the_config_does(paper: str, cpu: str) -> None:
    cfg = compose(paper)
    stem = paper.split("/")[1]
    placement, optimizer, lr, schedule = stem.split("_")
    assert cfg.arch.norm_position is (
        NormPosition.pre if placement == "preln" else NormPosition.post
    )
    assert cfg.optim.name.value == optimizer
    assert cfg.optim.lr == float(lr)
    expected = {"stepdecay": ScheduleName.step_decay, "stepinvsqrt": ScheduleName.step_inverse_sqrt}
    assert cfg.schedule.name is expected.get(schedule, ScheduleName.inverse_sqrt)
    if schedule.startswith("warmup"):
        assert cfg.schedule.warmup_updates == int(schedule.removeprefix("warmup"))
    else:
        assert cfg.schedule.warmup_updates == 0


def test_paper_scale_models_are_the_papers() -> None:
    iwslt = compose("iwslt14/preln_adam_5e-4_stepdecay").arch
    assert (iwslt.encoder_layers, iwslt.d_model, iwslt.ffn_dim, iwslt.num_heads) == (
        6,
        512,
        1024,
        4,
    )
    wmt = compose("wmt14/preln_adam_7e-4_stepinvsqrt")
    assert (wmt.arch.d_model, wmt.arch.ffn_dim, wmt.arch.num_heads, wmt.update_freq) == (
        512,
        2048,
        8,
        8,
    )
    assert compose("iwslt14/preln_adam_5e-4_stepdecay").schedule.decay_epoch == 8
    assert wmt.schedule.decay_epoch == 6
