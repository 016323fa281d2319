"""Range and consistency rules of nmt-train's settings: one line naming the option."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nmt_preln.cli import train as train_cli

from nmt_preln.config import TrainConfig
from nmt_preln.config.train import MAX_SEED
from nmt_preln.errors import UserError
from nmt_preln.train.restore import check_restore_files

MakeConfig = Callable[..., TrainConfig]


@pytest.mark.parametrize("seed", [0, 1, MAX_SEED])
def test_seeds_numpy_and_torch_take_pass(make_config: MakeConfig, seed: int) -> None:
    make_config(seed=seed).validate()


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 99999999999999999999999])
def test_seeds_out_of_range_name_seed(make_config: MakeConfig, seed: int) -> None:
    with pytest.raises(UserError, match=rf"^seed={seed} must be in \[0, {MAX_SEED}\]$"):
        make_config(seed=seed).validate()


def test_a_huge_seed_through_nmt_train_is_one_line(data_dir: Path, tmp_path: Path) -> None:
    err = io.StringIO()
    argv = ["+arch=preln_tiny", f"data.path={data_dir}", f"checkpoint.save_dir={tmp_path}"]
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as info:
        train_cli.main([*argv, "hardware=cpu", "seed=99999999999999999999999"])
    assert info.value.code == 1
    assert err.getvalue().splitlines() == [
        f"nmt-train: error: seed=99999999999999999999999 must be in [0, {MAX_SEED}]"
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hardware": {"ddp_timeout_minutes": 0}}, "hardware.ddp_timeout_minutes=0 must be > 0"),
        ({"validate_bleu_beam": 4}, "validate_bleu_beam needs validate_bleu=true"),
        (
            {"validate_bleu_print_samples": 2, "validate_bleu_max_len_b": 50},
            "validate_bleu_max_len_b, validate_bleu_print_samples needs validate_bleu=true",
        ),
        ({"validate_bleu": True, "validate_bleu_beam": 0}, "validate_bleu_beam=0 must be >= 1"),
        (
            {"validate_bleu": True, "validate_bleu_print_samples": -1},
            "validate_bleu_print_samples must be >= 0",
        ),
        (
            {"checkpoint": {"finetune_from_model": "a.pt", "restore_file": "b.pt"}},
            "finetune_from_model and checkpoint.restore_file cannot be used together",
        ),
        (
            {"checkpoint": {"finetune_from_model": "a.pt", "reset_meters": True}},
            "drop checkpoint.reset_meters",
        ),
        ({"stop_time_hours": -0.5}, "stop_time_hours=-0.5 must be >= 0"),
    ],
)
def test_bad_settings_name_the_option(
    make_config: MakeConfig, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(UserError, match=message) as info:
        make_config(**overrides).validate()
    assert "\n" not in str(info.value)


def test_a_missing_finetune_file_is_named(make_config: MakeConfig) -> None:
    cfg = make_config(checkpoint={"finetune_from_model": "nowhere.pt"})
    cfg.validate()  # the settings are fine; the file is what is missing
    with pytest.raises(UserError, match=r"=nowhere\.pt: no such file"):
        check_restore_files(cfg.checkpoint)
