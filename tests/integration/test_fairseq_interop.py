"""A fairseq user's data-bin and checkpoints through the real commands (docs/FAIRSEQ.md).

The default tests use the fixtures that fairseq 0.12.2 made (tests/fixtures/fairseq/README.md):
a data-bin of the pre-segmented toy corpus, two tiny checkpoints and fairseq-generate's output
for them. The slow test runs fairseq itself (skipped without /opt/peers/fairseq).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from nmt_preln.cli.export import main as nmt_export
from nmt_preln.cli.generate import main as nmt_generate
from nmt_preln.cli.import_ import main as nmt_import

from nmt_preln.checkpoint.store import load_model_from_checkpoint
from nmt_preln.config import CheckpointConfig, DataConfig, Device, HardwareConfig, TrainConfig
from nmt_preln.export.safetensors import load_safetensors
from nmt_preln.interop.config import FairseqCheckpointImportConfig
from nmt_preln.interop.fairseq_checkpoint import import_fairseq_checkpoint
from nmt_preln.train.trainer import train

BIN = Path(sys.executable).parent
ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "fairseq"
FAIRSEQ = Path("/opt/peers/fairseq")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def run(*args: str, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(BIN / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True, env=ENV,
        timeout=600, check=False,
    )  # fmt: skip
    if ok:
        assert proc.returncode == 0, f"{args[0]} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def best(text: str) -> dict[int, tuple[float, str]]:
    """id -> (score, text) of the first H- line of each sentence."""
    found: dict[int, tuple[float, str]] = {}
    for line in text.splitlines():
        if m := re.match(r"H-(\d+)\t(\S+)\t?(.*)$", line):
            found.setdefault(int(m[1]), (float(m[2]), m[3]))
    return found


@pytest.fixture
def adopted(tmp_path: Path) -> Path:
    data = Path(shutil.copytree(FIXTURES / "data-bin", tmp_path / "data-bin"))
    assert nmt_import(["fairseq-data", str(data)]) == 0
    return data


def _import(name: str, data: Path, out: Path) -> None:
    ckpt = str(FIXTURES / f"{name}.pt")
    assert nmt_import(["fairseq", ckpt, "--out", str(out), "--data", str(data)]) == 0


def test_a_data_bin_is_refused_until_adopted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = Path(shutil.copytree(FIXTURES / "data-bin", tmp_path / "data-bin"))
    assert nmt_generate([str(data), "--path", "x.pt", "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "looks like a fairseq data-bin; adopt it with `nmt-import fairseq-data" in err
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    assert nmt_import(["fairseq-data", str(data)]) == 0
    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["segmentation"] == "none" and manifest["joined_dictionary"] is True
    assert manifest["splits"] == {"test": 20, "train": 300, "valid": 20}
    assert {p.name: p.read_bytes() for p in data.iterdir() if p.name != "manifest.json"} == before


@pytest.mark.parametrize("name", ["pre-ln", "post-ln"])
def test_imported_checkpoints_decode_as_fairseq_generate_did(
    tmp_path: Path, adopted: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _import(name, adopted, tmp_path / "ours.pt")
    capsys.readouterr()
    argv = [str(adopted), "--path", str(tmp_path / "ours.pt"), "--beam", "4", "--lenpen", "1.0"]
    assert nmt_generate([*argv, "--batch-size", "8", "--device", "cpu"]) == 0
    theirs = best((FIXTURES / f"{name}.generate.txt").read_text(encoding="utf-8"))
    ours = best(capsys.readouterr().out)
    assert len(theirs) == 20
    assert {i: h for i, (_, h) in ours.items()} == {i: h for i, (_, h) in theirs.items()}
    for i, (score, _) in theirs.items():
        assert ours[i][0] == pytest.approx(score, abs=1e-3)  # both in base 2


def test_adopted_data_trains_and_decodes_with_remove_bpe(tmp_path: Path, adopted: Path) -> None:
    """Through the console scripts, as a user types it."""
    run("nmt-train", "+arch=preln_tiny", f"data.path={adopted}", "schedule=constant",
        "optim.lr=3e-3", "max_update=3", "data.max_tokens=512", "checkpoint.save_dir=ckpt",
        "progress_bar=false", "hardware=cpu", cwd=tmp_path)  # fmt: skip
    proc = run("nmt-generate", str(adopted), "--path", "ckpt/checkpoint_last.pt", "--beam",
               "2", "--max-len-b", "10", "--remove-bpe", "@@ ", "--device", "cpu",
               cwd=tmp_path)  # fmt: skip
    detok = [ln.split("\t")[-1] for ln in proc.stdout.splitlines() if ln.startswith("D-")]
    refs = [ln.split("\t")[-1] for ln in proc.stdout.splitlines() if ln.startswith("T-")]
    assert len(detok) == 20 and not any("@@" in line for line in detok + refs)
    fairseq = (FIXTURES / "pre-ln.generate.txt").read_text(encoding="utf-8").splitlines()
    # Both write an unknown reference token as <<unk>> (it never matches a hypothesis).
    raw = [ln.split("\t")[-1] for ln in fairseq if ln[:2] == "T-"]
    assert sorted(r.replace("@@ ", "") for r in raw) == sorted(refs)


def _first_loss(cfg: TrainConfig) -> float:
    train(cfg)
    lines = (Path(cfg.checkpoint.save_dir) / "train_log.jsonl").read_text().splitlines()
    return next(json.loads(ln)["loss"] for ln in lines if json.loads(ln)["split"] == "train")


def test_an_imported_checkpoint_fine_tunes_and_exports(
    tmp_path: Path, adopted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _import("pre-ln", adopted, tmp_path / "ours.pt")
    printed = capsys.readouterr().out
    assert f"checkpoint.finetune_from_model={tmp_path / 'ours.pt'}" in printed
    assert "+arch=preln arch.name=transformer_iwslt_de_en" in printed
    ckpt = FairseqCheckpointImportConfig(
        path=str(FIXTURES / "pre-ln.pt"),
        out=str(tmp_path / "ours.pt"),
        data=str(adopted),
        force=True,
    )
    arch = import_fairseq_checkpoint(ckpt).arch

    def config(save_dir: str, **checkpoint: str) -> TrainConfig:
        cfg = TrainConfig(
            arch=arch, data=DataConfig(path=str(adopted), max_tokens=512, num_workers=0),
            hardware=HardwareConfig(device=Device.cpu, num_threads=1),
            checkpoint=CheckpointConfig(save_dir=str(tmp_path / save_dir), **checkpoint),
            max_update=2, progress_bar=False, log_layer_grad_norms=False,
        )  # fmt: skip
        cfg.optim.lr = 1e-4
        cfg.schedule.warmup_updates = 0
        return cfg

    tuned = _first_loss(config("tuned", finetune_from_model=str(tmp_path / "ours.pt")))
    assert tuned < _first_loss(config("scratch")) - 2.0  # the fairseq weights were used
    assert nmt_export(["--format", "safetensors", "--path", str(tmp_path / "ours.pt"),
                       "--out", str(tmp_path / "st")]) == 0  # fmt: skip
    exported = load_safetensors(str(tmp_path / "st"))
    model, _ = load_model_from_checkpoint(tmp_path / "ours.pt", device="cpu")
    src, prev = torch.tensor([[10, 20, 30, 2]]), torch.tensor([[2, 40, 50]])
    with torch.no_grad():
        assert torch.equal(exported(src, prev), model(src, prev))


def test_a_ctranslate2_export_of_an_import_translates_as_fairseq(
    tmp_path: Path, adopted: Path
) -> None:
    ctranslate2 = pytest.importorskip("ctranslate2")
    _import("post-ln", adopted, tmp_path / "ours.pt")
    argv = ["--format", "ctranslate2", "--path", str(tmp_path / "ours.pt"), "--out"]
    assert nmt_export([*argv, str(tmp_path / "ct2")]) == 0
    lines = (FIXTURES / "post-ln.generate.txt").read_text(encoding="utf-8").splitlines()
    sources = {int(m[1]): m[2].split() for ln in lines if (m := re.match(r"S-(\d+)\t(.*)$", ln))}
    theirs = best("\n".join(lines))
    translator = ctranslate2.Translator(str(tmp_path / "ct2"), device="cpu", intra_threads=1)
    ids = sorted(sources)
    results = translator.translate_batch(
        [sources[i] for i in ids], beam_size=4, length_penalty=1.0, max_decoding_length=200
    )
    assert {i: " ".join(r.hypotheses[0]) for i, r in zip(ids, results, strict=True)} == {
        i: theirs[i][1] for i in ids
    }


def test_import_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert nmt_import([]) == 2
    assert nmt_import(["fairseq-data", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("nmt-import: error: ") and "not a fairseq data-bin" in err[-1]
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    assert nmt_import(["fairseq", str(tmp_path / "bad.pt"), "--out", str(tmp_path / "o.pt")]) == 1
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.slow
@pytest.mark.skipif(not FAIRSEQ.exists(), reason="needs fairseq 0.12.2 in /opt/peers/fairseq")
@pytest.mark.parametrize("variant", ["pre", "post"])
def test_a_fresh_fairseq_model_decodes_the_same_after_import(tmp_path: Path, variant: str) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_fairseq_import.py"), "--work",
         str(tmp_path), "--variant", variant, "--train", "2000", "--test", "100",
         "--max-update", "150", "--threads", "1", "--fairseq", str(FAIRSEQ)],
        check=True, capture_output=True, env=ENV, timeout=1200,
    )  # fmt: skip
    result = json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))
    assert result["sentences"] == 100 and result["identical_fraction"] >= 0.99
