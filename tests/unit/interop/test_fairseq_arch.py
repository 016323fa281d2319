"""fairseq transformer options -> ModelConfig: the families, and refusals by option name."""

from __future__ import annotations

from typing import Any

import pytest

from nmt_preln.config import Activation, NormPosition
from nmt_preln.errors import UserError
from nmt_preln.interop.fairseq_arch import FAMILIES, model_config, resolve_args


def _convert(**args: Any) -> Any:
    return model_config(resolve_args(args, path="ck.pt"), path="ck.pt")


@pytest.mark.parametrize(
    ("arch", "d_model", "ffn_dim", "heads", "dropout", "norm"),
    [
        ("transformer", 512, 2048, 8, 0.1, NormPosition.post),
        ("transformer_wmt_en_de", 512, 2048, 8, 0.1, NormPosition.post),
        ("transformer_iwslt_de_en", 512, 1024, 4, 0.1, NormPosition.post),
        ("transformer_vaswani_wmt_en_de_big", 1024, 4096, 16, 0.3, NormPosition.post),
        ("transformer_wmt_en_de_big_t2t", 1024, 4096, 16, 0.3, NormPosition.pre),
    ],
)
def test_a_family_fills_the_options_an_old_checkpoint_lacks(
    arch: str, d_model: int, ffn_dim: int, heads: int, dropout: float, norm: NormPosition
) -> None:
    cfg = _convert(arch=arch)
    assert (cfg.d_model, cfg.ffn_dim, cfg.num_heads, cfg.dropout) == (
        d_model,
        ffn_dim,
        heads,
        dropout,
    )
    assert cfg.norm_position == norm and cfg.name == arch
    assert cfg.learned_positions  # fairseq's rows, shifted by padding_idx + 1


def test_stored_options_win_over_the_family() -> None:
    cfg = _convert(
        arch="transformer_iwslt_de_en", encoder_embed_dim=64, decoder_embed_dim=64,
        encoder_ffn_embed_dim=128, decoder_ffn_embed_dim=128, encoder_layers=3, decoder_layers=1,
        encoder_normalize_before=True, decoder_normalize_before=True, activation_fn="gelu",
        share_all_embeddings=True, activation_dropout=0.0, relu_dropout=0.2,
        max_source_positions=256, max_target_positions=256,
    )  # fmt: skip
    assert (cfg.d_model, cfg.ffn_dim, cfg.encoder_layers, cfg.decoder_layers) == (64, 128, 3, 1)
    assert cfg.norm_position == NormPosition.pre and cfg.activation == Activation.gelu
    assert cfg.share_all_embeddings and cfg.share_decoder_input_output_embed
    assert cfg.activation_dropout == 0.2  # fairseq falls back on the old --relu-dropout
    assert cfg.max_positions == 256


@pytest.mark.parametrize(
    ("option", "value", "flag"),
    [
        ("adaptive_softmax_cutoff", "2000,4000", "--adaptive-softmax-cutoff"),
        ("adaptive_input", True, "--adaptive-input"),
        ("layernorm_embedding", True, "--layernorm-embedding"),
        ("no_scale_embedding", True, "--no-scale-embedding"),
        ("no_token_positional_embeddings", True, "--no-token-positional-embeddings"),
        ("encoder_layerdrop", 0.2, "--encoder-layerdrop"),
        ("decoder_layers_to_keep", "0,2", "--decoder-layers-to-keep"),
        ("cross_self_attention", True, "--cross-self-attention"),
        ("no_cross_attention", True, "--no-cross-attention"),
        ("quant_noise_pq", 0.1, "--quant-noise-pq"),
        ("tie_adaptive_weights", True, "--tie-adaptive-weights"),
    ],
)
def test_options_without_an_equivalent_are_refused_by_name(
    option: str, value: Any, flag: str
) -> None:
    with pytest.raises(UserError, match=rf"ck\.pt: {flag} .*no nmt-preln equivalent"):
        _convert(arch="transformer", **{option: value})


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("decoder_embed_dim", 256),
        ("decoder_ffn_embed_dim", 1024),
        ("decoder_attention_heads", 4),
        ("decoder_normalize_before", True),
        ("decoder_output_dim", 256),
        ("max_target_positions", 512),
    ],
)
def test_sides_that_differ_are_refused_by_name(option: str, value: Any) -> None:
    flag = "--" + option.replace("_", "-")
    with pytest.raises(UserError, match=rf"{flag} {value} differs from --(encoder|max-source)-"):
        _convert(arch="transformer", **{option: value})


def test_other_architectures_and_activations_are_refused() -> None:
    with pytest.raises(UserError, match=r"fairseq arch 'lightconv_iwslt_de_en' is not converted"):
        _convert(arch="lightconv_iwslt_de_en")
    with pytest.raises(UserError, match=r"--activation-fn gelu_fast is not converted"):
        _convert(arch="transformer", activation_fn="gelu_fast")
    assert set(FAMILIES) >= {"transformer", "transformer_iwslt_de_en", "transformer_wmt_en_de",
                             "transformer_vaswani_wmt_en_de_big"}  # fmt: skip


def test_post_ln_decoder_may_say_no_final_norm() -> None:
    assert (
        _convert(arch="transformer", no_decoder_final_norm=True).norm_position == NormPosition.post
    )
    with pytest.raises(UserError, match="--no-decoder-final-norm"):
        _convert(arch="transformer_wmt_en_de_big_t2t", no_decoder_final_norm=True)
