"""The figures of the reproduction, drawn with matplotlib's Agg backend (no display needed).

- :func:`plot_layer_profile`: the paper's Figure 3 (a-e), gradient norm per layer, one line per
  placement, one panel per weight kind;
- :func:`plot_depth_sweep`: Figure 3 (f), the last layer's W^2 gradient norm against depth;
- :func:`plot_curves`: Figures 2 and 4, validation loss and BLEU against epoch and update.

Every function writes one PNG and returns nothing; small figures (72 dpi) keep the
committed PNGs small.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display on servers and in tests

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from nmt_preln.models.placement import PLACEMENTS, Placement

if TYPE_CHECKING:  # grad_norm imports this module to draw its results
    from nmt_preln.analysis.curves import CurvePoint
    from nmt_preln.analysis.grad_norm import GradNormRow

# Panel order of the profile: the paper's W^1, W^2, then the attention projections.
WEIGHT_TITLES = {
    "ffn.fc1": "FFN W1",
    "ffn.fc2": "FFN W2",
    "self_attn.q_proj": "self-attn W_Q",
    "self_attn.k_proj": "self-attn W_K",
    "self_attn.v_proj": "self-attn W_V",
    "self_attn.out_proj": "self-attn W_O",
    "cross_attn.q_proj": "cross-attn W_Q",
    "cross_attn.k_proj": "cross-attn W_K",
    "cross_attn.v_proj": "cross-attn W_V",
    "cross_attn.out_proj": "cross-attn W_O",
}
DPI = 72


def _save(fig: plt.Figure, path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)


def _placements(rows: Sequence[GradNormRow]) -> list[Placement]:
    """The placements that have rows, in legend order."""
    present = {r.placement for r in rows}
    return [p for p in PLACEMENTS.values() if p.name.value in present]


def _profile_panel(ax: Axes, rows: Sequence[GradNormRow], *, weight: str) -> None:
    """One weight kind: x = encoder layers 1..L, then decoder layers L+1..2L."""
    layers = max(r.layers for r in rows)
    for placement in _placements(rows):
        mine = [r for r in rows if r.placement == placement.name and r.weight == weight]
        mine.sort(key=lambda r: (r.stack != "encoder", r.layer))
        if not mine:
            continue
        x = [r.layer + (layers if r.stack == "decoder" else 0) for r in mine]
        ax.errorbar(
            x,
            [r.mean for r in mine],
            yerr=[r.std for r in mine],
            marker="o",
            markersize=3,
            capsize=2,
            color=placement.color,
            label=placement.title,
        )
    ax.axvline(layers + 0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_title(WEIGHT_TITLES.get(weight, weight), fontsize=9)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"layer (1-{layers} enc, {layers + 1}-{2 * layers} dec)", fontsize=8)
    ax.tick_params(labelsize=7)


def plot_layer_profile(rows: Sequence[GradNormRow], path: str, *, title: str) -> None:
    """Gradient norm per layer (log scale), one panel per weight kind, one line per placement.

    Args:
        rows: the profile rows of :func:`nmt_preln.analysis.grad_norm.measure`.
        path: the PNG to write.
        title: the figure title (model and data).
    """
    weights = [w for w in WEIGHT_TITLES if any(r.weight == w for r in rows)]
    ncols = 5
    nrows = math.ceil(len(weights) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.0 * ncols, 2.6 * nrows), squeeze=False)
    for ax, weight in zip(axes.flat, weights, strict=False):
        _profile_panel(ax, rows, weight=weight)
    for ax in list(axes.flat)[len(weights) :]:
        ax.set_visible(False)
    axes.flat[0].set_ylabel("||dL/dW||_F")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_depth_sweep(rows: Sequence[GradNormRow], path: str, *, title: str) -> None:
    """The last layer's W^2 gradient norm against layers per stack, encoder and decoder panels.

    A dotted ``c / sqrt(L)`` guide through the shallowest point of each placement whose
    ``theorem1_rate`` is ``1/sqrt(L)`` (Pre-LN) shows Theorem 1's rate; Post-LN's prediction
    is a flat line.
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, stack in zip(axes, ("encoder", "decoder"), strict=True):
        for placement in _placements(rows):
            mine = sorted(
                (
                    r
                    for r in rows
                    if r.placement == placement.name and r.stack == stack and r.weight == "ffn.fc2"
                ),
                key=lambda r: r.layers,
            )
            if not mine:
                continue
            depths = [r.layers for r in mine]
            ax.errorbar(
                depths,
                [r.mean for r in mine],
                yerr=[r.std for r in mine],
                marker="o",
                capsize=3,
                color=placement.color,
                label=placement.title,
            )
            if placement.theorem1_rate == "1/sqrt(L)":
                guide = [mine[0].mean * math.sqrt(depths[0] / d) for d in depths]
                ax.plot(depths, guide, linestyle=":", color=placement.color, label="∝ 1/√L")
        ax.set_title(f"{stack}: last layer FFN W2", fontsize=9)
        ax.set_xlabel("layers per stack (L-L model)")
        ax.set_ylim(bottom=0)
    axes[0].set_ylabel("||dL/dW2||_F")
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_curves(curves: dict[str, list[CurvePoint]], path: str, *, title: str) -> None:
    """Validation loss and BLEU against epoch and against update, one line per run.

    Args:
        curves: run label -> its validation points (runs without points are listed only).
        path: the PNG to write.
        title: the figure title (the experiment group).
    """
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharey="row")
    panels = (
        (axes[0, 0], "epoch", "loss"),
        (axes[0, 1], "update", "loss"),
        (axes[1, 0], "epoch", "bleu"),
        (axes[1, 1], "update", "bleu"),
    )
    for ax, x_key, y_key in panels:
        for label, points in curves.items():
            pts = [p for p in points if getattr(p, y_key) is not None]
            if pts:
                ax.plot(
                    [getattr(p, x_key) for p in pts],
                    [getattr(p, y_key) for p in pts],
                    marker=".",
                    label=label,
                )
        ax.set_xlabel(x_key)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("validation loss (bits/token)")
    axes[1, 0].set_ylabel("validation BLEU")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04 + 0.03 * math.ceil(len(labels) / 3), 1, 1))
    _save(fig, path)
