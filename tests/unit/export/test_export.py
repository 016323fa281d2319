"""nmt-export: CTranslate2 decodes like nmt-generate; safetensors round-trips the weights."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from export_toy import make_checkpoint
from nmt_preln.cli.export import main as export_main

from nmt_preln.checkpoint.store import load_model_from_checkpoint
from nmt_preln.config import GenerateConfig, NormPosition, SearchConfig
from nmt_preln.data.dataset import LanguagePairDataset
from nmt_preln.export.ctranslate2 import export_ctranslate2
from nmt_preln.export.safetensors import export_safetensors, load_safetensors
from nmt_preln.generate.run import generate

ctranslate2 = pytest.importorskip("ctranslate2")
MAX_LEN = 10  # generated tokens before the forced </s>; CTranslate2 counts them the same way


def _nmt_generate_greedy(data_dir: Path, ckpt: Path) -> dict[int, list[str]]:
    """H- pieces of ``nmt-generate --beam 1`` on the test split, by sentence id."""
    out = io.StringIO()
    cfg = GenerateConfig(
        data=str(data_dir), path=str(ckpt), search=SearchConfig(beam=1, max_len_b=MAX_LEN)
    )
    generate(cfg, stdout=out, stderr=io.StringIO())
    hyps = [line.split("\t") for line in out.getvalue().splitlines() if line.startswith("H-")]
    return {int(h[0][2:]): h[2].split() for h in hyps}


def _sources(data_dir: Path) -> list[list[str]]:
    data = LanguagePairDataset(str(data_dir), "test")
    return [[data.src_dict[int(t)] for t in data.src[i][:-1]] for i in range(len(data))]


@pytest.fixture(scope="module", params=[NormPosition.pre, NormPosition.post], ids=lambda n: n.value)
def exported(
    request: pytest.FixtureRequest, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
):
    root = tmp_path_factory.mktemp(f"ct2-{request.param.value}")
    ckpt = make_checkpoint(data_dir, root / "model.pt", norm=request.param)
    return ckpt, export_ctranslate2(str(ckpt), str(root / "ct2"))


def test_ctranslate2_greedy_matches_nmt_generate(exported, data_dir: Path) -> None:
    ckpt, out = exported
    ours = _nmt_generate_greedy(data_dir, ckpt)
    translator = ctranslate2.Translator(str(out), device="cpu", intra_threads=1)
    results = translator.translate_batch(
        _sources(data_dir), beam_size=1, max_decoding_length=MAX_LEN, min_decoding_length=1
    )
    theirs = {i: r.hypotheses[0] for i, r in enumerate(results)}
    assert theirs == ours
    assert len({tuple(h) for h in ours.values()}) > 1  # not one degenerate output for all


def test_ctranslate2_token_scores_match_the_model(exported, data_dir: Path) -> None:
    """Teacher-forced log-probs agree token by token (a stronger check than equal argmaxes)."""
    ckpt, out = exported
    model, _ = load_model_from_checkpoint(ckpt, device="cpu")
    data = LanguagePairDataset(str(data_dir), "test")
    translator = ctranslate2.Translator(str(out), device="cpu", intra_threads=1)
    for i in range(4):
        src, tgt = data[i]
        assert tgt is not None
        prev = torch.cat([torch.tensor([data.tgt_dict.eos]), torch.from_numpy(tgt[:-1])])
        with torch.no_grad():
            logits = model(torch.from_numpy(src)[None], prev[None])[0]  # (T, V)
        expected = logits.log_softmax(-1).gather(1, torch.from_numpy(tgt)[:, None])[:, 0]
        pieces = [data.tgt_dict[int(t)] for t in tgt[:-1]]
        source = [data.src_dict[int(t)] for t in src[:-1]]
        (scored,) = translator.score_batch([source], [pieces])
        torch.testing.assert_close(torch.tensor(scored.log_probs), expected, atol=1e-4, rtol=0)


def test_safetensors_round_trip_gives_identical_logits(data_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("safetensors")
    ckpt = make_checkpoint(data_dir, tmp_path / "model.pt", norm=NormPosition.pre)
    out = export_safetensors(str(ckpt), str(tmp_path / "st"))
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "config.json", "spm.model"}
    original, _ = load_model_from_checkpoint(ckpt, device="cpu")
    loaded = load_safetensors(str(out))
    assert loaded.decoder.output_projection.weight is loaded.decoder.embed.embed_tokens.weight
    src, prev = torch.randint(4, 40, (3, 7)), torch.randint(4, 40, (3, 5))
    with torch.no_grad():
        assert torch.equal(original(src, prev), loaded(src, prev))


def test_cli_refuses_existing_output_with_one_line(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = make_checkpoint(data_dir, tmp_path / "model.pt", norm=NormPosition.post)
    (tmp_path / "out").mkdir()
    args = ["--path", str(ckpt), "--out", str(tmp_path / "out")]
    assert export_main([*args, "--format", "safetensors"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("nmt-export: error:") and "--force" in err and "\n" not in err
    assert export_main([*args, "--format", "safetensors", "--force"]) == 0
    assert export_main(["--path", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x")]) == 1
    assert "missing.pt" in capsys.readouterr().err


def _forged(ckpt: Path, tmp_path: Path, **changes: object) -> Path:
    from nmt_preln.checkpoint.store import save_checkpoint

    state = torch.load(ckpt, weights_only=True)
    state.update(changes)
    forged = tmp_path / "forged.pt"
    save_checkpoint(forged, state)
    return forged


@pytest.mark.parametrize("fmt", ["safetensors", "ctranslate2"])
@pytest.mark.parametrize(
    "changes",
    [
        {"spm_models": {"x/../../../escape/PWNED": b"x"}},
        {"source_lang": "../escape", "spm_models": {}},
        {"spm_models": ["spm"]},
        {"spm_models": "spm"},
        {"spm_models": {"de": "not bytes"}},
    ],
    ids=["traversal-key", "traversal-lang", "list", "str", "str-model"],
)
def test_export_refuses_names_and_models_of_the_wrong_kind(
    fmt: str,
    changes: dict[str, object],
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip(fmt)
    ckpt = make_checkpoint(data_dir, tmp_path / "model.pt", norm=NormPosition.pre)
    forged = _forged(ckpt, tmp_path, **changes)
    out = tmp_path / "deep" / "er" / "out"
    before = sorted(p for p in tmp_path.rglob("*") if p != forged)
    assert export_main(["--format", fmt, "--path", str(forged), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nmt-export: error: checkpoint ") and err.count("\n") == 1, err
    assert "field '" in err and "Traceback" not in err
    assert sorted(p for p in tmp_path.rglob("*") if p != forged) == before  # nothing written


def test_separate_sentencepiece_models_get_fixed_names(data_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("safetensors")
    from nmt_preln.data.tokenizer import train_sentencepiece

    text = tmp_path / "en.txt"
    text.write_text("the cat sat on the mat\nthe dog ran\n" * 20, encoding="utf-8")
    en_model = train_sentencepiece(
        inputs=[str(text)],
        model_prefix=str(tmp_path / "en"),
        vocab_size=20,
        model_type="bpe",
        character_coverage=1.0,
        num_threads=1,
    )
    ckpt = make_checkpoint(data_dir, tmp_path / "model.pt", norm=NormPosition.pre)
    spm = {"de": (data_dir / "spm.model").read_bytes(), "en": Path(en_model).read_bytes()}
    forged = _forged(ckpt, tmp_path, spm_models=spm)
    out = export_safetensors(str(forged), str(tmp_path / "st"))
    names = {p.name for p in out.iterdir()}
    assert names == {"model.safetensors", "config.json", "spm.src.model", "spm.tgt.model"}
    assert (out / "spm.tgt.model").read_bytes() == spm["en"]
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["spm_models"] == {"de": "spm.src.model", "en": "spm.tgt.model"}
    ct2 = export_ctranslate2(str(forged), str(tmp_path / "ct2"))
    assert (ct2 / "spm.src.model").read_bytes() == spm["de"]
    assert not list(ct2.glob("spm.de*")) and not list(ct2.glob("spm.en*"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"src_dict": 7}, "field 'src_dict' is an int, expected a list"),
        ({"arch": {"d_model": "32"}}, "field 'arch.d_model' is a str, expected int"),
        ({"arch": None}, "field 'arch' is None, expected a dict"),
        ({"arch": {"ffn_dim": 48}}, "does not fit"),
    ],
)
def test_load_safetensors_names_the_bad_field(
    change: dict[str, object], message: str, data_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("safetensors")
    from nmt_preln.errors import UserError

    ckpt = make_checkpoint(data_dir, tmp_path / "model.pt", norm=NormPosition.pre)
    out = export_safetensors(str(ckpt), str(tmp_path / "st"))
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    if isinstance(change.get("arch"), dict):
        change = {"arch": {**config["arch"], **change["arch"]}}  # type: ignore[dict-item]
    (out / "config.json").write_text(json.dumps({**config, **change}), encoding="utf-8")
    with pytest.raises(UserError) as info:
        load_safetensors(str(out))
    assert message in str(info.value) and "\n" not in str(info.value), info.value


@pytest.mark.parametrize("norm", [NormPosition.deepnorm, NormPosition.sandwich], ids=str)
def test_ctranslate2_refuses_a_placement_it_cannot_compute_by_name(
    norm: NormPosition, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = make_checkpoint(data_dir, tmp_path / "model.pt", norm=norm)
    out = tmp_path / "ct2"
    assert export_main(["--path", str(ckpt), "--out", str(out), "--format", "ctranslate2"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("nmt-export: error:") and "\n" not in err
    assert f"norm_position {norm.value}" in err and "safetensors" in err
    assert not out.exists()  # nothing half-written
    # The safetensors export takes every placement and gives the same logits.
    st = export_safetensors(str(ckpt), str(tmp_path / "st"))
    original, _ = load_model_from_checkpoint(ckpt, device="cpu")
    src, prev = torch.randint(4, 40, (3, 7)), torch.randint(4, 40, (3, 5))
    with torch.no_grad():
        assert torch.equal(original(src, prev), load_safetensors(str(st))(src, prev))
