"""fairseq-train's flags and the nmt-train settings they set: the one table of the two.

``nmt-train`` takes Hydra overrides (``max_update=100``); a fairseq user types
``--max-update 100``. :data:`FLAGS` maps each fairseq 0.12.2 training flag onto the settings of
:class:`~nmt_preln.config.TrainConfig` that give fairseq's behaviour. :mod:`nmt_preln.train_args`
uses it to translate ``nmt-train``'s command line, ``nmt-train --help`` prints it, and the
README's "Coming from fairseq" section is rendered from it (and from the fairseq-spelled
dataclasses of ``nmt-preprocess`` and ``nmt-generate``)::

    python -m nmt_preln.fairseq_flags --readme     # print the section; paste it into README.md

Where fairseq's default differs from ours, the flag's preset writes fairseq's value first (an
explicit flag after it still wins): ``--arch transformer_iwslt_de_en`` is fairseq's model with
its dropout 0.1 and untied embeddings, not our ``+arch=postln``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

_UNTIED = "arch.share_decoder_input_output_embed=false"  # fairseq's presets do not tie them


@dataclass(frozen=True)
class Flag:
    """One fairseq-train flag.

    Attributes:
        flag: fairseq's spelling, e.g. ``"--max-update"``.
        key: the setting its value goes to (``"max_update"``), or None when only ``presets``
            (or nothing: a flag for what nmt-train always does) apply.
        switch: for a flag without a value, the value it writes to ``key`` (``"true"``).
        presets: fairseq value -> the overrides it stands for; the first is the choice itself
            ("" when there is none to make), the others are fairseq's defaults that differ from
            ours (explicit flags win over them).
        requires: another flag (``"--x"``, or ``"--x=value"``) without which this one would
            not mean what it means in fairseq.
        note: how it differs from fairseq, if at all.
    """

    flag: str
    key: str | None
    switch: str | None = None
    presets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    requires: str | None = None
    note: str = ""

    @property
    def takes_value(self) -> bool:
        return self.switch is None


def _arch(option: str, *extra: str) -> tuple[str, ...]:
    return (f"+arch={option}", *extra, _UNTIED)


ARCH_PRESETS = {
    "transformer_iwslt_de_en": _arch("postln", "arch.dropout=0.1"),
    "transformer": _arch("postln_base"),
    "transformer_wmt_en_de": _arch("postln_base"),
    "transformer_vaswani_wmt_en_de_big": _arch("postln_big"),
    "transformer_vaswani_wmt_en_fr_big": _arch("postln_big", "arch.dropout=0.1"),
    "transformer_wmt_en_de_big": _arch("postln_big", "arch.attention_dropout=0.1"),
    "transformer_wmt_en_de_big_t2t": _arch(
        "preln_big", "arch.attention_dropout=0.1", "arch.activation_dropout=0.1"
    ),
}

FLAGS: tuple[Flag, ...] = (
    # --- the task and the model
    Flag("--task", None, presets={"translation": ()}, note="the only task"),
    Flag(
        "--criterion",
        None,
        # fairseq's --label-smoothing defaults to 0 (ours: 0.1); "" = nothing to choose.
        presets={
            "label_smoothed_cross_entropy": ("", "label_smoothing=0.0"),
            "cross_entropy": ("", "label_smoothing=0.0"),
        },
        note="the loss is always label-smoothed cross-entropy; fairseq's default epsilon is 0",
    ),
    Flag(
        "--arch",
        None,
        presets=ARCH_PRESETS,
        note="fairseq's preset (Post-LN, its dropout, untied embeddings)",
    ),
    Flag(
        "--encoder-normalize-before",
        "arch.norm_position",
        switch="pre",
        requires="--decoder-normalize-before",
        note="Pre-LN: give both flags",
    ),
    Flag(
        "--decoder-normalize-before",
        "arch.norm_position",
        switch="pre",
        requires="--encoder-normalize-before",
        note="Pre-LN: give both flags",
    ),
    Flag("--encoder-layers", "arch.encoder_layers"),
    Flag("--decoder-layers", "arch.decoder_layers"),
    Flag("--encoder-embed-dim", "arch.d_model", note="one width for encoder and decoder"),
    Flag("--decoder-embed-dim", "arch.d_model", note="one width for encoder and decoder"),
    Flag("--encoder-ffn-embed-dim", "arch.ffn_dim", note="one size for encoder and decoder"),
    Flag("--decoder-ffn-embed-dim", "arch.ffn_dim", note="one size for encoder and decoder"),
    Flag("--encoder-attention-heads", "arch.num_heads", note="one count for both"),
    Flag("--decoder-attention-heads", "arch.num_heads", note="one count for both"),
    Flag("--dropout", "arch.dropout"),
    Flag("--attention-dropout", "arch.attention_dropout"),
    Flag("--activation-dropout", "arch.activation_dropout"),
    Flag("--activation-fn", "arch.activation", note="relu or gelu"),
    Flag(
        "--encoder-learned-pos",
        "arch.learned_positions",
        switch="true",
        requires="--decoder-learned-pos",
        note="give both flags",
    ),
    Flag(
        "--decoder-learned-pos",
        "arch.learned_positions",
        switch="true",
        requires="--encoder-learned-pos",
        note="give both flags",
    ),
    Flag(
        "--share-decoder-input-output-embed", "arch.share_decoder_input_output_embed", switch="true"
    ),
    Flag("--share-all-embeddings", "arch.share_all_embeddings", switch="true"),
    # --- data
    Flag("--max-tokens", "data.max_tokens"),
    Flag("--batch-size", "data.batch_size"),
    Flag("--source-lang", "data.source_lang"),
    Flag("--target-lang", "data.target_lang"),
    Flag("--train-subset", "data.train_subset"),
    Flag("--valid-subset", "data.valid_subset", note="one split"),
    Flag("--max-source-positions", "data.max_source_positions"),
    Flag("--max-target-positions", "data.max_target_positions"),
    Flag("--num-workers", "data.num_workers", note="threads, not processes"),
    Flag(
        "--skip-invalid-size-inputs-valid-test",
        None,
        switch="",
        note="always: pairs over the limits are skipped with a warning",
    ),
    # --- optimizer and schedule
    Flag(
        "--optimizer",
        None,
        presets={
            # fairseq's Adam decays weights decoupled from the gradient, i.e. AdamW.
            "adam": ("optim=adamw", "optim.betas=[0.9,0.999]", "optim.weight_decay=0.0"),
            "sgd": ("optim=sgd", "optim.momentum=0.0"),
        },
        note="fairseq's adam is AdamW (decoupled weight decay), betas (0.9, 0.999)",
    ),
    Flag("--lr", "optim.lr", note="one value (no per-epoch list); fairseq's default 0.25 is not"),
    Flag("--adam-betas", "optim.betas", note="`'(0.9, 0.98)'` or `0.9,0.98`"),
    Flag("--adam-eps", "optim.eps"),
    Flag("--weight-decay", "optim.weight_decay"),
    Flag("--momentum", "optim.momentum"),
    Flag("--clip-norm", "optim.clip_norm"),
    Flag(
        "--lr-scheduler",
        None,
        presets={
            "inverse_sqrt": ("schedule=inverse_sqrt", "schedule.warmup_init_lr=0.0"),
            "fixed": ("schedule=constant", "schedule.warmup_init_lr=0.0"),
            "cosine": ("schedule=cosine", "schedule.warmup_updates=0"),
            "polynomial_decay": (
                "schedule=linear",
                "schedule.warmup_updates=0",
                "schedule.total_updates=1000000",
            ),
        },
        note="polynomial_decay: power 1 only; cosine: one cycle (no --t-mult)",
    ),
    Flag("--warmup-updates", "schedule.warmup_updates"),
    Flag("--warmup-init-lr", "schedule.warmup_init_lr"),
    Flag("--min-lr", "schedule.min_lr", note="the schedule's floor (cosine's --min-lr)"),
    Flag("--end-learning-rate", "schedule.min_lr"),
    Flag("--total-num-update", "schedule.total_updates"),
    # --- the training loop
    Flag("--label-smoothing", "label_smoothing"),
    Flag("--update-freq", "update_freq", note="one value (no per-epoch list)"),
    Flag("--max-epoch", "max_epoch"),
    Flag("--max-update", "max_update"),
    Flag(
        "--stop-time-hours",
        "stop_time_hours",
        note="training time only: validation and saving do not count",
    ),
    Flag("--seed", "seed"),
    Flag("--patience", "patience"),
    Flag("--validate-interval", "validate_interval"),
    Flag("--validate-interval-updates", "validate_interval_updates"),
    Flag("--eval-bleu", "validate_bleu", switch="true", note="detokenized sacreBLEU"),
    Flag("--eval-bleu-args", None, note="JSON keys beam, lenpen, max_len_a, max_len_b"),
    Flag(
        "--eval-bleu-print-samples",
        "validate_bleu_print_samples",
        switch="1",
        note="the first translation of each validation",
    ),
    Flag("--fp16", "hardware.precision", switch="fp16"),
    Flag("--bf16", "hardware.precision", switch="bf16"),
    Flag("--cpu", "hardware.device", switch="cpu"),
    Flag("--fp16-init-scale", "hardware.fp16_init_scale"),
    Flag("--fp16-scale-window", "hardware.fp16_scale_window"),
    Flag("--min-loss-scale", "hardware.min_loss_scale"),
    # --- checkpoints
    Flag("--save-dir", "checkpoint.save_dir"),
    Flag("--save-interval", "checkpoint.save_interval"),
    Flag("--save-interval-updates", "checkpoint.save_interval_updates"),
    Flag("--keep-last-epochs", "checkpoint.keep_last_epochs"),
    Flag("--keep-interval-updates", "checkpoint.keep_interval_updates"),
    Flag(
        "--restore-file",
        "checkpoint.restore_file",
        presets={"checkpoint_last.pt": ("checkpoint.resume=true",)},
        note="`checkpoint_last.pt` (fairseq's default) resumes from `save_dir`",
    ),
    Flag("--finetune-from-model", "checkpoint.finetune_from_model"),
    Flag("--reset-optimizer", "checkpoint.reset_optimizer", switch="true"),
    Flag("--reset-lr-scheduler", "checkpoint.reset_lr_scheduler", switch="true"),
    Flag("--reset-dataloader", "checkpoint.reset_dataloader", switch="true"),
    Flag("--reset-meters", "checkpoint.reset_meters", switch="true"),
    Flag("--best-checkpoint-metric", "checkpoint.best_metric"),
    Flag(
        "--maximize-best-checkpoint-metric",
        None,
        switch="",
        requires="--best-checkpoint-metric=bleu",
        note="bleu is maximized, losses minimized",
    ),
    # --- logging
    Flag("--log-interval", "log_interval"),
    Flag(
        "--log-format", None, presets={"simple": ("log_format=text",), "json": ("log_format=json",)}
    ),
    Flag("--tensorboard-logdir", "tensorboard_dir"),
    Flag("--no-progress-bar", "progress_bar", switch="false"),
)

# fairseq flags that have no equivalent here, and what to do instead.
UNSUPPORTED: dict[str, str] = {
    "--distributed-world-size": "start one process per GPU with torchrun --nproc-per-node N",
    "--ddp-backend": "nmt-train always uses torch DistributedDataParallel",
    "--user-dir": "nmt-preln has no plugins",
    "--memory-efficient-fp16": "use --fp16 (hardware.precision=fp16)",
    "--stop-min-lr": "stop with max_update=N or max_epoch=N",
    "--eval-bleu-detok": "validation BLEU is always on detokenized text (SentencePiece decoded)",
    "--eval-bleu-remove-bpe": "validation BLEU is always on detokenized text",
    "--no-epoch-checkpoints": "use checkpoint.keep_last_epochs=0",
    "--lr-shrink": "use schedule=step_decay schedule.decay_factor=F schedule.decay_epoch=E",
}

# Other names a user may type for a setting (fairseq's config field names, common aliases).
KEY_ALIASES: dict[str, str] = {
    "learning_rate": "optim.lr",
    "lr_scheduler": "schedule.name",
    "optimizer": "optim.name",
    **{f.flag[2:].replace("-", "_"): f.key for f in FLAGS if f.key and f.flag.startswith("--")},
}

# fairseq's other spellings of the flags above.
ALIASES: dict[str, str] = {
    "-a": "--arch",
    "-s": "--source-lang",
    "-t": "--target-lang",
    "--max-sentences": "--batch-size",
    "--relu-dropout": "--activation-dropout",
}

FLAGS_BY_NAME: dict[str, Flag] = {f.flag: f for f in FLAGS}
FLAGS_BY_NAME |= {alias: FLAGS_BY_NAME[flag] for alias, flag in ALIASES.items()}


def main(argv: list[str] | None = None) -> int:
    """``python -m nmt_preln.fairseq_flags --readme [README.md]``: print or rewrite the tables."""
    import argparse

    from nmt_preln.flag_docs import readme_section, write_readme

    parser = argparse.ArgumentParser(prog="python -m nmt_preln.fairseq_flags")
    parser.add_argument(
        "--readme",
        nargs="?",
        const="",
        metavar="PATH",
        required=True,
        help="print the README block, or rewrite it in the file PATH",
    )
    args = parser.parse_args(argv)
    if not args.readme:
        print(readme_section(), end="")
    elif write_readme(args.readme):
        print(f"{args.readme}: fairseq tables updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
