"""Norm placement: the one place that says what each placement of the LayerNorm is.

A placement is data, read by everyone who needs to know it (:class:`~nmt_preln.models.layers.
Residual`, the stacks' final norm, the initialization, the exporters, the gradient-norm
analysis and its plots), so a new placement is a new :class:`NormPosition` member and a new
entry of :data:`PLACEMENTS`, here and nowhere else. One residual block computes::

    y = post_norm(alpha * x + drop(branch_norm(f(pre_norm(x)))))

where each ``*_norm`` is a LayerNorm or the identity, ``alpha = residual_scale(...)`` and the
block's FFN and value/output projections are Xavier-initialized with the extra gain
``init_gain(...)``. This module is torch-free: ``nmt_preln.config`` takes :class:`NormPosition`
from here, and the checkpoint schema and Hydra validate ``arch.norm_position`` against it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Side = Literal["encoder", "decoder"]
# (encoder_layers N, decoder_layers M, side) -> a constant of that side's blocks.
DepthRule = Callable[[int, int, Side], float]


class NormPosition(StrEnum):
    """Where the LayerNorms sit relative to each residual connection (``arch.norm_position``).

    The values are the strings of configs and checkpoints ("pre" and "post" since the first
    format version); :data:`PLACEMENTS` says what each one builds.
    """

    pre = "pre"  # x + f(LN(x)), plus a final LN on encoder and decoder outputs
    post = "post"  # LN(x + f(x)), as in Vaswani et al. (2017)
    deepnorm = "deepnorm"  # LN(alpha x + f(x)), beta-scaled init (Wang et al., 2022)
    sandwich = "sandwich"  # x + LN(f(LN(x))), plus the final LN (Ding et al., 2021)


def _one(encoder_layers: int, decoder_layers: int, side: Side) -> float:
    """No scaling: the residual stream and the initialization as in Vaswani et al. (2017)."""
    return 1.0


def deepnorm_alpha(encoder_layers: int, decoder_layers: int, side: Side) -> float:
    """DeepNorm's skip-connection factor for an N-layer encoder, M-layer decoder model.

    Wang et al. (2022), "DeepNet: Scaling Transformers to 1,000 Layers", Section 2 (the
    pseudo-code and the table of constants, Figure 2) for encoder-decoder models, derived in
    Section 4::

        encoder: alpha = 0.81 (N^4 M)^(1/16)        decoder: alpha = (3 M)^(1/4)
    """
    n, m = encoder_layers, decoder_layers
    return 0.81 * (n**4 * m) ** (1 / 16) if side == "encoder" else (3 * m) ** (1 / 4)


def deepnorm_beta(encoder_layers: int, decoder_layers: int, side: Side) -> float:
    """DeepNorm's Xavier gain of the FFN and value/output projections (same source)::

        encoder: beta = 0.87 (N^4 M)^(-1/16)        decoder: beta = (12 M)^(-1/4)

    The paper's pseudo-code gives these weights Xavier gain beta and the queries and keys
    gain 1; here beta multiplies the gain each projection has anyway (fairseq's 1/sqrt(2) for
    q/k/v, 1 for the others), which is what the authors' torchscale code does by dividing
    the fairseq-initialized ``fc1``/``fc2``/``v_proj``/``out_proj`` weights. Note that
    torchscale's encoder divides by (N^4 M)^(1/16) / 1.15, i.e. uses 1.15 where the formula
    above has 0.87 = 1 / 1.15; we follow the formula as stated above.
    """
    n, m = encoder_layers, decoder_layers
    return 0.87 * (n**4 * m) ** (-1 / 16) if side == "encoder" else (12 * m) ** (-1 / 4)


@dataclass(frozen=True)
class Placement:
    """What one norm placement builds.

    Attributes:
        name: the ``arch.norm_position`` value.
        title: how logs and figures name it (``Pre-LN``).
        arch_option: the ``conf/arch`` option that selects it (``+arch=preln``).
        pre_norm: a LayerNorm on the branch input, ``f(LN(x))``.
        post_norm: a LayerNorm after the residual sum, ``LN(x + f(x))``.
        branch_norm: a LayerNorm on the branch output before the sum, ``x + LN(f(x))``.
        final_norm: a LayerNorm on the output of the encoder and of the decoder stacks
            (needed when the residual stream itself is never normalized).
        residual_scale: ``alpha(N, M, side)``, the factor of the skip connection.
        init_gain: ``beta(N, M, side)``, an extra Xavier gain of the FFN (``fc1``, ``fc2``)
            and of the attention value/output projections (``v_proj``, ``out_proj``).
        ctranslate2_gap: empty when CTranslate2's Transformer computes exactly this block;
            otherwise what it lacks (the exporter refuses the placement with this reason).
        theorem1_rate: the depth rate Xiong et al. (2020), Theorem 1 give for the last
            layer's FFN gradient norm (``"1/sqrt(L)"``, ``"flat"``), or ``""`` where the
            theorem says nothing; the depth plot draws a guide for ``"1/sqrt(L)"``.
        color: the matplotlib colour of its lines in every figure.
    """

    name: NormPosition
    title: str
    arch_option: str
    pre_norm: bool
    post_norm: bool
    branch_norm: bool
    final_norm: bool
    residual_scale: DepthRule = _one
    init_gain: DepthRule = _one
    ctranslate2_gap: str = ""
    theorem1_rate: str = ""
    color: str = "tab:grey"

    @property
    def plain(self) -> bool:
        """Only a pre- or post-norm: no branch norm, no skip scaling, no init gain (as
        ``torch.nn.Transformer``'s ``norm_first`` switch can build)."""
        scaled = self.residual_scale is not _one or self.init_gain is not _one
        return not (self.branch_norm or scaled) and self.pre_norm != self.post_norm


# Every placement, in the order of tables and figure legends (Post-LN first, as in the paper).
PLACEMENTS: dict[NormPosition, Placement] = {
    NormPosition.post: Placement(
        name=NormPosition.post,
        title="Post-LN",
        arch_option="postln",
        pre_norm=False,
        post_norm=True,
        branch_norm=False,
        final_norm=False,
        theorem1_rate="flat",
        color="tab:red",
    ),
    NormPosition.pre: Placement(
        name=NormPosition.pre,
        title="Pre-LN",
        arch_option="preln",
        pre_norm=True,
        post_norm=False,
        branch_norm=False,
        final_norm=True,
        theorem1_rate="1/sqrt(L)",
        color="tab:blue",
    ),
    # Post-LN whose skip connection is up-weighted and whose branches start small, so that
    # each update changes the model by a bounded amount whatever the depth.
    NormPosition.deepnorm: Placement(
        name=NormPosition.deepnorm,
        title="DeepNorm",
        arch_option="deepnorm",
        pre_norm=False,
        post_norm=True,
        branch_norm=False,
        final_norm=False,
        residual_scale=deepnorm_alpha,
        init_gain=deepnorm_beta,
        ctranslate2_gap="its Transformer has no scaled residual connection (alpha x + f(x))",
        color="tab:green",
    ),
    # CogView's Sandwich-LN (Ding et al., 2021, "CogView: Mastering Text-to-Image Generation
    # via Transformers", its section on stabilizing training): Pre-LN plus a LayerNorm on the
    # branch output, which bounds what each block adds to the residual stream.
    NormPosition.sandwich: Placement(
        name=NormPosition.sandwich,
        title="Sandwich-LN",
        arch_option="sandwich",
        pre_norm=True,
        post_norm=False,
        branch_norm=True,
        final_norm=True,
        ctranslate2_gap="its Transformer has no LayerNorm on the branch output (x + LN(f(x)))",
        color="tab:purple",
    ),
}


def placement_of(position: NormPosition | str) -> Placement:
    """The :class:`Placement` of an ``arch.norm_position`` value (a member or its string)."""
    return PLACEMENTS[NormPosition(position)]
