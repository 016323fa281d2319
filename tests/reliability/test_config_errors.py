"""Invalid settings of all three commands fail before any data is read, with one line.

Every row points the command at data that does not exist: if the settings were not checked
first, the error would be about the missing data instead of the setting the row expects.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from nmt_preln.cli import generate as generate_cli
from nmt_preln.cli import preprocess as preprocess_cli
from nmt_preln.cli import train as train_cli

from .harness import TINY_TRAIN, assert_clean_failure, run_main

MISSING_DATA = "/nonexistent/data-bin"
MISSING_MARKERS = ("not found", "No such file", "nonexistent")

TRAIN_ERRORS = [
    ("optim.lr=-1", "optim.lr"),
    ("optim.lr=0", "optim.lr"),
    ("optim.betas=[0.9]", "optim.betas"),
    ("optim.betas=[1.5,0.98]", "optim.betas"),
    ("optim.eps=-1", "optim.eps"),
    ("optim.weight_decay=-1", "optim.weight_decay"),
    ("optim.clip_norm=-1", "optim.clip_norm"),
    ("optim.name=lamb", "optim.name"),
    ("schedule.warmup_updates=-5", "schedule.warmup_updates"),
    ("schedule.min_lr=-1", "min_lr"),
    ("schedule.decay_epoch=0", "schedule.decay_epoch"),
    ("schedule.decay_factor=0", "schedule.decay_factor"),
    ("schedule=linear", "schedule.total_updates"),  # linear decay needs an end
    ("schedule=nonexistent", "schedule/nonexistent"),
    ("data.max_tokens=-1", "data.max_tokens"),
    ("data.max_tokens=0 data.batch_size=0", "data.max_tokens or data.batch_size"),
    ("data.num_workers=-1", "data.num_workers"),
    ("data.max_source_positions=0", "data.max_source_positions"),
    ("arch.d_model=15", "arch.num_heads"),
    ("arch.num_heads=0", "arch.num_heads"),
    ("arch.dropout=1.5", "arch.dropout"),
    ("arch.encoder_layers=0", "arch.encoder_layers"),
    ("arch.ffn_dim=0", "arch.ffn_dim"),
    ("arch.max_positions=0", "arch.max_positions"),
    ("arch.norm_position=sideways", "arch.norm_position"),
    ("arch.bogus=1", "arch.bogus"),
    ("hardware.precision=fp64", "hardware.precision"),
    ("hardware.num_threads=-1", "hardware.num_threads"),
    ("hardware.fp16_init_scale=0", "hardware.fp16_init_scale"),
    ("hardware.fp16_scale_window=0", "hardware.fp16_scale_window"),
    ("checkpoint.save_interval_updates=-1", "checkpoint.save_interval_updates"),
    ("checkpoint.best_metric=accuracy", "checkpoint.best_metric"),
    ("checkpoint.best_metric=bleu", "validate_bleu"),
    ("checkpoint.restore_file=/nonexistent.pt", "checkpoint.restore_file"),
    ("checkpoint.keep_last_epochs=abc", "checkpoint.keep_last_epochs"),
    ("label_smoothing=1.5", "label_smoothing"),
    ("update_freq=0", "update_freq"),
    ("max_update=-1", "max_update"),
    ("validate_interval=0", "validate_interval"),
    ("validate_interval_updates=-1", "validate_interval_updates"),
    ("log_interval=-1", "log_interval"),
    ("seed=abc", "seed"),
    ("bogus_key=1", "bogus_key"),
    ("optim=nonexistent", "optim/nonexistent"),
]
if not torch.cuda.is_available():
    TRAIN_ERRORS.append(("hardware.device=cuda", "hardware.device"))


@pytest.mark.parametrize(("override", "names"), TRAIN_ERRORS, ids=[r[0] for r in TRAIN_ERRORS])
def test_train_setting_errors(override: str, names: str, tmp_path: Path) -> None:
    argv = [*TINY_TRAIN, f"data.path={MISSING_DATA}", f"checkpoint.save_dir={tmp_path / 's'}"]
    line = assert_clean_failure(run_main(train_cli.main, [*argv, *override.split()]), "nmt-train")
    assert names in line, line
    assert MISSING_DATA not in line, f"the data was read first: {line}"


# The command line does not compose into a TrainConfig: argparse's usage-error status, 2.
TRAIN_USAGE_ERRORS = [
    ("+max_epochs=5", "did you mean 'max_epoch'?"),
    ("+optim.learning_rate=1e-3", "did you mean 'optim.lr'?"),
    ("bogus_key=1", "bogus_key"),
    ("optim.lr=abc", "optim.lr"),
    ("optim.name=lamb", "optim.name"),
    ("schedule=nonexistent", "schedule/nonexistent"),
    ("--max-update abc", "--max-update abc"),
    ("--max-updates 100", "max_update=100"),
    ("--arch lstm", "--arch lstm"),
    ("--encoder-normalize-before", "--decoder-normalize-before"),
]


@pytest.mark.parametrize(
    ("args", "names"), TRAIN_USAGE_ERRORS, ids=[r[0] for r in TRAIN_USAGE_ERRORS]
)
def test_train_usage_errors_exit_2(args: str, names: str, tmp_path: Path) -> None:
    argv = [*TINY_TRAIN, f"data.path={MISSING_DATA}", f"checkpoint.save_dir={tmp_path / 's'}"]
    result = run_main(train_cli.main, [*argv, *args.split()])
    line = assert_clean_failure(result, "nmt-train")
    assert names in line, line
    assert result.code == 2, line


@pytest.mark.parametrize("override", ["optim.lr=-1", "update_freq=0", "schedule=linear"])
def test_train_values_out_of_range_exit_1(override: str, tmp_path: Path) -> None:
    argv = [*TINY_TRAIN, f"data.path={MISSING_DATA}", f"checkpoint.save_dir={tmp_path / 's'}"]
    result = run_main(train_cli.main, [*argv, override])
    assert_clean_failure(result, "nmt-train")
    assert result.code == 1


def test_train_missing_data_names_the_setting_after_the_settings(tmp_path: Path) -> None:
    argv = [*TINY_TRAIN, f"data.path={MISSING_DATA}", f"checkpoint.save_dir={tmp_path / 's'}"]
    result = run_main(train_cli.main, argv)
    line = assert_clean_failure(result, "nmt-train")
    assert f"data.path={MISSING_DATA}: {MISSING_DATA} does not exist" in line
    assert result.code == 1


def test_train_without_arch_or_data_path() -> None:
    line = assert_clean_failure(run_main(train_cli.main, ["optim.lr=1e-3"]), "nmt-train")
    assert "+arch=" in line
    line = assert_clean_failure(run_main(train_cli.main, ["+arch=preln"]), "nmt-train")
    assert "data.path" in line


PREPROCESS_ERRORS = [
    ("--spm-vocab-size 0", "--spm-vocab-size"),
    ("--spm-character-coverage 2", "--spm-character-coverage"),
    ("--workers -1", "--workers"),
    ("--min-len 5 --max-len 2", "--max-len"),
    ("--min-len -1", "--min-len"),
    ("--max-len-ratio -1", "--max-len-ratio"),
    ("--target-lang de", "--target-lang"),
    ("--segmentation none --spm-model x.model", "--spm-model"),
    ("--spm-model x.model --spm-separate", "--spm-separate"),
    ("--joined-dictionary --srcdict a.txt --tgtdict b.txt", "--joined-dictionary"),
    ("--segmentation bpe", "--segmentation"),
    ("--max-len abc", "--max-len"),
    ("--bogus-flag", "--bogus-flag"),
]


@pytest.mark.parametrize(
    ("flags", "names"), PREPROCESS_ERRORS, ids=[r[0] for r in PREPROCESS_ERRORS]
)
def test_preprocess_flag_errors(flags: str, names: str, tmp_path: Path) -> None:
    argv = ["--source-lang", "de", "--target-lang", "en", "--trainpref", "/nonexistent/train"]
    argv += ["--destdir", str(tmp_path / "out"), *flags.split()]
    line = assert_clean_failure(run_main(preprocess_cli.main, argv), "nmt-preprocess")
    assert names in line, line
    assert "/nonexistent/train" not in line, f"the data was read first: {line}"
    assert not (tmp_path / "out").exists()


def test_preprocess_without_inputs(tmp_path: Path) -> None:
    argv = ["--source-lang", "de", "--target-lang", "en", "--destdir", str(tmp_path / "out")]
    line = assert_clean_failure(run_main(preprocess_cli.main, argv), "nmt-preprocess")
    assert "--trainpref" in line


GENERATE_ERRORS = [
    ("--beam 0", "--beam"),
    ("--beam 2 --nbest 3", "--nbest"),
    ("--batch-size 0", "--batch-size"),
    ("--max-tokens -1", "--max-tokens"),
    ("--buffer-size 0", "--buffer-size"),
    ("--min-len -1", "--min-len"),
    ("--max-len-a -1", "--max-len"),
    ("--temperature 0", "--temperature"),
    ("--temperature nan", "--temperature"),
    ("--lenpen inf", "--lenpen"),
    ("--unkpen nan", "--unkpen"),
    ("--sampling-topp 2", "--sampling-topp"),
    ("--sampling-topk 5", "--sampling"),
    ("--no-repeat-ngram-size -1", "--no-repeat-ngram-size"),
    ("--output-format xml", "--output-format"),
    ("--beam abc", "--beam"),
]
if not torch.cuda.is_available():
    GENERATE_ERRORS.append(("--device cuda", "--device"))


@pytest.mark.parametrize(("flags", "names"), GENERATE_ERRORS, ids=[r[0] for r in GENERATE_ERRORS])
def test_generate_flag_errors(flags: str, names: str) -> None:
    argv = [MISSING_DATA, "--path", "/nonexistent/model.pt", *flags.split()]
    line = assert_clean_failure(run_main(generate_cli.main, argv), "nmt-generate")
    assert names in line, line
    assert not any(marker in line for marker in MISSING_MARKERS), f"data read first: {line}"
