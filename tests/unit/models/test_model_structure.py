"""Structure, embedding sharing, initialization and configuration errors of the Transformer."""

import pytest
import torch
from tiny_models import PAD, SRC_VOCAB, TGT_VOCAB, random_tokens, tiny_config, tiny_model
from torch import nn

from nmt_preln.config import NormPosition
from nmt_preln.errors import UserError
from nmt_preln.models.placement import PLACEMENTS
from nmt_preln.models.transformer import (
    Transformer,
    build_model,
    named_analysis_weights,
    sinusoidal_table,
)


def test_final_layernorm_only_for_pre() -> None:
    pre, post = tiny_model(NormPosition.pre), tiny_model(NormPosition.post)
    assert isinstance(pre.encoder.final_norm, nn.LayerNorm)
    assert isinstance(pre.decoder.final_norm, nn.LayerNorm)
    assert isinstance(post.encoder.final_norm, nn.Identity)
    assert isinstance(post.decoder.final_norm, nn.Identity)
    n_layernorms = [
        sum(isinstance(m, nn.LayerNorm) for m in model.modules()) for model in (pre, post)
    ]
    # 2 encoder layers x 2 sublayers + 2 decoder layers x 3 sublayers, plus pre's two final norms.
    assert n_layernorms == [12, 10]


def _layer_outputs(model: Transformer) -> list[torch.Tensor]:
    outputs: list[torch.Tensor] = []
    layers = [*model.encoder.layers, *model.decoder.layers]
    hooks = [
        layer.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for layer in layers
    ]
    src = random_tokens([7, 7], vocab=SRC_VOCAB)
    prev = random_tokens([6, 6], vocab=TGT_VOCAB)
    with torch.no_grad():
        model(src, prev)
    for hook in hooks:
        hook.remove()
    return outputs


@pytest.mark.parametrize("norm_position", list(NormPosition))
def test_layer_outputs_are_normalized_only_with_a_post_norm(norm_position: NormPosition) -> None:
    outputs = _layer_outputs(tiny_model(norm_position))
    assert len(outputs) == 4
    for out in outputs:
        mean, var = out.mean(-1), out.var(-1, unbiased=False)
        normalized = bool(mean.abs().max() < 1e-4 and (var - 1).abs().max() < 1e-2)
        assert normalized == PLACEMENTS[norm_position].post_norm  # Post-LN, DeepNorm


def test_placement_changes_the_function_not_only_the_modules() -> None:
    pre, post = tiny_model(NormPosition.pre), tiny_model(NormPosition.post)
    # Same weights except the norms (all LayerNorms start as gamma 1, beta 0).
    shared = {k: v for k, v in pre.state_dict().items() if "norm" not in k}
    post.load_state_dict(shared, strict=False)
    src = random_tokens([5, 3], vocab=SRC_VOCAB)
    prev = random_tokens([4, 4], vocab=TGT_VOCAB)
    with torch.no_grad():
        assert not torch.allclose(pre(src, prev), post(src, prev), atol=1e-3)


def test_decoder_input_output_embeddings_are_tied() -> None:
    model = tiny_model(share_decoder_input_output_embed=True)
    assert model.decoder.output_projection.weight is model.decoder.embed.embed_tokens.weight
    assert model.encoder.embed.embed_tokens is not model.decoder.embed.embed_tokens


def test_share_all_embeddings_shares_one_parameter_three_ways() -> None:
    cfg = tiny_config(share_all_embeddings=True, share_decoder_input_output_embed=False)
    model = Transformer(cfg, src_vocab_size=TGT_VOCAB, tgt_vocab_size=TGT_VOCAB, pad=PAD)
    weight = model.encoder.embed.embed_tokens.weight
    assert model.decoder.embed.embed_tokens.weight is weight
    assert model.decoder.output_projection.weight is weight
    n_params = sum(p.numel() for p in model.parameters())  # parameters() lists it once
    assert n_params < sum(p.numel() for p in tiny_model().parameters())


def test_untied_output_projection_is_separate_and_scaled() -> None:
    model = tiny_model(share_decoder_input_output_embed=False, d_model=64, num_heads=4)
    weight = model.decoder.output_projection.weight
    assert weight is not model.decoder.embed.embed_tokens.weight
    assert weight.std().item() == pytest.approx(64**-0.5, rel=0.1)


def test_share_all_with_different_vocabularies_is_a_user_error() -> None:
    cfg = tiny_config(share_all_embeddings=True)
    with pytest.raises(UserError, match="share_all_embeddings"):
        Transformer(cfg, src_vocab_size=SRC_VOCAB, tgt_vocab_size=TGT_VOCAB, pad=PAD)


class _Dict:
    def __init__(self, symbols: list[str]) -> None:
        self.symbols = symbols
        self.pad = PAD

    def __len__(self) -> int:
        return len(self.symbols)


def test_build_model_checks_that_shared_dictionaries_are_equal() -> None:
    cfg = tiny_config(share_all_embeddings=True)
    same = build_model(cfg, _Dict(list("abcdefgh")), _Dict(list("abcdefgh")))
    assert same.decoder.output_projection.weight.shape == (8, 32)
    with pytest.raises(UserError, match="share_all_embeddings"):
        build_model(cfg, _Dict(list("abcdefgh")), _Dict(list("abcdefgX")))
    untied = build_model(tiny_config(), _Dict(list("abcd")), _Dict(list("abcdefgh")))
    assert untied.encoder.embed.embed_tokens.weight.shape == (4, 32)


@pytest.mark.parametrize(
    ("overrides", "option"),
    [({"num_heads": 5}, "arch.num_heads"), ({"dropout": 1.0}, "arch.dropout")],
)
def test_bad_dimensions_are_user_errors(overrides: dict, option: str) -> None:
    with pytest.raises(UserError, match=option):
        tiny_config(**overrides).validate()


def test_embedding_init_std_and_zero_pad_row() -> None:
    cfg = tiny_config(d_model=64, num_heads=4)
    model = Transformer(cfg, src_vocab_size=2000, tgt_vocab_size=2000, pad=PAD)
    for embedding in (model.encoder.embed.embed_tokens, model.decoder.embed.embed_tokens):
        weight = embedding.weight.detach()
        assert torch.count_nonzero(weight[PAD]) == 0
        rows = torch.cat([weight[:PAD], weight[PAD + 1 :]])
        assert rows.std().item() == pytest.approx(64**-0.5, rel=0.05)
        assert abs(rows.mean().item()) < 0.01


@pytest.mark.parametrize("norm_position", list(NormPosition))
def test_biases_zero_and_layernorms_identity_at_init(norm_position: NormPosition) -> None:
    model = tiny_model(norm_position)
    for name, param in model.named_parameters():
        if name.endswith("bias"):
            assert torch.count_nonzero(param) == 0, name
    for module in model.modules():
        if isinstance(module, nn.LayerNorm):
            assert torch.all(module.weight == 1) and torch.all(module.bias == 0)


def test_named_analysis_weights_cover_every_projection_once() -> None:
    model = tiny_model()
    named = named_analysis_weights(model)
    names = [name for name, _ in named]
    assert len(names) == len(set(names)) == 2 * 6 + 2 * 10
    assert names[0] == "encoder.0.self_attn.q_proj"
    assert "decoder.1.cross_attn.out_proj" in names and names[-1] == "decoder.1.ffn.fc2"
    params = dict(model.named_parameters())
    for name, weight in named:
        side, layer, rest = name.split(".", 2)
        assert weight is params[f"{side}.layers.{layer}.{rest}.weight"]


def test_sinusoidal_table_layout_is_half_sin_half_cos() -> None:
    table = sinusoidal_table(50, 16)  # (P, D)
    torch.testing.assert_close(table[0], torch.cat([torch.zeros(8), torch.ones(8)]))
    torch.testing.assert_close(table[:, :8] ** 2 + table[:, 8:] ** 2, torch.ones(50, 8))
    torch.testing.assert_close(table[:, 0], torch.arange(50.0).sin())  # frequency 1 first
    assert sinusoidal_table(4, 7)[:, -1].abs().max() == 0  # odd width: zero last column


def test_every_parameter_gets_a_gradient_in_training() -> None:
    model = tiny_model(NormPosition.post, share_decoder_input_output_embed=False).train()
    src = random_tokens([6, 4], vocab=SRC_VOCAB)
    prev = random_tokens([5, 5], vocab=TGT_VOCAB)
    model(src, prev).logsumexp(-1).sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_dropout_only_in_training_mode() -> None:
    model = tiny_model()
    src = random_tokens([6, 4], vocab=SRC_VOCAB)
    prev = random_tokens([5, 5], vocab=TGT_VOCAB)
    with torch.no_grad():
        torch.testing.assert_close(model(src, prev), model(src, prev))
        model.train()
        assert not torch.allclose(model(src, prev), model(src, prev))
