"""Each config dataclass owns its rules, and each console script applies them exactly once."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
from nmt_preln.cli import generate as generate_cli
from nmt_preln.cli import preprocess as preprocess_cli
from nmt_preln.cli import train as train_cli

from nmt_preln import config
from nmt_preln import tools_config as tools
from nmt_preln.config import GenerateConfig, PreprocessConfig, TrainConfig
from nmt_preln.errors import UserError

ROOT = Path(__file__).resolve().parents[2]


def _count_calls(monkeypatch: pytest.MonkeyPatch, cls: type) -> list[object]:
    """Wrap ``cls.validate`` so that every call is recorded (and still checks)."""
    calls: list[object] = []
    real = cls.validate

    def counted(self: object, *args: object, **kwargs: object) -> None:
        calls.append(self)
        real(self, *args, **kwargs)

    monkeypatch.setattr(cls, "validate", counted)
    return calls


def test_nmt_train_validates_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = _count_calls(monkeypatch, TrainConfig)
    with pytest.raises(SystemExit) as exit_info:  # no such data directory: after the settings
        train_cli.main(["+arch=preln_tiny", f"data.path={tmp_path / 'none'}"])
    assert exit_info.value.code == 1 and len(calls) == 1


def test_nmt_generate_validates_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = _count_calls(monkeypatch, GenerateConfig)
    status = generate_cli.main([str(tmp_path / "none"), "--path", str(tmp_path / "x.pt")])
    assert status == 1 and len(calls) == 1


def test_nmt_preprocess_validates_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = _count_calls(monkeypatch, PreprocessConfig)
    argv = ["--source-lang", "de", "--target-lang", "en", "--trainpref", str(tmp_path / "none")]
    assert preprocess_cli.main([*argv, "--destdir", str(tmp_path / "bin")]) == 1
    assert len(calls) == 1


def test_a_bad_setting_stops_the_cli_before_anything_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The data directory does not exist either: the setting must be the one reported.
    with pytest.raises(SystemExit):
        train_cli.main(["+arch=preln_tiny", f"data.path={tmp_path}", "optim.lr=0"])
    assert capsys.readouterr().err == "nmt-train: error: optim.lr=0.0 must be > 0\n"
    assert generate_cli.main([str(tmp_path), "--path", "x.pt", "--beam", "0"]) == 1
    assert capsys.readouterr().err == "nmt-generate: error: --beam must be >= 1, got 0\n"


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (config.ModelConfig(d_model=30, num_heads=4), "arch.num_heads=4 does not divide"),
        (config.ModelConfig(num_heads=0), "arch.num_heads=0 must be >= 1"),  # before the modulo
        (config.OptimConfig(eps=0.0), "optim.eps=0.0 must be > 0"),
        (config.DataConfig(path="d", max_tokens=0), "data.max_tokens or data.batch_size > 0"),
        (config.HardwareConfig(num_threads=-1), "hardware.num_threads=-1 must be >= 0"),
        (
            config.CheckpointConfig(finetune_from_model="a.pt", restore_file="b.pt"),
            "cannot be used together",
        ),
        (config.SearchConfig(nbest=6), r"--nbest must be in \[1, --beam=5\]"),
        (config.SearchConfig(sampling_topp=float("nan")), "--sampling-topp must be <= 1"),
        (config.SearchConfig(lenpen=float("inf")), "--lenpen must be a finite number"),
        (tools.GradNormConfig(data="d", seeds=0), "--seeds 0 and --batches 2 must be at least 1"),
        (tools.SweepConfig(experiments="x", checkpoint="first"), "use best or last"),
        (
            tools.AverageConfig(
                inputs=["d"], output="o", num_epoch_checkpoints=2, num_update_checkpoints=2
            ),
            "not both",
        ),
    ],
)
def test_each_group_checks_its_own_fields(cfg: object, message: str) -> None:
    with pytest.raises(UserError, match=message):
        cfg.validate()  # type: ignore[attr-defined]


def test_the_defaults_pass_their_own_rules() -> None:
    config.ModelConfig().validate()
    config.OptimConfig().validate()
    config.ScheduleConfig().validate(max_update=0)
    config.DataConfig(path="d").validate()
    config.HardwareConfig().validate()
    config.CheckpointConfig().validate()
    config.SearchConfig().validate()
    TrainConfig(arch=config.ModelConfig()).validate()
    GenerateConfig(data="d", path="p").validate()
    PreprocessConfig(source_lang="de", target_lang="en", trainpref="t").validate()


def test_every_config_dataclass_has_rules() -> None:
    """A new settings group gets a validate method, so its ranges have one owner."""
    groups = [
        obj
        for name in config.__all__
        if dataclasses.is_dataclass(obj := getattr(config, name)) and isinstance(obj, type)
    ]
    assert len(groups) == 10
    assert all(callable(getattr(cls, "validate", None)) for cls in groups)


def test_every_package_is_in_the_wheel() -> None:
    """pyproject lists packages by hand: a subpackage missing there is missing from the wheel."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(("nmt_preln", *init.parent.relative_to(ROOT / "nmt_preln").parts))
        for init in (ROOT / "nmt_preln").rglob("__init__.py")
    }
    assert found <= listed, f"add to pyproject.toml's packages: {sorted(found - listed)}"
