"""``nmt-generate`` and ``nmt-average`` as a user runs them, on a tiny trained model.

The fixture writes a generated corpus, runs ``nmt-preprocess``, and trains a 2+2-layer model for
a few updates with ``nmt_preln.train.trainer.train`` (in-process: one torch start-up less).
"""

from __future__ import annotations

import queue
import subprocess
import threading
from pathlib import Path

import pytest
from helpers.corpus import mirrored, preprocess_dir, write_corpus
from helpers.scripts import BIN, ENV, run_script

from nmt_preln.checkpoint.store import load_checkpoint, load_model_from_checkpoint
from nmt_preln.config import (
    CheckpointConfig,
    DataConfig,
    HardwareConfig,
    ModelConfig,
    Segmentation,
    TrainConfig,
)
from nmt_preln.config import Device as DeviceName
from nmt_preln.train.trainer import train

WORDS = ["haus", "katze", "hund", "baum", "rot", "blau", "gross", "klein", "der", "die", "das"]


def write_raw(raw: Path, *, seed: int, words: list[str]) -> None:
    write_corpus(
        raw,
        sizes={"train": 400, "valid": 10, "test": 15},
        seed=seed,
        words=words,
        lengths=(2, 7),
        target=mirrored,
    )


def preprocess(work: Path, name: str) -> None:
    run_script(
        "nmt-preprocess",
        "--source-lang",
        "de",
        "--target-lang",
        "en",
        "--trainpref",
        f"{name}/train",
        "--validpref",
        f"{name}/valid",
        "--testpref",
        f"{name}/test",
        "--destdir",
        f"{name}-bin",
        "--joined-dictionary",
        "--spm-vocab-size",
        "80",
        cwd=work,
    )


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("generate_cli")
    write_raw(work / "raw", seed=0, words=WORDS)
    preprocess(work, "raw")
    arch = ModelConfig(
        encoder_layers=2,
        decoder_layers=2,
        d_model=32,
        ffn_dim=64,
        num_heads=2,
        dropout=0.0,
        max_positions=128,
    )
    cfg = TrainConfig(
        arch=arch,
        data=DataConfig(path=str(work / "raw-bin"), max_tokens=2048, num_workers=0),
        hardware=HardwareConfig(device=DeviceName.cpu, num_threads=1),
        checkpoint=CheckpointConfig(save_dir=str(work / "ckpt")),
        max_update=12,
        max_epoch=0,
        log_interval=100,
        progress_bar=False,
        log_layer_grad_norms=False,
        seed=1,
    )
    cfg.optim.lr = 3e-3
    cfg.schedule.warmup_updates = 0
    train(cfg)
    return work


def generate(
    work: Path, *args: str, stdin: str | None = None, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    return run_script(
        "nmt-generate",
        "raw-bin",
        "--path",
        "ckpt/checkpoint_last.pt",
        "--beam",
        "3",
        "--max-len-b",
        "20",
        *args,
        cwd=work,
        stdin=stdin,
        ok=ok,
    )


def test_fairseq_format_with_scores(work: Path) -> None:
    proc = generate(work, "--nbest", "2")
    lines = proc.stdout.splitlines()
    for kind, count in (("S", 15), ("T", 15), ("H", 30), ("D", 30), ("P", 30)):
        assert sum(ln.startswith(f"{kind}-") for ln in lines) == count, kind
    assert [ln.split("\t")[0] for ln in lines if ln.startswith("S-")] == [
        f"S-{i}" for i in range(15)
    ]
    assert any(ln.startswith("sacreBLEU BLEU = ") and "tok:13a" in ln for ln in lines)
    assert any(ln.startswith("sacreBLEU chrF2 = ") for ln in lines)
    assert any(ln.startswith("Generate test with beam=3: BLEU4 = ") for ln in lines)
    assert "Translated 15 sentences" in proc.stderr


def test_plain_file_input_and_results_path(work: Path) -> None:
    (work / "in.de").write_text("der hund\n\nrot blau haus\n", encoding="utf-8")
    proc = generate(work, "--input", "in.de", "--output-format", "plain")
    assert len(proc.stdout.split("\n")) == 4 and proc.stdout.split("\n")[1] == ""
    assert "in.de: line 2: empty line" in proc.stderr
    proc = generate(work, "--results-path", "res", "--quiet")
    assert proc.stdout == ""
    written = (work / "res" / "generate-test.txt").read_text(encoding="utf-8")
    assert "BLEU4" in written and "H-0" not in written


def test_stdin_streams_before_input_ends(work: Path) -> None:
    cmd = [
        str(BIN / "nmt-generate"),
        "raw-bin",
        "--path",
        "ckpt/checkpoint_last.pt",
        "--input",
        "-",
        "--output-format",
        "plain",
        "--buffer-size",
        "2",
        "--beam",
        "2",
        "--max-len-b",
        "10",
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=work,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    lines: queue.Queue[bytes] = queue.Queue()
    stdout = proc.stdout
    threading.Thread(target=lambda: [lines.put(ln) for ln in stdout], daemon=True).start()
    proc.stdin.write(b"der hund\nkatze\n")  # one full chunk; stdin stays open
    proc.stdin.flush()
    first = [lines.get(timeout=120), lines.get(timeout=120)]  # so they came before the end of input
    proc.stdin.write(b"\xff\xfe rot\n")
    proc.stdin.close()
    assert proc.wait(timeout=120) == 0
    last = lines.get(timeout=10)
    assert all(ln.endswith(b"\n") for ln in [*first, last])
    assert b"<stdin>: line 3: invalid UTF-8" in proc.stderr.read()


def test_bad_checkpoint_is_one_line(work: Path) -> None:
    (work / "broken.pt").write_bytes(b"not a checkpoint at all")
    proc = run_script("nmt-generate", "raw-bin", "--path", "broken.pt", cwd=work, ok=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("nmt-generate: error: ") and proc.stderr.count("\n") == 1
    assert "broken.pt" in proc.stderr


def test_mismatched_dictionary(work: Path) -> None:
    write_raw(work / "other", seed=3, words=["zebra", "yak", "xylophon", "wal", "vogel"])
    preprocess_dir(  # in-process: one start-up less
        work / "other",
        work / "other-bin",
        splits=("train", "test"),
        segmentation=Segmentation.sentencepiece,
        joined_dictionary=True,
        spm_vocab_size=40,
    )
    proc = run_script(
        "nmt-generate", "other-bin", "--path", "ckpt/checkpoint_last.pt", cwd=work, ok=False
    )
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "dict.de.txt: the source dictionary differs from the one in checkpoint" in proc.stderr


def test_average_then_load(work: Path) -> None:
    ckpt = work / "ckpt"
    proc = run_script(
        "nmt-average",
        "--inputs",
        str(ckpt / "checkpoint_last.pt"),
        str(ckpt / "checkpoint_best.pt"),
        "--output",
        "avg.pt",
        cwd=work,
    )
    assert "averaged 2 checkpoints into avg.pt" in proc.stdout
    model, state = load_model_from_checkpoint(work / "avg.pt", device="cpu")
    last = load_checkpoint(ckpt / "checkpoint_last.pt")
    assert state["num_updates"] == last["num_updates"] and model.cfg.d_model == 32


def test_interactive_pipe_translates_each_line_as_it_arrives(work: Path) -> None:
    """The default --buffer-size 256 must not hold back a line typed into a pipe."""
    cmd = [str(BIN / "nmt-generate"), "raw-bin", "--path", "ckpt/checkpoint_last.pt",
           "--input", "-", "--beam", "2", "--max-len-b", "10"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=work, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=ENV,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    lines: queue.Queue[bytes] = queue.Queue()
    stdout = proc.stdout
    threading.Thread(target=lambda: [lines.put(ln) for ln in stdout], daemon=True).start()
    answers = []
    for i, text in enumerate([b"der hund\n", b"rot blau haus\n"]):
        proc.stdin.write(text)  # one line; stdin stays open
        proc.stdin.flush()
        got = [lines.get(timeout=120) for _ in range(4)]  # S-, H-, D-, P- before more input
        assert [ln.split(b"\t")[0] for ln in got] == [f"{k}-{i}".encode() for k in "SHDP"]
        answers.append(got)
    proc.stdin.close()
    assert proc.wait(timeout=120) == 0
    assert lines.empty() and b"Translated 2 sentences" in proc.stderr.read()


def test_a_full_stdout_is_one_line_and_a_failure(work: Path) -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [str(BIN / "nmt-generate"), "raw-bin", "--path", "ckpt/checkpoint_last.pt",
             "--beam", "2", "--max-len-b", "5"],
            cwd=work, stdout=full, stderr=subprocess.PIPE, text=True, env=ENV, timeout=300,
        )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == "nmt-generate: error: cannot write to <stdout>: No space left on device\n"


def test_readme_interactive_example_and_file_redirect(work: Path) -> None:
    proc = generate(work, "--input", "-", "--output-format", "plain", stdin="der hund\n")
    assert len(proc.stdout.splitlines()) == 1 and proc.stdout.endswith("\n")
    many = "".join(f"{w} haus\n" for w in WORDS)
    (work / "many.de").write_text(many, encoding="utf-8")
    with open(work / "many.de", "rb") as f:  # `< file`: a regular file, read in full chunks
        redirected = subprocess.run(
            [str(BIN / "nmt-generate"), "raw-bin", "--path", "ckpt/checkpoint_last.pt",
             "--beam", "3", "--max-len-b", "20", "--input", "-", "--output-format", "plain"],
            cwd=work, stdin=f, capture_output=True, env=ENV, timeout=300,
        )  # fmt: skip
    piped = generate(work, "--input", "-", "--output-format", "plain", stdin=many)
    assert redirected.returncode == 0 and redirected.stdout.decode() == piped.stdout
    assert len(piped.stdout.splitlines()) == len(WORDS)


# fairseq-generate's decoding options through the real console script (their semantics are
# tested in tests/unit/generate; here each must change what a user sees).


def _fields(stdout: str, kind: str) -> dict[str, list[str]]:
    """``{id: tab-separated fields after the tag}`` of every ``kind``- line (first per id)."""
    found: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        tag, _, rest = line.partition("\t")
        if tag.startswith(f"{kind}-"):
            found.setdefault(tag.removeprefix(f"{kind}-"), rest.split("\t"))
    return found


def test_score_reference_prints_the_references_as_hypotheses(work: Path) -> None:
    out = generate(work, "--score-reference").stdout
    refs, hyps = _fields(out, "T"), _fields(out, "H")
    assert len(refs) == 15 and {i: h[1] for i, h in hyps.items()} == {
        i: t[0] for i, t in refs.items()
    }


def test_prefix_size_forces_the_first_reference_piece(work: Path) -> None:
    out = generate(work, "--prefix-size", "1").stdout
    refs, hyps = _fields(out, "T"), _fields(out, "H")
    assert all(hyps[i][1].split()[0] == t[0].split()[0] for i, t in refs.items())


def test_print_alignment_adds_one_source_position_per_target_piece(work: Path) -> None:
    out = generate(work, "--print-alignment").stdout
    sources, hyps, aligns = _fields(out, "S"), _fields(out, "H"), _fields(out, "A")
    assert aligns.keys() == hyps.keys()
    for i, (text,) in aligns.items():
        pairs = [tuple(map(int, p.split("-"))) for p in text.split()]
        assert [t for _, t in pairs] == list(range(len(hyps[i][1].split())))
        assert all(0 <= s < len(sources[i][0].split()) for s, _ in pairs)


def test_constraints_appear_in_every_output(work: Path) -> None:
    source = (work / "raw" / "test.de").read_text(encoding="utf-8").splitlines()[0]
    target = (work / "raw" / "test.en").read_text(encoding="utf-8").splitlines()[0]
    word = target.split()[-1]
    out = generate(work, "--input", "-", "--constraints", stdin=f"{source}\t{word}\n").stdout
    assert "C-0" in out and word in _fields(out, "D")["0"][1].split()


def test_diverse_beam_groups_are_accepted_and_checked(work: Path) -> None:
    out = generate(work, "--diverse-beam-groups", "3", "--diverse-beam-strength", "2").stdout
    assert len(_fields(out, "H")) == 15
    bad = generate(work, "--beam", "4", "--diverse-beam-groups", "3", ok=False)
    assert bad.returncode != 0 and bad.stderr.count("nmt-generate: error:") == 1


def test_post_process_sentencepiece_gives_text_in_h_lines(work: Path) -> None:
    pieces = _fields(generate(work).stdout, "H")
    text = _fields(generate(work, "--post-process", "sentencepiece").stdout, "H")
    assert any("\u2581" in h[1] for h in pieces.values())
    assert not any("\u2581" in h[1] for h in text.values())
    assert {i: h[1] for i, h in text.items()} == {
        i: "".join(h[1].split()).replace("\u2581", " ").strip() for i, h in pieces.items()
    }
