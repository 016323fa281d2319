"""``generate()`` end to end in-process: a toy data dir and random-weight checkpoints."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import pytest
from helpers.checkpoints import random_checkpoint
from helpers.corpus import make_spm_data, preprocess_dir, write_corpus
from helpers.generation import by_kind, run_toy

from nmt_preln.config import GenerateConfig, OutputFormat, SearchConfig, Segmentation
from nmt_preln.errors import UserError
from nmt_preln.generate.run import generate

pytestmark = pytest.mark.usefixtures("one_thread")


def test_fairseq_format_on_the_test_split(spm_toy: Path) -> None:
    out, err = run_toy(spm_toy, nbest=2, lenpen=1.0)
    sources, targets, hyps, details, positional = (by_kind(out, k) for k in "STHDP")
    assert [int(s[0][2:]) for s in sources] == list(range(12))  # sorted by id
    assert len(targets) == 12 and len(hyps) == len(details) == len(positional) == 24
    for h, d, p in zip(hyps, details, positional, strict=True):
        pieces, scores = h[2].split(), [float(x) for x in p[1].split()]
        assert len(scores) == len(pieces) + 1  # </s> has a score too
        assert float(h[1]) == pytest.approx(sum(scores) / len(scores), abs=1e-3)  # base 2, lenpen 1
        assert d[1] == h[1] and d[2] == "".join(pieces).replace("▁", " ").strip()
    assert re.search(r"^sacreBLEU BLEU = .* signature: nrefs:1\|", out, re.M)
    assert re.search(r"^sacreBLEU chrF2 = .* signature: ", out, re.M)
    assert re.search(r"^Generate test with beam=3: BLEU4 = \d+\.\d\d, ", out, re.M)
    assert re.fullmatch(r"Translated 12 sentences \(\d+ tokens\) in .*tokens/s\)\n", err)


def test_scores_are_base_2(spm_toy: Path) -> None:
    out, _ = run_toy(spm_toy, beam=1, lenpen=0.0)
    for h, p in zip(by_kind(out, "H"), by_kind(out, "P"), strict=True):
        total_bits = float(h[1])
        assert total_bits == pytest.approx(sum(float(x) for x in p[1].split()), abs=1e-3)
        assert total_bits * math.log(2) < 0


def test_results_path_quiet_and_batch_invariance(spm_toy: Path, tmp_path: Path) -> None:
    out, _ = run_toy(spm_toy, results_path=str(tmp_path / "res"))
    written = (tmp_path / "res" / "generate-test.txt").read_text(encoding="utf-8")
    assert out == "" and "H-11\t" in written
    quiet, _ = run_toy(spm_toy, quiet=True)
    assert "H-" not in quiet and "BLEU4" in quiet
    one_by_one, _ = run_toy(spm_toy, batch_size=1)
    budget, _ = run_toy(spm_toy, max_tokens=20)
    for other in (one_by_one, budget):  # batching changes float rounding, nothing else
        assert [h[2] for h in by_kind(other, "H")] == [h[2] for h in by_kind(written, "H")]
        got = [float(h[1]) for h in by_kind(other, "H")]
        assert got == pytest.approx([float(h[1]) for h in by_kind(written, "H")], abs=1e-5)


def test_ensemble_of_the_same_checkpoint_twice(spm_toy: Path) -> None:
    single, _ = run_toy(spm_toy)
    twice, _ = run_toy(spm_toy, path=f"{spm_toy / 'a.pt'}:{spm_toy / 'a.pt'}")
    other, _ = run_toy(spm_toy, path=f"{spm_toy / 'a.pt'}:{spm_toy / 'b.pt'}")
    assert [h[2] for h in by_kind(twice, "H")] == [h[2] for h in by_kind(single, "H")]
    assert [float(h[1]) for h in by_kind(twice, "H")] == pytest.approx(
        [float(h[1]) for h in by_kind(single, "H")], abs=1e-4
    )
    assert by_kind(other, "H") != by_kind(single, "H")


def test_plain_raw_input_with_bad_lines(spm_toy: Path) -> None:
    long_line = " ".join(["katze"] * 80)
    text = b"der hund\n\nrot \xff\xfe blau\n" + long_line.encode() + b"\nhaus\n"
    out, err = run_toy(
        spm_toy, stdin=text, input="-", output_format=OutputFormat.plain, buffer_size=2
    )
    lines = out.split("\n")
    assert len(lines) == 6 and lines[-1] == "" and lines[1] == ""  # 5 lines, the empty one kept
    assert "<stdin>: line 3: invalid UTF-8" in err
    assert "<stdin>: line 2: empty line" in err
    assert "<stdin>: line 4: " in err and "truncated" in err
    assert "Translated 5 sentences" in err


def test_stdin_is_streamed_chunk_by_chunk(spm_toy: Path) -> None:
    written: list[int] = []  # output lines present when each input line is read
    out = io.StringIO()

    class Lines(io.BytesIO):
        def __next__(self) -> bytes:
            written.append(out.getvalue().count("\n"))
            return super().__next__()

    cfg = GenerateConfig(
        data=str(spm_toy / "data-bin"),
        path=str(spm_toy / "a.pt"),
        input="-",
        buffer_size=2,
        output_format=OutputFormat.plain,
        search=SearchConfig(beam=2, max_len_b=5),
    )
    generate(
        cfg, stdin=Lines(b"haus\nder hund\nrot\nblau\nkatze\n"), stdout=out, stderr=io.StringIO()
    )
    assert written[:5] == [0, 0, 2, 2, 4]  # later calls: end-of-input probes
    assert out.getvalue().count("\n") == 5


def test_raw_file_in_fairseq_format(spm_toy: Path, tmp_path: Path) -> None:
    (tmp_path / "in.de").write_text("haus\nder hund\n", encoding="utf-8")
    out, _ = run_toy(spm_toy, input=str(tmp_path / "in.de"))
    assert [s[0] for s in by_kind(out, "S")] == ["S-0", "S-1"]
    assert by_kind(out, "T") == [] and "BLEU" not in out


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"path": "missing.pt"}, "missing.pt does not exist"),
        ({"input": "no/such/file"}, "--input no/such/file"),
        ({"gen_subset": "test7"}, "test7"),
    ],
)
def test_one_line_errors(spm_toy: Path, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)) as info:
        run_toy(spm_toy, **overrides)
    assert "\n" not in str(info.value)


def test_search_settings_are_checked_by_the_config() -> None:
    for overrides, message in (
        ({"nbest": 4, "beam": 2}, "--nbest"),
        ({"sampling_topk": 3}, "--sampling"),
    ):
        with pytest.raises(UserError, match=message):
            GenerateConfig(data="d", path="p", search=SearchConfig(**overrides)).validate()


def test_corrupt_checkpoint(spm_toy: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes((spm_toy / "a.pt").read_bytes()[:500])
    with pytest.raises(UserError, match=r"bad\.pt") as info:
        run_toy(spm_toy, path=str(bad))
    assert "\n" not in str(info.value)


def test_dictionary_mismatch_names_the_dictionary(spm_toy: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_corpus(other / "raw", sizes={"train": 50, "test": 3}, seed=5)
    (other / "raw" / "train.en").write_text("völlig andere wörter hier\n" * 50, encoding="utf-8")
    preprocess_dir(other / "raw", other / "bin", splits=("train", "test"))
    with pytest.raises(
        UserError, match=r"dict\.de\.txt: the source dictionary differs .* symbols|symbol \d+ is"
    ) as info:
        run_toy(spm_toy, data=str(other / "bin"))
    assert "a.pt" in str(info.value)


def test_pre_segmented_data_and_remove_bpe(tmp_path: Path) -> None:
    data = make_spm_data(tmp_path, segmentation=Segmentation.none)
    random_checkpoint(data, tmp_path / "m.pt")
    base = {"data": str(data), "path": str(tmp_path / "m.pt"), "max_len_b": 6, "beam": 2}
    out, _ = run_toy(
        tmp_path, **base, input="-", output_format=OutputFormat.plain, stdin=b"der hund\n"
    )
    assert len(out.splitlines()) == 1
    pieces, _ = run_toy(tmp_path, **base)
    out, _ = run_toy(tmp_path, **base, remove_bpe="@@ ")  # fairseq: H- and D- lose the marker
    assert by_kind(out, "P") == by_kind(pieces, "P")
    for h, d, p in zip(by_kind(out, "H"), by_kind(out, "D"), by_kind(pieces, "H"), strict=True):
        assert h[2] == d[2] == (p[2] + " ").replace("@@ ", "").rstrip()
