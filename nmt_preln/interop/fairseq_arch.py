"""fairseq ``transformer`` options -> nmt-preln's :class:`ModelConfig`, refusing what has no match.

The legacy architectures of fairseq's ``transformer`` model differ only in their default sizes;
a checkpoint's options are already resolved (fairseq writes the preset's values into them), so
the presets below only fill options that a checkpoint of an older fairseq lacks.

What maps (fairseq -> nmt-preln): ``encoder_embed_dim`` = ``decoder_embed_dim`` -> ``d_model``;
``*_ffn_embed_dim`` -> ``ffn_dim``; ``*_attention_heads`` -> ``num_heads``; ``*_layers``;
``*_normalize_before`` -> ``norm_position`` (pre: the final LayerNorms too, as fairseq);
``share_all_embeddings``; ``share_decoder_input_output_embed``; dropouts; ``activation_fn``
relu/gelu. Positions: fairseq puts token t at position ``padding_idx + 1 + t`` while nmt-preln
puts it at t, so both sinusoidal and learned fairseq positions become a position table
(``learned_positions``) holding fairseq's rows from ``padding_idx + 1`` on; for sinusoidal
models those rows are fairseq's sinusoids (half sin, half cos), so decoding is unchanged.
"""

from __future__ import annotations

from typing import Any

from nmt_preln.config import Activation, InitMethod, ModelConfig, NormPosition
from nmt_preln.errors import UserError

# fairseq/models/transformer/transformer_legacy.py: base_architecture and the presets on it.
_BASE: dict[str, Any] = {
    "encoder_embed_dim": 512,
    "encoder_ffn_embed_dim": 2048,
    "encoder_layers": 6,
    "encoder_attention_heads": 8,
    "encoder_normalize_before": False,
    "encoder_learned_pos": False,
    "decoder_layers": 6,
    "decoder_attention_heads": 8,
    "decoder_normalize_before": False,
    "decoder_learned_pos": False,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "relu_dropout": 0.0,
    "activation_fn": "relu",
    "dropout": 0.1,
    "max_source_positions": 1024,
    "max_target_positions": 1024,
}
_BIG = {
    "encoder_embed_dim": 1024,
    "encoder_ffn_embed_dim": 4096,
    "encoder_attention_heads": 16,
    "decoder_attention_heads": 16,
    "dropout": 0.3,
}
_IWSLT = {
    "encoder_ffn_embed_dim": 1024,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
}
FAMILIES: dict[str, dict[str, Any]] = {
    "transformer": {},
    "transformer_wmt_en_de": {},
    "transformer_iwslt_de_en": _IWSLT,
    "transformer_tiny": {
        "encoder_embed_dim": 64,
        "encoder_ffn_embed_dim": 64,
        "encoder_layers": 2,
        "encoder_attention_heads": 2,
        "decoder_layers": 2,
        "decoder_attention_heads": 2,
    },
    "transformer_vaswani_wmt_en_de_big": _BIG,
    "transformer_vaswani_wmt_en_fr_big": {**_BIG, "dropout": 0.1},
    "transformer_wmt_en_de_big": {**_BIG, "attention_dropout": 0.1},
    "transformer_wmt_en_de_big_t2t": {
        **_BIG,
        "encoder_normalize_before": True,
        "decoder_normalize_before": True,
        "attention_dropout": 0.1,
        "activation_dropout": 0.1,
    },
}
# Options whose non-default value changes the function in a way nmt-preln's model cannot
# express: (option, its harmless value, what it is).
_REFUSED: list[tuple[str, Any, str]] = [
    ("adaptive_softmax_cutoff", None, "adaptive softmax"),
    ("adaptive_input", False, "adaptive input embeddings"),
    ("tie_adaptive_weights", False, "adaptive softmax/input weight tying"),
    ("layernorm_embedding", False, "a LayerNorm on the embeddings"),
    ("no_scale_embedding", False, "unscaled embeddings (nmt-preln scales by sqrt(d_model))"),
    ("no_token_positional_embeddings", False, "no positional embeddings"),
    ("no_cross_attention", False, "a decoder without cross-attention"),
    ("cross_self_attention", False, "cross+self-attention"),
    ("encoder_layerdrop", 0, "LayerDrop"),
    ("decoder_layerdrop", 0, "LayerDrop"),
    ("encoder_layers_to_keep", None, "pruned LayerDrop layers"),
    ("decoder_layers_to_keep", None, "pruned LayerDrop layers"),
    ("quant_noise_pq", 0, "quantization noise"),
    ("quant_noise_scalar", 0, "quantization noise"),
    ("char_inputs", False, "character inputs"),
    ("base_layers", 0, "BASE layers"),
    ("no_decoder_final_norm", False, "a Pre-LN decoder without its final LayerNorm"),
]
# Options that must agree because nmt-preln has one setting for both sides.
_SAME = [
    ("decoder_embed_dim", "encoder_embed_dim"),
    ("decoder_input_dim", "encoder_embed_dim"),
    ("decoder_output_dim", "encoder_embed_dim"),
    ("decoder_ffn_embed_dim", "encoder_ffn_embed_dim"),
    ("decoder_attention_heads", "encoder_attention_heads"),
    ("decoder_normalize_before", "encoder_normalize_before"),
    ("max_target_positions", "max_source_positions"),
]


def resolve_args(args: dict[str, Any], *, path: str) -> dict[str, Any]:
    """The model options with the family's defaults filled in (older checkpoints lack some).

    Raises:
        UserError: the architecture is not one of fairseq's ``transformer`` families.
    """
    arch = args.get("arch") or args.get("_name")
    if arch not in FAMILIES:
        raise UserError(
            f"{path}: fairseq arch {arch!r} is not converted; nmt-import fairseq reads the "
            f"transformer families: {', '.join(FAMILIES)}"
        )
    resolved = {**_BASE, **FAMILIES[arch], **{k: v for k, v in args.items() if v is not None}}
    for key in ("adaptive_softmax_cutoff", "encoder_layers_to_keep", "decoder_layers_to_keep"):
        resolved[key] = args.get(key)  # None is their meaningful default
    for side in ("decoder_embed_dim", "decoder_ffn_embed_dim"):
        resolved.setdefault(side, resolved[side.replace("decoder", "encoder")])
    resolved.setdefault("decoder_input_dim", resolved["decoder_embed_dim"])
    resolved.setdefault("decoder_output_dim", resolved["decoder_embed_dim"])
    resolved["arch"] = arch
    return resolved


def _check_supported(args: dict[str, Any], *, path: str) -> None:
    for option, harmless, what in _REFUSED:
        value = args.get(option, harmless)
        if value not in (harmless, None, False, 0, "", [], "0"):
            if option == "no_decoder_final_norm" and not args["decoder_normalize_before"]:
                continue  # a Post-LN decoder has no final LayerNorm anyway
            raise UserError(
                f"{path}: --{option.replace('_', '-')} {value} ({what}) has no nmt-preln "
                f"equivalent; the checkpoint is not converted"
            )
    for option, other in _SAME:
        if args[option] != args[other]:
            raise UserError(
                f"{path}: --{option.replace('_', '-')} {args[option]} differs from "
                f"--{other.replace('_', '-')} {args[other]}; nmt-preln has one setting for both"
            )
    if args["activation_fn"] not in {a.value for a in Activation}:
        raise UserError(
            f"{path}: --activation-fn {args['activation_fn']} is not converted "
            f"(nmt-preln has {', '.join(a.value for a in Activation)})"
        )


def model_config(args: dict[str, Any], *, path: str) -> ModelConfig:
    """The nmt-preln architecture of a fairseq transformer (options already resolved)."""
    _check_supported(args, path=path)
    activation_dropout = args["activation_dropout"] or args.get("relu_dropout") or 0.0
    return ModelConfig(
        name=args["arch"],
        norm_position=NormPosition.pre if args["encoder_normalize_before"] else NormPosition.post,
        encoder_layers=int(args["encoder_layers"]),
        decoder_layers=int(args["decoder_layers"]),
        d_model=int(args["encoder_embed_dim"]),
        ffn_dim=int(args["encoder_ffn_embed_dim"]),
        num_heads=int(args["encoder_attention_heads"]),
        dropout=float(args["dropout"]),
        attention_dropout=float(args["attention_dropout"]),
        activation_dropout=float(activation_dropout),
        activation=Activation(args["activation_fn"]),
        learned_positions=True,  # see the module docstring: fairseq's rows, shifted
        max_positions=int(args["max_source_positions"]),
        share_decoder_input_output_embed=bool(
            args.get("share_decoder_input_output_embed") or args.get("share_all_embeddings")
        ),
        share_all_embeddings=bool(args.get("share_all_embeddings")),
        init=InitMethod.xavier_uniform,
    )
