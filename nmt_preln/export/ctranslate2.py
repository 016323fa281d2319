"""Export a checkpoint to a CTranslate2 model directory (``nmt-export --format ctranslate2``).

The weights go through ``ctranslate2.specs.TransformerSpec`` (the same route as CTranslate2's
own fairseq converter): Pre-LN or Post-LN from ``arch.norm_position`` (a placement that
CTranslate2's Transformer cannot compute, e.g. a scaled skip connection, is refused by name:
see ``Placement.ctranslate2_gap``), the sinusoidal table
row t for token t, embeddings scaled by sqrt(d_model), self-attention q/k/v fused into one
matrix, cross-attention k/v fused, and fairseq's decoding conventions (``</s>`` starts the
decoder, ``</s>`` is appended to the source). The directory also gets the SentencePiece
model(s) of the checkpoint, so ``spm -> ctranslate2.Translator -> spm`` needs nothing else.

Output file names are fixed, never taken from the checkpoint (a forged language code such
as ``x/../../../tmp/x`` must not become a path): ``spm.model`` when both sides share one
model, else ``spm.src.model`` (source side) and ``spm.tgt.model`` (target side).
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor, nn

from nmt_preln.checkpoint.store import load_model_from_checkpoint
from nmt_preln.config import Activation, ModelConfig
from nmt_preln.errors import UserError
from nmt_preln.models.attention import MultiheadAttention
from nmt_preln.models.layers import DecoderLayer, EncoderLayer, Residual
from nmt_preln.models.placement import Placement, placement_of
from nmt_preln.models.transformer import (
    Decoder,
    Encoder,
    SinusoidalPositions,
    Transformer,
    TransformerEmbedding,
)

# nn.LayerNorm's default; CTranslate2 must use the same epsilon to give the same numbers.
LAYER_NORM_EPSILON = 1e-5


def _ctranslate2() -> Any:
    """Import CTranslate2 lazily: an optional dependency (``nmt-preln[export]``)."""
    try:
        return importlib.import_module("ctranslate2")
    except ImportError as e:
        raise UserError(
            "--format ctranslate2 needs the ctranslate2 package (pip install 'nmt-preln[export]')"
        ) from e


def _array(t: Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def _set_linear(spec: Any, linear: nn.Linear) -> None:
    spec.weight = _array(linear.weight)  # (out, in), CTranslate2's layout too
    if linear.bias is not None:
        spec.bias = _array(linear.bias)


def _set_fused(spec: Any, linears: list[nn.Linear]) -> None:
    """One linear spec holding several projections stacked along the output dimension."""
    spec.weight = np.concatenate([_array(x.weight) for x in linears])  # (n*out, in)
    spec.bias = np.concatenate([_array(x.bias) for x in linears])  # (n*out,)


def _set_norm(spec: Any, residual: Residual) -> None:
    """The LayerNorm of a residual block, wherever it sits (pre or post)."""
    norm = residual.pre_norm if isinstance(residual.pre_norm, nn.LayerNorm) else residual.post_norm
    assert isinstance(norm, nn.LayerNorm)
    spec.gamma, spec.beta = _array(norm.weight), _array(norm.bias)


def _set_attention(
    spec: Any, attn: MultiheadAttention, residual: Residual, *, self_attn: bool
) -> None:
    if self_attn:
        _set_fused(spec.linear[0], [attn.q_proj, attn.k_proj, attn.v_proj])
    else:
        _set_linear(spec.linear[0], attn.q_proj)
        _set_fused(spec.linear[1], [attn.k_proj, attn.v_proj])
    _set_linear(spec.linear[-1], attn.out_proj)
    _set_norm(spec.layer_norm, residual)


def _set_ffn(spec: Any, layer: EncoderLayer | DecoderLayer) -> None:
    _set_linear(spec.linear_0, layer.ffn.fc1)
    _set_linear(spec.linear_1, layer.ffn.fc2)
    _set_norm(spec.layer_norm, layer.ffn_residual)


def _set_inputs(spec: Any, embed: TransformerEmbedding, *, positions: int) -> None:
    embeddings = spec.embeddings[0] if isinstance(spec.embeddings, list) else spec.embeddings
    embeddings.weight = _array(embed.embed_tokens.weight)  # (V, D)
    spec.scale_embeddings = embed.scale
    if isinstance(embed.positions, SinusoidalPositions):
        spec.position_encodings.encodings = _array(embed.positions(0, positions))  # (P, D)
    else:
        spec.position_encodings.encodings = _array(embed.positions.weight)  # (P, D)


def _set_final_norm(spec: Any, stack: Encoder | Decoder) -> None:
    if isinstance(stack.final_norm, nn.LayerNorm):  # Pre-LN only
        spec.layer_norm.gamma = _array(stack.final_norm.weight)
        spec.layer_norm.beta = _array(stack.final_norm.bias)


def exportable_placement(cfg: ModelConfig) -> Placement:
    """The model's placement if CTranslate2 computes it exactly.

    Raises:
        UserError: the placement needs something CTranslate2's Transformer lacks (named).
    """
    placement = placement_of(cfg.norm_position)
    if placement.ctranslate2_gap:
        raise UserError(
            f"--format ctranslate2 cannot export norm_position {placement.name} "
            f"({placement.title}): {placement.ctranslate2_gap}; use --format safetensors"
        )
    return placement


def _vocabulary(symbols: list[str]) -> list[str]:
    # CTranslate2 reserves "<blank>" for padding, as its fairseq converter maps it.
    return ["<blank>" if s == "<pad>" else s for s in symbols]


def build_spec(model: Transformer, *, src_symbols: list[str], tgt_symbols: list[str]) -> Any:
    """A filled ``ctranslate2.specs.TransformerSpec`` with this model's weights.

    Args:
        model: the Transformer (any device; weights are copied to numpy float32).
        src_symbols: source dictionary symbols (fairseq order: <s> <pad> </s> <unk> ...).
        tgt_symbols: target dictionary symbols.

    Returns:
        The spec, not yet validated or saved.
    """
    specs = importlib.import_module("ctranslate2.specs")
    cfg = model.cfg
    placement = exportable_placement(cfg)
    activation = {
        Activation.relu: specs.Activation.RELU,
        Activation.gelu: specs.Activation.GELU,  # nn.GELU(): the exact erf form
    }[cfg.activation]
    spec = specs.TransformerSpec.from_config(
        (cfg.encoder_layers, cfg.decoder_layers),
        cfg.num_heads,
        pre_norm=placement.pre_norm,
        activation=activation,
    )
    positions = cfg.max_positions
    _set_inputs(spec.encoder, model.encoder.embed, positions=positions)
    for layer_spec, enc_layer in zip(spec.encoder.layer, model.encoder.layers, strict=True):
        attn, residual = enc_layer.self_attn, enc_layer.self_attn_residual
        _set_attention(layer_spec.self_attention, attn, residual, self_attn=True)
        _set_ffn(layer_spec.ffn, enc_layer)
    _set_final_norm(spec.encoder, model.encoder)
    _set_inputs(spec.decoder, model.decoder.embed, positions=positions)
    _set_linear(spec.decoder.projection, model.decoder.output_projection)
    for layer_spec, dec_layer in zip(spec.decoder.layer, model.decoder.layers, strict=True):
        attn, residual = dec_layer.self_attn, dec_layer.self_attn_residual
        _set_attention(layer_spec.self_attention, attn, residual, self_attn=True)
        attn, residual = dec_layer.cross_attn, dec_layer.cross_attn_residual
        _set_attention(layer_spec.attention, attn, residual, self_attn=False)
        _set_ffn(layer_spec.ffn, dec_layer)
    _set_final_norm(spec.decoder, model.decoder)
    spec.register_source_vocabulary(_vocabulary(src_symbols))
    spec.register_target_vocabulary(_vocabulary(tgt_symbols))
    spec.config.decoder_start_token = "</s>"  # fairseq: the first decoder input is </s>
    spec.config.add_source_eos = True  # our binarized sources end in </s>
    spec.config.layer_norm_epsilon = LAYER_NORM_EPSILON
    return spec


def export_ctranslate2(
    path: str, out: str, *, quantization: str = "float32", force: bool = False
) -> Path:
    """Convert the checkpoint ``path`` into the CTranslate2 model directory ``out``.

    Args:
        path: a checkpoint written by nmt-train.
        out: output directory (must not exist unless ``force``).
        quantization: CTranslate2 weight type (float32, int8, int8_float32, float16, ...).
        force: replace ``out`` when it exists.

    Returns:
        The output directory; it holds ``model.bin``, ``config.json``, the vocabularies and
        ``spm.model`` (joint) or ``spm.src.model`` + ``spm.tgt.model`` when the checkpoint
        carries them.

    Raises:
        UserError: missing package, existing output, unknown quantization, bad checkpoint.
    """
    _ctranslate2()
    target = Path(out)
    if target.exists() and not force:
        raise UserError(f"{out} already exists (use --force to replace it)")
    model, state = load_model_from_checkpoint(path, device="cpu")
    spec = build_spec(model, src_symbols=state["src_dict"], tgt_symbols=state["tgt_dict"])
    spec.validate()
    try:
        spec.optimize(quantization=quantization)
    except ValueError as e:
        raise UserError(f"--quantization {quantization}: {e}") from e
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    spec.save(str(target))
    write_spm_models(state, target)
    return target


# Fixed names: nothing read from a checkpoint ever becomes part of a path.
SHARED_SPM = "spm.model"
SIDE_SPM = {"source_lang": "spm.src.model", "target_lang": "spm.tgt.model"}


def write_spm_models(state: dict[str, Any], target: Path) -> dict[str, str]:
    """Write the checkpoint's SentencePiece models under fixed names in ``target``.

    ``spm.model`` when both languages share one model, else ``spm.src.model`` and
    ``spm.tgt.model``. The state was validated by ``load_checkpoint``: ``spm_models`` maps
    source_lang/target_lang (and only those) to model bytes.

    Returns:
        ``{language: file name}`` of what was written (``{}`` without SentencePiece).
    """
    models: dict[str, bytes] = state.get("spm_models") or {}
    if not models:
        return {}
    if len(set(models.values())) == 1:
        (target / SHARED_SPM).write_bytes(next(iter(models.values())))
        return dict.fromkeys(models, SHARED_SPM)
    written = {}
    for side, name in SIDE_SPM.items():
        lang = state[side]
        if lang in models:
            (target / name).write_bytes(models[lang])
            written[lang] = name
    return written
