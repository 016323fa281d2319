"""Every shipped config composes; bad overrides fail before any work with one line."""

from __future__ import annotations

import dataclasses

import pytest

from nmt_preln.compose import (
    UsageError,
    compose_config,
    compose_train_config,
    group_options,
    to_dataclass,
)
from nmt_preln.config import (
    GenerateConfig,
    NormPosition,
    PreprocessConfig,
    ScheduleName,
    SearchConfig,
    TrainConfig,
)
from nmt_preln.errors import UserError
from nmt_preln.flags import build_parser, parse_config

BASE = ["+arch=preln", "data.path=some/dir"]


@pytest.mark.parametrize("arch", group_options("arch"))
def test_every_arch_composes(arch: str) -> None:
    cfg, _ = compose_train_config([f"+arch={arch}", "data.path=d"])
    assert isinstance(cfg, TrainConfig)
    # Each family names its placement: postln_* -> post, deepnorm_* -> deepnorm, preln_* -> pre.
    family = arch.split("_")[0]
    expected = {"postln": NormPosition.post, "preln": NormPosition.pre}.get(family)
    expected = expected or NormPosition(family)
    assert cfg.arch.norm_position is expected
    assert cfg.arch.d_model % cfg.arch.num_heads == 0


@pytest.mark.parametrize(
    "group,option",
    [(g, o) for g in ("data", "optim", "schedule", "hardware") for o in group_options(g)],
)
def test_every_group_option_composes(group: str, option: str) -> None:
    cfg, _ = compose_train_config([*BASE, f"{group}={option}"])
    assert isinstance(cfg, TrainConfig)


@pytest.mark.parametrize("experiment", group_options("experiment"))
def test_every_experiment_composes(experiment: str) -> None:
    cfg, _ = compose_train_config([f"+experiment={experiment}", "data.path=d"])
    assert isinstance(cfg, TrainConfig)
    cfg.validate()  # a shipped recipe passes nmt-train's own rules


def test_the_mechanism_runs_differ_only_in_placement_and_warmup() -> None:
    runs = {
        name: dataclasses.asdict(
            compose_train_config([f"+experiment=mechanism/{name}", "data.path=d"])[0]
        )
        for name in ("postln_nowarmup", "postln_warmup", "preln_nowarmup")
    }
    base = runs["postln_nowarmup"]
    assert (base["arch"]["d_model"], base["arch"]["encoder_layers"], base["optim"]["lr"]) == (
        512,
        6,
        1e-3,
    )
    for name, cfg in runs.items():
        changed = {
            (group, key)
            for group, values in cfg.items()
            if isinstance(values, dict)
            for key, value in values.items()
            if base[group][key] != value
        } | {
            key for key, value in cfg.items() if not isinstance(value, dict) and base[key] != value
        }
        expected = {
            "postln_nowarmup": set(),
            "postln_warmup": {("schedule", "warmup_updates")},
            "preln_nowarmup": {("arch", "norm_position")},
        }[name]
        assert changed == expected, name


@pytest.mark.parametrize(
    "name,cls,required",
    [
        ("preprocess", PreprocessConfig, {"source_lang": "de", "target_lang": "en"}),
        ("generate", GenerateConfig, {"data": "d", "path": "m.pt"}),
    ],
)
def test_primary_configs_of_other_commands_compose(name: str, cls: type, required: dict) -> None:
    cfg = compose_config(name, [])
    for key, value in required.items():
        cfg[key] = value
    assert isinstance(to_dataclass(cfg), cls)


def test_postln_differs_from_preln_only_in_norm_position() -> None:
    pre, _ = compose_train_config(["+arch=preln", "data.path=d"])
    post, _ = compose_train_config(["+arch=postln", "data.path=d"])
    assert dataclasses.replace(post.arch, norm_position=NormPosition.pre) == pre.arch


def test_iwslt_preset_has_fairseq_numbers() -> None:
    cfg, _ = compose_train_config(["+arch=preln", "data.path=d"])
    a = cfg.arch
    assert (a.encoder_layers, a.decoder_layers, a.d_model, a.ffn_dim, a.num_heads) == (
        6,
        6,
        512,
        1024,
        4,
    )
    base, _ = compose_train_config(["+arch=postln_base", "data.path=d"])
    assert (base.arch.ffn_dim, base.arch.num_heads) == (2048, 8)
    big, _ = compose_train_config(["+arch=preln_big", "data.path=d"])
    assert (big.arch.d_model, big.arch.ffn_dim, big.arch.num_heads) == (1024, 4096, 16)


def test_overrides_reach_the_dataclass() -> None:
    cfg, _ = compose_train_config([*BASE, "optim.lr=1e-3", "schedule=no_warmup", "max_update=7"])
    assert cfg.optim.lr == pytest.approx(1e-3)
    assert cfg.schedule.name is ScheduleName.inverse_sqrt and cfg.schedule.warmup_updates == 0
    assert cfg.max_update == 7


def test_missing_arch_lists_the_choices() -> None:
    with pytest.raises(UserError) as info:
        compose_train_config(["data.path=d"])
    message = str(info.value)
    assert "\n" not in message
    for option in ("preln", "postln", "preln_base", "postln_big", "preln_tiny"):
        assert option in message


@pytest.mark.parametrize(
    "override,needle",
    [
        ("foo=1", "foo"),
        ("optim.lr=abc", "optim.lr"),
        ("arch.norm_position=middle", "middle"),
        ("optim.name=lamb", "lamb"),
        ("data.max_tokens=1.5", "data.max_tokens"),
        ("schedule=nonexistent", "nonexistent"),
        ("optim.lr=1e-3)", "optim.lr"),
        ("hardware.precision=fp8", "fp8"),
    ],
)
def test_bad_overrides_fail_with_one_line(override: str, needle: str) -> None:
    with pytest.raises(UserError) as info:
        compose_train_config([*BASE, override])
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_missing_data_path_is_reported() -> None:
    with pytest.raises(UserError, match=r"data\.path"):
        compose_train_config(["+arch=preln"])


def test_flags_follow_fairseq_spelling_and_round_trip() -> None:
    flags = build_parser(PreprocessConfig, prog="p", description="")._option_string_actions
    for flag in ("--source-lang", "--trainpref", "--joined-dictionary", "--nwordssrc", "--workers"):
        assert flag in flags
    cfg = parse_config(
        GenerateConfig,
        ["dir", "--path", "m.pt", "--beam", "4", "--lenpen", "1.2", "--output-format", "plain"],
        prog="g",
        description="",
        positional=("data",),
    )
    assert (cfg.data, cfg.path, cfg.search.beam, cfg.search.lenpen) == ("dir", "m.pt", 4, 1.2)
    assert cfg.output_format.value == "plain"


def test_list_fields_take_several_values() -> None:
    from nmt_preln.tools_config import AverageConfig

    cfg = parse_config(
        AverageConfig, ["--inputs", "a.pt", "b.pt", "--output", "avg.pt"], prog="a", description=""
    )
    assert cfg.inputs == ["a.pt", "b.pt"] and cfg.output == "avg.pt"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+max_epochs=5", "unknown setting 'max_epochs' (did you mean 'max_epoch'?)"),
        ("max_epochs=5", "unknown setting 'max_epochs' (did you mean 'max_epoch'?)"),
        ("++max_epochs=5", "unknown setting 'max_epochs' (did you mean 'max_epoch'?)"),
        (
            "+optim.learning_rate=1e-3",
            "unknown setting 'optim.learning_rate' (did you mean 'optim.lr'?)",
        ),
        ("+max_tokens=100", "did you mean 'data.max_tokens'?"),
        ("+optim.warmup_updates=0", "did you mean 'schedule.warmup_updates'?"),
        ("+arch.dmodel=16", "did you mean 'arch.d_model'?"),
        ("+arch.bogus=1", "unknown setting 'arch.bogus'"),
        ("hydra.job.chdir=true", "hydra settings have no effect"),
    ],
)
def test_keys_no_dataclass_has_fail_plus_or_not(override: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        compose_train_config([*BASE, override])
    assert message in str(info.value) and "\n" not in str(info.value)


def test_plus_groups_and_list_items_are_not_unknown_settings() -> None:
    cfg, _ = compose_train_config(
        ["+experiment=cpu/preln_adam_5e-4_stepdecay", "data.path=d", "optim.betas.1=0.99"]
    )
    assert cfg.optim.betas[1] == 0.99
    cfg, _ = compose_train_config(["+arch=postln_tiny", "data=toy"])
    assert cfg.data.path == "demo/data-bin"


def test_unknown_keys_of_a_composed_config_are_found_at_any_depth() -> None:
    from omegaconf import OmegaConf

    from nmt_preln.config_tree import unknown_keys

    cfg = OmegaConf.create(
        {"max_epoch": 1, "max_epochs": 2, "data": {"path": "x", "bogus": 1}, "arch": {"x": 1}}
    )
    assert sorted(unknown_keys(cfg, TrainConfig)) == ["arch.x", "data.bogus", "max_epochs"]


def test_help_text_comes_from_the_dataclasses() -> None:
    from nmt_preln.config import OptimConfig
    from nmt_preln.config_tree import field_help, settings

    assert field_help(OptimConfig, "lr").startswith("peak learning rate")
    assert field_help(SearchConfig, "beam") == "beam size; 1 is greedy"  # metadata
    assert {s.key for s in settings(TrainConfig)} >= {"arch.d_model", "optim.lr", "seed"}


def test_every_train_setting_has_help_text() -> None:
    """`nmt-train --help` and README's tables show each setting's help: none may be blank."""
    from nmt_preln.config_tree import settings

    blank = [s.key for s in settings(TrainConfig) if not s.help.strip()]
    assert blank == []
