"""Gradient norms at initialization (nmt_preln.analysis.grad_norm) on a tiny real data directory."""

from __future__ import annotations

import dataclasses
import math
import os

import pytest
import torch

from nmt_preln.analysis.grad_norm import (
    DEPTH_CSV,
    PROFILE_CSV,
    GradNormRow,
    batch_gradient_norms,
    load_batches,
    measure,
    read_rows,
    run_grad_norm,
    sample_norms,
    summarize,
    write_rows,
)
from nmt_preln.config import ModelConfig, NormPosition
from nmt_preln.data.collate import collate
from nmt_preln.errors import UserError
from nmt_preln.models.transformer import build_model
from nmt_preln.tools_config import GradNormConfig

TINY = ModelConfig(
    name="tiny",
    encoder_layers=2,
    decoder_layers=2,
    d_model=32,
    ffn_dim=64,
    num_heads=2,
    dropout=0.1,
)
CPU = torch.device("cpu")
ATTN = ("q_proj", "k_proj", "v_proj", "out_proj")
EVERY = [p.value for p in NormPosition]  # the analysis takes every placement


def cfg_for(data: str, out: str = "unused", **changes: object) -> GradNormConfig:
    base = GradNormConfig(data=data, out=out, seeds=1, batches=1, max_tokens=512, depths="")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_postln_last_layer_ffn_gradient_exceeds_preln(tiny_data: str) -> None:
    """The paper's Section 3: at init, Post-LN's gradient near the output is larger.

    6-6 layers, d_model 32, 3 seeds x 2 batches; on this data the paired ratio is about 2-3
    for every seed, so the margin below is far from noise.
    """
    cfg = cfg_for(tiny_data, seeds=3, batches=2)
    data = load_batches(cfg)
    six = dataclasses.replace(TINY, encoder_layers=6, decoder_layers=6)
    means = {}
    for placement in (NormPosition.post, NormPosition.pre):
        samples = sample_norms(
            dataclasses.replace(six, norm_position=placement),
            data,
            seeds=[1, 2, 3],
            label_smoothing=0.1,
            train_mode=False,
            device=CPU,
        )
        post_or_pre = samples["decoder.5.ffn.fc2"]
        assert len(post_or_pre) == 6
        means[placement] = sum(post_or_pre) / len(post_or_pre)
    assert means[NormPosition.post] > 1.5 * means[NormPosition.pre]


def test_gradient_is_of_the_token_mean_loss(tiny_data: str) -> None:
    """Duplicating every sentence leaves the token-mean gradient unchanged (a sum would double)."""
    data = load_batches(cfg_for(tiny_data))
    batch = data.batches[0]
    torch.manual_seed(0)
    model = build_model(TINY, data.src_dict, data.tgt_dict).eval()
    assert batch.target is not None
    rows = [r[r.ne(model.pad)].numpy() for r in batch.src_tokens]
    tgts = [t[t.ne(model.pad)].numpy() for t in batch.target]
    doubled = collate(
        rows * 2, tgts * 2, pad=model.pad, eos=data.tgt_dict.eos, ids=range(2 * len(rows))
    )
    once = batch_gradient_norms(model, batch, label_smoothing=0.1)
    twice = batch_gradient_norms(model, doubled, label_smoothing=0.1)
    assert once.keys() == twice.keys()
    for name, value in once.items():
        assert twice[name] == pytest.approx(value, rel=1e-4), name
    assert all(p.grad is None for p in model.parameters())  # leaves no gradients behind


def test_dropout_off_by_default_makes_norms_deterministic(tiny_data: str) -> None:
    data = load_batches(cfg_for(tiny_data))
    kwargs = dict(seeds=[4], label_smoothing=0.1, device=CPU)
    a = sample_norms(TINY, data, train_mode=False, **kwargs)  # type: ignore[arg-type]
    b = sample_norms(TINY, data, train_mode=False, **kwargs)  # type: ignore[arg-type]
    assert a == b
    dropped = sample_norms(TINY, data, train_mode=True, **kwargs)  # type: ignore[arg-type]
    assert dropped != a


def test_profile_has_one_row_per_placement_layer_and_weight(tiny_data: str) -> None:
    cfg = cfg_for(tiny_data, layers=3, seeds=2)
    profile, depth = measure(cfg, TINY, load_batches(cfg), device=CPU)
    assert depth == []
    keys = [(r.placement, r.stack, r.layer, r.weight) for r in profile]
    assert len(keys) == len(set(keys))
    enc_weights = ("ffn.fc1", "ffn.fc2", *(f"self_attn.{a}" for a in ATTN))
    dec_weights = (*enc_weights, *(f"cross_attn.{a}" for a in ATTN))
    expected = {
        (p, stack, i, w)
        for p in EVERY
        for i in (1, 2, 3)
        for stack, weights in (("encoder", enc_weights), ("decoder", dec_weights))
        for w in weights
    }
    assert set(keys) == expected
    assert all(r.layers == 3 and r.samples == 2 and r.mean > 0 and r.std >= 0 for r in profile)


def test_depth_sweep_reports_the_last_layer_of_each_depth(tiny_data: str) -> None:
    cfg = cfg_for(tiny_data, depths="1,3,2")
    _, depth = measure(cfg, TINY, load_batches(cfg), device=CPU)
    assert len(depth) == len(EVERY) * 3 * 2 * 2  # placements x depths x stacks x (fc1, fc2)
    assert {(r.placement, r.layers, r.stack, r.weight) for r in depth} == {
        (p, n, s, w) for p in EVERY for n in (1, 2, 3) for s in ("encoder", "decoder")
        for w in ("ffn.fc1", "ffn.fc2")
    }  # fmt: skip
    assert all(r.layer == r.layers for r in depth)


def test_summarize_mean_and_sample_std() -> None:
    rows = summarize(
        {"decoder.1.ffn.fc2": [1.0, 2.0, 3.0], "encoder.0.self_attn.q_proj": [5.0]},
        placement=NormPosition.pre,
        layers=2,
    )
    by_weight = {r.weight: r for r in rows}
    fc2 = by_weight["ffn.fc2"]
    assert (fc2.stack, fc2.layer, fc2.mean, fc2.samples) == ("decoder", 2, 2.0, 3)
    assert fc2.std == pytest.approx(1.0)
    q = by_weight["self_attn.q_proj"]
    assert (q.stack, q.layer, q.std, q.placement) == ("encoder", 1, 0.0, "pre")


def test_csv_round_trip(tmp_path: os.PathLike[str]) -> None:
    rows = [GradNormRow("post", "decoder", 6, 6, "ffn.fc2", 1.6123456, 0.05, 6)]
    path = os.path.join(tmp_path, "sub", "x.csv")
    write_rows(rows, path)
    back = read_rows(path)
    assert len(back) == 1 and back[0].weight == "ffn.fc2"
    assert math.isclose(back[0].mean, 1.61235, rel_tol=1e-5)
    with pytest.raises(UserError, match=r"x\.csv"):
        read_rows(os.path.join(tmp_path, "x.csv"))


@pytest.mark.parametrize("text,expected", [("6,8, 10", [6, 8, 10]), ("", []), ("4,", [4])])
def test_parse_depths(text: str, expected: list[int]) -> None:
    assert GradNormConfig(data="d", depths=text).depth_list() == expected


@pytest.mark.parametrize("text", ["6,x", "0", "-2"])
def test_parse_depths_rejects(text: str) -> None:
    with pytest.raises(UserError, match="--depths"):
        GradNormConfig(data="d", depths=text).validate()


def test_too_many_batches_is_a_user_error(tiny_data: str) -> None:
    with pytest.raises(UserError, match="--batches 500"):
        load_batches(cfg_for(tiny_data, batches=500))


def test_run_writes_csvs_and_plots(tiny_data: str, tmp_path: os.PathLike[str]) -> None:
    out = os.path.join(tmp_path, "figs")
    written = run_grad_norm(cfg_for(tiny_data, out=out, depths="1,2", num_threads=1), TINY)
    names = sorted(os.path.basename(p) for p in written)
    png = [PROFILE_CSV.replace(".csv", ".png"), DEPTH_CSV.replace(".csv", ".png")]
    assert names == sorted([PROFILE_CSV, DEPTH_CSV, *png])
    for path in written:
        assert os.path.getsize(path) > 0
    with open(os.path.join(out, png[0]), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert len(read_rows(os.path.join(out, DEPTH_CSV))) == len(EVERY) * 2 * 2 * 2


def test_plots_draw_one_line_per_placement_with_its_title(monkeypatch: pytest.MonkeyPatch) -> None:
    from nmt_preln.analysis import plots
    from nmt_preln.models.placement import PLACEMENTS

    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig))
    rows = [
        GradNormRow(p, stack, n, n, "ffn.fc2", 1.0 + n + i, 0.1, 2)
        for i, p in enumerate(EVERY)
        for stack in ("encoder", "decoder")
        for n in (2, 4)
    ]
    plots.plot_depth_sweep(rows, "unused.png", title="t")
    plots.plot_layer_profile(rows, "unused.png", title="t")
    titles = [PLACEMENTS[NormPosition(p)].title for p in EVERY]
    assert {"DeepNorm", "Sandwich-LN", "Pre-LN", "Post-LN"} <= set(titles)
    depth_labels = [t.get_text() for t in figures[0].axes[0].get_legend().get_texts()]
    assert sorted(depth_labels) == sorted([*titles, "∝ 1/√L"])  # the guide for Pre-LN only
    profile_labels = [t.get_text() for t in figures[1].axes[0].get_legend().get_texts()]
    assert sorted(profile_labels) == sorted(titles)
