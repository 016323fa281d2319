"""Validation like fairseq's: at mid-epoch saves, BLEU with its own search, printed samples."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from trainer_helpers import read_log

from nmt_preln.checkpoint import store as ckpt
from nmt_preln.config import LogFormat, TrainConfig
from nmt_preln.search import translator
from nmt_preln.train.trainer import train

MakeConfig = Callable[..., TrainConfig]


@pytest.mark.usefixtures("one_thread")
def test_mid_epoch_saves_validate_and_best_tracks_them(make_config: MakeConfig) -> None:
    cfg = make_config(max_update=7, max_epoch=0, checkpoint={"save_interval_updates": 2})
    train(cfg)
    save = Path(cfg.checkpoint.save_dir)
    valid = read_log(save, "valid")
    assert [r["update"] for r in valid] == [2, 4, 6, 7]
    best = min(valid, key=lambda r: r["loss"])
    state = ckpt.load_checkpoint(save / ckpt.BEST)
    assert state["num_updates"] == best["update"]
    assert state["best_metric"] == pytest.approx(best["loss"])


@pytest.mark.usefixtures("one_thread")
def test_bleu_decodes_with_its_own_search_through_the_translator(
    make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[Any] = []
    real = translator.Translator.__init__

    def spy(self: Any, *args: Any, search: Any, **kwargs: Any) -> None:
        seen.append(search)
        real(self, *args, search=search, **kwargs)

    monkeypatch.setattr(translator.Translator, "__init__", spy)
    cfg = make_config(
        max_update=2,
        validate_bleu=True,
        validate_bleu_beam=3,
        validate_bleu_lenpen=0.6,
        validate_bleu_max_len_a=0.0,
        validate_bleu_max_len_b=2,
        validate_bleu_print_samples=3,
        log_format=LogFormat.json,
    )
    train(cfg)
    assert seen and all(
        (c.beam, c.lenpen, c.max_len_a, c.max_len_b) == (3, 0.6, 0.0, 2) for c in seen
    )
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    samples = [r for r in records if r.get("split") == "sample"]
    validations = [r for r in records if r.get("split") == "valid"]
    assert len(samples) == 3 * len(validations) and validations
    assert [s["id"] for s in samples[:3]] == sorted(s["id"] for s in samples[:3])
    for sample in samples:
        assert len(sample["hypothesis"].split()) <= 2  # max_len_b=2 reached the search
        assert sample["source"] and sample["reference"]
    assert all("bleu" in v for v in validations)


@pytest.mark.usefixtures("one_thread")
def test_text_samples_are_source_reference_hypothesis_lines(
    make_config: MakeConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    train(make_config(max_update=1, validate_bleu=True, validate_bleu_print_samples=2))
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "| valid sample |" in ln]
    tags = [ln.split("| valid sample | ")[1].split("\t")[0] for ln in lines]
    assert len(tags) == 6 and [t[0] for t in tags[:3]] == ["S", "T", "H"]
    assert len({t[2:] for t in tags}) == 2  # two sentences, three lines each
