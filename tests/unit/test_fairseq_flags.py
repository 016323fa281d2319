"""fairseq-train's flags: every mapped key exists, presets are fairseq's, bad flags fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from nmt_preln.compose import UsageError, compose_train_config
from nmt_preln.config import NormPosition, Optimizer, ScheduleName, TrainConfig
from nmt_preln.config_tree import is_known, settings
from nmt_preln.fairseq_flags import ALIASES, ARCH_PRESETS, FLAGS, FLAGS_BY_NAME, KEY_ALIASES
from nmt_preln.flag_docs import README_BEGIN, README_END, readme_section
from nmt_preln.train_args import EVAL_BLEU_ARGS, split_cfg_flag, to_overrides

README = Path(__file__).resolve().parents[2] / "README.md"
BASE = ["+arch=preln_tiny", "data.path=d"]
# fairseq's examples/translation IWSLT14 de-en command (its --eval-bleu-detok/-remove-bpe aside).
IWSLT_EXAMPLE = [
    "data-bin/iwslt14.tokenized.de-en",
    "--arch",
    "transformer_iwslt_de_en",
    "--share-decoder-input-output-embed",
    "--optimizer",
    "adam",
    "--adam-betas",
    "(0.9, 0.98)",
    "--clip-norm",
    "0.0",
    "--lr",
    "5e-4",
    "--lr-scheduler",
    "inverse_sqrt",
    "--warmup-updates",
    "4000",
    "--dropout",
    "0.3",
    "--weight-decay",
    "0.0001",
    "--criterion",
    "label_smoothed_cross_entropy",
    "--label-smoothing",
    "0.1",
    "--max-tokens",
    "4096",
    "--eval-bleu",
    "--eval-bleu-args",
    '{"beam": 5, "max_len_a": 1.2, "max_len_b": 10}',
    "--best-checkpoint-metric",
    "bleu",
    "--maximize-best-checkpoint-metric",
]


def compose(args: list[str]) -> TrainConfig:
    return compose_train_config(to_overrides(args))[0]


def mapped_keys() -> list[str]:
    keys = [f.key for f in FLAGS if f.key]
    keys += [o.split("=")[0].lstrip("+") for f in FLAGS for p in f.presets.values() for o in p if o]
    return keys + list(KEY_ALIASES.values()) + list(EVAL_BLEU_ARGS.values())


@pytest.mark.parametrize("key", sorted(set(mapped_keys())))
def test_every_mapped_key_exists_in_train_config(key: str) -> None:
    assert is_known(key, TrainConfig) or key in ("arch", "optim", "schedule"), key


def test_aliases_point_at_flags_of_the_table() -> None:
    assert all(flag in FLAGS_BY_NAME for flag in ALIASES.values())
    assert len({f.flag for f in FLAGS}) == len(FLAGS)


@pytest.mark.parametrize(
    ("flag", "value"), [(f.flag, v) for f in FLAGS for v in f.presets], ids=lambda x: str(x)
)
def test_every_preset_composes(flag: str, value: str) -> None:
    args = ["d", flag, value] if flag == "--arch" else [*BASE, flag, value]
    assert isinstance(compose(args), TrainConfig)


def test_arch_presets_are_fairseqs_models() -> None:
    iwslt = compose(["d", "--arch", "transformer_iwslt_de_en"]).arch
    assert iwslt.norm_position is NormPosition.post
    assert (iwslt.d_model, iwslt.ffn_dim, iwslt.num_heads, iwslt.encoder_layers) == (
        512,
        1024,
        4,
        6,
    )
    assert iwslt.dropout == 0.1 and not iwslt.share_decoder_input_output_embed
    big = compose(["d", "--arch", "transformer_wmt_en_de_big"]).arch
    assert (big.d_model, big.ffn_dim, big.num_heads, big.attention_dropout) == (1024, 4096, 16, 0.1)
    t2t = compose(["d", "--arch", "transformer_wmt_en_de_big_t2t"]).arch
    assert t2t.norm_position is NormPosition.pre and t2t.activation_dropout == 0.1
    assert set(ARCH_PRESETS) >= {"transformer", "transformer_vaswani_wmt_en_de_big"}


def test_the_iwslt_example_command_gives_fairseqs_settings() -> None:
    cfg = compose(IWSLT_EXAMPLE)
    assert cfg.data.path == "data-bin/iwslt14.tokenized.de-en"
    assert cfg.arch.norm_position is NormPosition.post and cfg.arch.dropout == 0.3
    assert cfg.arch.share_decoder_input_output_embed  # the explicit flag beats the preset
    assert cfg.optim.name is Optimizer.adamw  # fairseq's Adam decays weights decoupled
    assert cfg.optim.betas == [0.9, 0.98] and cfg.optim.weight_decay == 1e-4
    assert cfg.optim.lr == 5e-4 and cfg.optim.clip_norm == 0.0
    assert cfg.schedule.name is ScheduleName.inverse_sqrt and cfg.schedule.warmup_updates == 4000
    assert cfg.schedule.warmup_init_lr == 0.0  # fairseq's inverse_sqrt starts from 0
    assert (cfg.label_smoothing, cfg.data.max_tokens) == (0.1, 4096)
    assert cfg.validate_bleu and cfg.validate_bleu_beam == 5
    assert (cfg.validate_bleu_max_len_a, cfg.validate_bleu_max_len_b) == (1.2, 10)
    assert cfg.checkpoint.best_metric == "bleu"


def test_an_explicit_flag_wins_over_a_preset_in_any_order() -> None:
    before = compose(["d", "--dropout", "0.25", "--arch", "transformer_iwslt_de_en"])
    after = compose(["d", "--arch", "transformer_iwslt_de_en", "--dropout", "0.25"])
    assert before.arch.dropout == after.arch.dropout == 0.25
    adam = compose([*BASE, "--weight-decay", "0.01", "--optimizer", "adam"])
    assert adam.optim.weight_decay == 0.01 and adam.optim.betas == [0.9, 0.999]
    criterion = ["--criterion", "label_smoothed_cross_entropy"]
    assert compose([*BASE, *criterion]).label_smoothing == 0.0  # fairseq's default epsilon
    assert compose([*BASE, "--label-smoothing", "0.2", *criterion]).label_smoothing == 0.2


@pytest.mark.parametrize(
    ("args", "key", "expected"),
    [
        (["--max-update", "100"], "max_update", 100),
        (["--max-update=100"], "max_update", 100),
        (["--lr", "1e-3"], "optim.lr", 1e-3),
        (["--adam-betas", "0.9,0.997"], "optim.betas", [0.9, 0.997]),
        (["--save-dir", "ck pt/it's"], "checkpoint.save_dir", "ck pt/it's"),
        (["--reset-optimizer"], "checkpoint.reset_optimizer", True),
        (["--restore-file", "checkpoint_last.pt"], "checkpoint.restore_file", None),
        (["--fp16"], "hardware.precision", "fp16"),
        (["--no-progress-bar"], "progress_bar", False),
        (["--log-format", "json"], "log_format", "json"),
        (["-s", "en", "-t", "de"], "data.target_lang", "de"),
        (["--max-sentences", "64"], "data.batch_size", 64),
        (["--decay-epoch", "3"], "schedule.decay_epoch", 3),  # any setting by its last name
        (["--validate-bleu"], "validate_bleu", True),
        (["--compile", "false"], "hardware.compile", False),
        (["--eval-bleu-print-samples"], "validate_bleu_print_samples", 1),
    ],
)
def test_flags_reach_their_setting(args: list[str], key: str, expected: object) -> None:
    value: object = compose([*BASE, *args])
    for part in key.split("."):
        value = getattr(value, part)
    assert value == expected or getattr(value, "value", None) == expected


def test_data_directory_with_odd_characters_survives() -> None:
    path = "data bin/de,en x'y"
    assert compose([path, "+arch=preln_tiny"]).data.path == path


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--max-update", "abc"], "--max-update abc: expects an integer (sets max_update)"),
        (["--lr", "0.25,0.1"], "--lr 0.25,0.1: expects a number"),
        (["--max-updates", "5"], "write the override max_update=5"),
        (["--optim.lr", "1e-3"], "write the override optim.lr=1e-3"),
        (["--bogus"], "unknown option --bogus"),
        (["--name", "x"], "arch.name=x, optim.name=x, schedule.name=x"),
        (["--path", "ckpt.pt"], "unknown option --path"),  # fairseq-generate's, never data.path
        (["--encoder-normalize-before"], "needs --decoder-normalize-before"),
        (
            ["--best-checkpoint-metric", "loss", "--maximize-best-checkpoint-metric"],
            "needs --best-checkpoint-metric bleu",
        ),
        (["--arch", "lstm"], "+arch=NAME"),
        (["--optimizer", "nag"], "--optimizer nag: nmt-train supports adam, sgd"),
        (["--task", "language_modeling"], "supports translation"),
        (["--activation-fn", "tanh"], "one of relu, gelu"),
        (["--ddp-backend", "c10d"], "no nmt-train equivalent"),
        (["--max-update", "5", "max_update=6"], "both set max_update"),
        (["--lr", "1e-3", "--lr", "2e-3"], "both set optim.lr"),
        (["other-dir"], "a second data directory"),
        (["--eval-bleu-args", '{"beam": 5, "nbest": 2}'], "keys beam, lenpen"),
        (["--eval-bleu-args", "{beam: 5}"], "not JSON"),
        (["--max-update"], "--max-update needs a value"),
    ],
)
def test_bad_flags_fail_with_one_line(args: list[str], needle: str) -> None:
    with pytest.raises(UsageError) as info:
        to_overrides(["data-dir", *args])
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_hydra_overrides_pass_through_unchanged() -> None:
    args = ["+arch=preln", "data.path=x", "optim.lr=1e-3", "~checkpoint.restore_file"]
    assert to_overrides(args) == args


def test_cfg_job_is_taken_out_anywhere() -> None:
    assert split_cfg_flag(["--cfg", "job", "a=1"]) == (["a=1"], True)
    assert split_cfg_flag(["a=1"]) == (["a=1"], False)
    with pytest.raises(UsageError, match="--cfg job"):
        split_cfg_flag(["a=1", "--cfg", "hydra"])


def test_every_setting_has_a_flag_or_an_override_in_help() -> None:
    from nmt_preln.flag_docs import train_usage

    text = train_usage()
    assert all(s.key in text for s in settings(TrainConfig))
    assert all(f.flag in text for f in FLAGS)


def test_readme_section_is_the_rendered_table() -> None:
    text = README.read_text(encoding="utf-8")
    begin, end = text.find(README_BEGIN), text.find(README_END)
    assert begin >= 0 and end > begin, "README.md lacks the generated fairseq tables"
    assert text[begin : end + len(README_END) + 1] == readme_section(), (
        "README.md's fairseq tables are stale: run "
        "`python -m nmt_preln.fairseq_flags --readme README.md`"
    )
