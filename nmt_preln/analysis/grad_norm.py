"""Gradient norms at initialization: the paper's Section 3 and Figure 3.

For a freshly initialized model (one seed) and one real training batch, we back-propagate the
loss the trainer optimizes, the token mean of the label-smoothed cross-entropy::

    L = (1 / ntokens) * sum_t ls_ce(logits_t, y_t)          (train/loss.py, epsilon = 0.1)

and take, for every weight matrix of :func:`named_analysis_weights` (the attention projections
W^Q, W^K, W^V, W^O and the FFN's W^1 = fc1, W^2 = fc2 of every encoder and decoder layer), the
Frobenius norm ``||dL/dW||_F``. This is the gradient fairseq's trainer sees before clipping
(it divides the summed loss by the same token count), hence the paper's scale. The norms are
averaged over ``seeds x batches`` samples (mean and standard deviation of the norms, not the
norm of an averaged gradient). The batches are the same for every seed, depth and placement,
and seed ``s`` gives every placement the same random draws (LayerNorms start at 1 and 0; a
placement's ``init_gain``, DeepNorm's beta, only rescales some of them), so the placements
(every entry of :data:`~nmt_preln.models.placement.PLACEMENTS`) are compared on paired samples.

Dropout is off by default (``model.eval()``): Theorem 1 assumes no dropout, and with it on the
norms also vary with the dropout masks. ``GradNormConfig.train_mode`` keeps it on.

Two measurements, each written as a CSV of :class:`GradNormRow`:

- the layer profile: every weight of every layer of an ``L``-``L`` model, per placement;
- the depth sweep: the last layer's FFN weights of ``L``-``L`` models for several ``L``
  (Theorem 1: ``||dL/dW^{2,L}||_F = O(d sqrt(ln d))`` for Post-LN, independent of ``L``,
  and ``O(d sqrt(ln d / L))`` for Pre-LN).
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections import defaultdict
from dataclasses import asdict, dataclass, fields, replace
from typing import cast

import torch

from nmt_preln.config import ModelConfig, NormPosition
from nmt_preln.data.collate import Batch, PairDataset, collate_indices
from nmt_preln.data.dataset import LanguagePairDataset
from nmt_preln.data.dictionary import Dictionary
from nmt_preln.devices import resolve_device
from nmt_preln.errors import UserError
from nmt_preln.models.placement import PLACEMENTS, placement_of
from nmt_preln.models.transformer import Transformer, build_model, named_analysis_weights
from nmt_preln.tools_config import GradNormConfig
from nmt_preln.train.batch_plan import batch_by_size
from nmt_preln.train.loss import label_smoothed_cross_entropy

logger = logging.getLogger(__name__)

PROFILE_CSV = "grad_norm_layers.csv"
DEPTH_CSV = "grad_norm_depth.csv"


@dataclass(frozen=True)
class GradNormRow:
    """One line of the CSVs: the gradient norm of one weight kind in one layer.

    Attributes:
        placement: the ``arch.norm_position`` value (``post``, ``pre``, ...).
        stack: ``encoder`` or ``decoder``.
        layers: layers per stack of the measured model.
        layer: 1-based index of the layer within its stack.
        weight: ``self_attn.q_proj`` ... ``cross_attn.out_proj``, ``ffn.fc1`` (W^1), ``ffn.fc2``
            (W^2).
        mean: mean Frobenius norm over the samples.
        std: standard deviation over the samples (0 for a single sample).
        samples: seeds x batches.
    """

    placement: str
    stack: str
    layers: int
    layer: int
    weight: str
    mean: float
    std: float
    samples: int


@dataclass
class Measurement:
    """The real batches and dictionaries every model is measured on."""

    batches: list[Batch]
    src_dict: Dictionary
    tgt_dict: Dictionary


def load_batches(cfg: GradNormConfig) -> Measurement:
    """The first ``cfg.batches`` token-budget batches of ``cfg.subset``, as the trainer builds them.

    Raises:
        UserError: the split has no target side or fewer batches than asked for.
    """
    dataset = LanguagePairDataset(cfg.data, cfg.subset)
    if dataset.tgt_sizes is None:
        raise UserError(f"{cfg.data}: split {cfg.subset!r} has no target side to compute a loss")
    order = batch_by_size(
        dataset.src_sizes,
        dataset.tgt_sizes,
        max_tokens=cfg.max_tokens,
        max_sentences=0,
        seed=cfg.seed,
        epoch=1,
    )
    if len(order) < cfg.batches:
        raise UserError(
            f"--batches {cfg.batches}: split {cfg.subset!r} of {cfg.data} makes only "
            f"{len(order)} batches of --max-tokens {cfg.max_tokens}"
        )
    pairs = cast(PairDataset, dataset)  # the Protocol's read-only view of the dataset
    batches = [collate_indices(pairs, indices) for indices in order[: cfg.batches]]
    return Measurement(batches=batches, src_dict=dataset.src_dict, tgt_dict=dataset.tgt_dict)


def batch_gradient_norms(
    model: Transformer, batch: Batch, *, label_smoothing: float
) -> dict[str, float]:
    """``||dL/dW||_F`` of every analysis weight for one batch (L: token-mean training loss).

    Args:
        model: on the batch's device; its train/eval mode decides dropout.
        batch: a collated batch with targets.
        label_smoothing: epsilon of the label-smoothed cross-entropy.

    Returns:
        ``{"encoder.0.self_attn.q_proj": norm, ..., "decoder.5.ffn.fc2": norm}``.
    """
    assert batch.prev_output_tokens is not None and batch.target is not None
    model.zero_grad(set_to_none=True)
    logits = model(batch.src_tokens, batch.prev_output_tokens)  # (B, T, V)
    loss_sum, _ = label_smoothed_cross_entropy(
        logits, batch.target, epsilon=label_smoothing, pad=model.pad
    )
    (loss_sum / batch.ntokens).backward()
    norms = {}
    for name, weight in named_analysis_weights(model):
        assert weight.grad is not None, name
        norms[name] = float(weight.grad.norm())
    model.zero_grad(set_to_none=True)
    return norms


def sample_norms(
    model_cfg: ModelConfig,
    data: Measurement,
    *,
    seeds: list[int],
    label_smoothing: float,
    train_mode: bool,
    device: torch.device,
) -> dict[str, list[float]]:
    """Gradient norms of every analysis weight for each (seed, batch) pair.

    Returns:
        ``{weight name: [norm of sample 1, ...]}`` with ``len(seeds) * len(batches)`` samples.
    """
    samples: dict[str, list[float]] = defaultdict(list)
    for seed in seeds:
        torch.manual_seed(seed)
        model = build_model(model_cfg, data.src_dict, data.tgt_dict).to(device)
        model.train(train_mode)
        for batch in data.batches:
            norms = batch_gradient_norms(model, batch.to(device), label_smoothing=label_smoothing)
            for name, value in norms.items():
                samples[name].append(value)
        del model
    return dict(samples)


def summarize(
    samples: dict[str, list[float]], *, placement: NormPosition, layers: int
) -> list[GradNormRow]:
    """Turn ``sample_norms`` output into rows; names look like ``decoder.3.ffn.fc2``."""
    rows = []
    for name, values in samples.items():
        stack, index, weight = name.split(".", 2)
        mean = sum(values) / len(values)
        var = sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1)
        rows.append(
            GradNormRow(
                placement=placement.value,
                stack=stack,
                layers=layers,
                layer=int(index) + 1,
                weight=weight,
                mean=mean,
                std=math.sqrt(var),
                samples=len(values),
            )
        )
    return rows


def measure(
    cfg: GradNormConfig, model_cfg: ModelConfig, data: Measurement, *, device: torch.device
) -> tuple[list[GradNormRow], list[GradNormRow]]:
    """The layer profile and the depth sweep, each for every placement (``PLACEMENTS`` order).

    Args:
        cfg: seeds, loss, dropout, depths.
        model_cfg: the dimensions; ``norm_position`` and the layer counts are replaced.
        data: the batches, from :func:`load_batches`.
        device: where the models run.

    Returns:
        ``(profile_rows, depth_rows)``; depth rows are the last layer's ``ffn.fc1``/``ffn.fc2``.
    """
    profile_layers = cfg.layers or model_cfg.encoder_layers
    depths = cfg.depth_list()
    seeds = list(range(cfg.seed, cfg.seed + cfg.seeds))
    cache: dict[tuple[NormPosition, int], list[GradNormRow]] = {}
    for placement in PLACEMENTS:
        for layers in dict.fromkeys([profile_layers, *depths]):  # ordered, no repeats
            logger.info(
                "%s, %d-%d layers: %d seeds x %d batches",
                placement_of(placement).title,
                layers,
                layers,
                len(seeds),
                len(data.batches),
            )
            sized = replace(
                model_cfg, norm_position=placement, encoder_layers=layers, decoder_layers=layers
            )
            samples = sample_norms(
                sized,
                data,
                seeds=seeds,
                label_smoothing=cfg.label_smoothing,
                train_mode=cfg.train_mode,
                device=device,
            )
            cache[placement, layers] = summarize(samples, placement=placement, layers=layers)
    profile = [row for p in PLACEMENTS for row in cache[p, profile_layers]]
    depth = [
        row
        for p in PLACEMENTS
        for layers in depths
        for row in cache[p, layers]
        if row.layer == layers and row.weight.startswith("ffn.")
    ]
    return profile, depth


def write_rows(rows: list[GradNormRow], path: str) -> None:
    """Write rows as CSV with a header (floats with 6 significant digits)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[fl.name for fl in fields(GradNormRow)])
        writer.writeheader()
        for row in rows:
            values = asdict(row)
            values["mean"], values["std"] = f"{row.mean:.6g}", f"{row.std:.6g}"
            writer.writerow(values)


def read_rows(path: str) -> list[GradNormRow]:
    """Read a CSV written by :func:`write_rows`.

    Raises:
        UserError: the file is missing or lacks a column.
    """
    try:
        with open(path, newline="", encoding="utf-8") as f:
            records = list(csv.DictReader(f))
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return [
            GradNormRow(
                placement=r["placement"],
                stack=r["stack"],
                layers=int(r["layers"]),
                layer=int(r["layer"]),
                weight=r["weight"],
                mean=float(r["mean"]),
                std=float(r["std"]),
                samples=int(r["samples"]),
            )
            for r in records
        ]
    except (KeyError, ValueError) as e:
        raise UserError(f"{path}: not a grad-norm CSV ({e})") from None


def _title(cfg: GradNormConfig, model_cfg: ModelConfig, data: Measurement) -> str:
    dropout = f"dropout {model_cfg.dropout}" if cfg.train_mode else "dropout off"
    return (
        f"{model_cfg.name}: d_model {model_cfg.d_model}, ffn {model_cfg.ffn_dim}, "
        f"{model_cfg.num_heads} heads, {dropout} | {os.path.basename(cfg.data.rstrip('/'))} "
        f"{cfg.subset}: {cfg.seeds} seeds x {len(data.batches)} batches of {cfg.max_tokens} "
        "tokens | token-mean label-smoothed loss"
    )


def run_grad_norm(cfg: GradNormConfig, model_cfg: ModelConfig) -> list[str]:
    """``nmt-analyze grad-norm``: measure, then write the CSVs and PNGs into ``cfg.out``.

    Args:
        cfg: what to measure and where to write.
        model_cfg: the dimensions (an ``arch`` option); placement and depth are replaced.

    Returns:
        The paths written: ``grad_norm_layers.csv``/``.png`` and, unless ``cfg.depths`` is
        empty, ``grad_norm_depth.csv``/``.png``.
    """
    from nmt_preln.analysis import plots  # matplotlib only once the measurement is done

    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    device = resolve_device(cfg.device, option="--device cuda")
    data = load_batches(cfg)
    profile, depth = measure(cfg, model_cfg, data, device=device)
    title = _title(cfg, model_cfg, data)
    written = []
    profile_csv = os.path.join(cfg.out, PROFILE_CSV)
    write_rows(profile, profile_csv)
    plots.plot_layer_profile(profile, profile_csv.replace(".csv", ".png"), title=title)
    written += [profile_csv, profile_csv.replace(".csv", ".png")]
    if depth:
        depth_csv = os.path.join(cfg.out, DEPTH_CSV)
        write_rows(depth, depth_csv)
        plots.plot_depth_sweep(depth, depth_csv.replace(".csv", ".png"), title=title)
        written += [depth_csv, depth_csv.replace(".csv", ".png")]
    for row in depth or profile:
        if row.stack == "decoder" and row.weight == "ffn.fc2" and row.layer == row.layers:
            logger.info(
                "%s %d-%d: last decoder layer ||dL/dW2||_F = %.4g +- %.2g",
                placement_of(row.placement).title,
                row.layers,
                row.layers,
                row.mean,
                row.std,
            )
    return written
