"""fairseq's decoding options wired through ``generate()`` (issue 12, item 4), on a toy model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import sentencepiece as spm
import torch
from helpers.generation import by_kind, run_toy

from nmt_preln.config import SearchConfig
from nmt_preln.data.dictionary import Dictionary
from nmt_preln.generate.output import replace_unk

pytestmark = pytest.mark.usefixtures("one_thread")


def test_score_reference_prints_the_reference_with_its_scores(spm_toy: Path) -> None:
    out, _ = run_toy(spm_toy, score_reference=True, path=f"{spm_toy / 'a.pt'}:{spm_toy / 'b.pt'}")
    targets, hyps, positional = by_kind(out, "T"), by_kind(out, "H"), by_kind(out, "P")
    assert len(hyps) == len(targets) == 12
    for t, h, p in zip(targets, hyps, positional, strict=True):
        assert h[2] == t[1]  # the hypothesis is the reference
        scores = [float(x) for x in p[1].split()]
        assert len(scores) == len(h[2].split()) + 1  # </s> scored too
        assert float(h[1]) == pytest.approx(sum(scores) / len(scores), abs=1e-3)  # no lenpen
    assert "Generate test with beam=3: BLEU4 = 100.00" in out


def test_forced_scores_equal_the_search_scores_of_its_own_output(
    spm_toy: Path, tmp_path: Path
) -> None:
    """Scoring greedy's output as a reference must give greedy's per-token log-probs."""
    greedy, _ = run_toy(spm_toy, beam=1, lenpen=0.0, input="-", stdin=b"der hund\nrot blau haus\n")
    # Rebuild a split whose references are greedy's hypotheses (pieces -> the same ids).
    from nmt_preln.search.source_items import SourceItem
    from nmt_preln.search.translator import Translator, load_ensemble

    ensemble = load_ensemble(str(spm_toy / "a.pt"), device=torch.device("cpu"))
    tgt: Dictionary = ensemble.tgt_dict
    src_lines = [s[1] for s in by_kind(greedy, "S")]
    items = []
    for i, (s, h) in enumerate(zip(src_lines, by_kind(greedy, "H"), strict=True)):
        src = ensemble.src_dict.encode(s.split())
        ref = tgt.encode(h[2].split())
        items.append(SourceItem(id=i, src=torch.tensor(src).numpy(), ref=torch.tensor(ref).numpy()))
    search = SearchConfig(max_len_b=8)
    translator = Translator(
        ensemble, search=search, device=torch.device("cpu"), score_reference=True
    )
    forced = translator.translate(items)
    for hyps, p in zip(forced, by_kind(greedy, "P"), strict=True):
        expected = [float(x) for x in p[1].split()]
        assert [s / math.log(2) for s in hyps[0].positional_scores] == pytest.approx(
            expected, abs=2e-4
        )


def test_prefix_size_forces_the_reference_start(spm_toy: Path) -> None:
    out, _ = run_toy(spm_toy, prefix_size=2, nbest=2)
    refs = {t[0][2:]: t[1].split() for t in by_kind(out, "T")}
    for h in by_kind(out, "H"):
        ref = refs[h[0][2:]]
        assert h[2].split()[: min(2, len(ref))] == ref[:2]


def test_constraints_appear_in_every_hypothesis(spm_toy: Path) -> None:
    stdin = b"der hund\thund\nrot blau haus\tkatze\tbaum\nklein\n"
    for mode in ("ordered", "unordered"):
        out, _ = run_toy(spm_toy, constraints=mode, input="-", stdin=stdin, nbest=2, max_len_b=12)
        constraints = by_kind(out, "C")
        assert [c[0] for c in constraints] == ["C-0", "C-1", "C-1"]
        sources = [s[1] for s in by_kind(out, "S")]
        assert all("\t" not in s and "katze" not in s for s in sources)
        hyps = by_kind(out, "H")
        assert {h[0] for h in hyps} == {"H-0", "H-1", "H-2"}
        for h in hyps:
            wanted = [c[1] for c in constraints if c[0][2:] == h[0][2:]]
            for c in wanted:
                assert f" {c} " in f" {h[2]} ", (mode, h, c)
            if mode == "ordered" and len(wanted) == 2:
                assert f" {h[2]} ".index(f" {wanted[0]} ") < f" {h[2]} ".index(f" {wanted[1]} ")


def test_hard_and_soft_alignments_follow_each_p_line(spm_toy: Path) -> None:
    out, _ = run_toy(spm_toy, print_alignment="hard", nbest=2)
    lines = out.splitlines()
    p_rows = [i for i, ln in enumerate(lines) if ln.startswith("P-")]
    sources = {s[0][2:]: len(s[1].split()) for s in by_kind(out, "S")}
    for i in p_rows:
        kind, text = lines[i + 1].split("\t")
        sid = lines[i].split("\t")[0][2:]
        assert kind == f"A-{sid}"
        n_tgt = len(lines[i - 2].split("\t")[2].split())  # the H- line's pieces
        pairs = [tuple(map(int, pair.split("-"))) for pair in text.split()]
        assert [t for _, t in pairs] == list(range(n_tgt))
        assert all(0 <= s < sources[sid] for s, _ in pairs)
    soft, _ = run_toy(spm_toy, print_alignment="soft")
    for p_index, a in zip(
        [i for i, ln in enumerate(soft.splitlines()) if ln.startswith("P-")],
        by_kind(soft, "A"),
        strict=True,
    ):
        rows = [list(map(float, r.split(","))) for r in a[1].split()]
        n_scores = len(soft.splitlines()[p_index].split("\t")[1].split())
        assert len(rows) == n_scores  # one per target token, </s> included
        assert all(sum(r) == pytest.approx(1.0, abs=1e-4) for r in rows)


def test_replace_unk_copies_or_maps_the_aligned_source_piece(spm_toy: Path, tmp_path: Path) -> None:
    # A large negative --unkpen is a bonus: every token becomes <unk>, then gets replaced.
    stdin = b"der hund\n"
    plain, _ = run_toy(spm_toy, unkpen=-100.0, input="-", stdin=stdin, print_alignment="hard")
    (h,), (a,), (s,) = by_kind(plain, "H"), by_kind(plain, "A"), by_kind(plain, "S")
    assert set(h[2].split()) == {"<unk>"}
    copied, _ = run_toy(spm_toy, unkpen=-100.0, input="-", stdin=stdin, print_alignment="hard",
                    replace_unk="")  # fmt: skip
    src = s[1].split()
    expected = [src[int(pair.split("-")[0])] for pair in a[1].split()]
    assert by_kind(copied, "H")[0][2].split() == expected
    table = tmp_path / "align.txt"
    table.write_text("".join(f"{p} MAPPED{i}\n" for i, p in enumerate(src)), encoding="utf-8")
    mapped, _ = run_toy(spm_toy, unkpen=-100.0, input="-", stdin=stdin, replace_unk=str(table))
    assert set(by_kind(mapped, "H")[0][2].split()) <= {f"MAPPED{i}" for i in range(len(src))}
    assert "A-0" not in mapped  # alignment computed for the replacement, not printed


def test_replace_unk_unit() -> None:
    attention = torch.tensor([[0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.3, 0.1, 0.6]])
    pieces = ["<unk>", "b", "<unk>"]
    got = replace_unk(pieces, attention=attention, src_pieces=["▁x", "▁y"], unk="<unk>",
                      align_dict={"y": "Y"})  # fmt: skip
    assert got == ["▁Y", "b", "▁x"]  # the U+2581 mark is kept; argmax ignores the </s> column


def test_post_process_sentencepiece_and_spm_decode_of_h_lines(spm_toy: Path) -> None:
    pieces, _ = run_toy(spm_toy)
    text, _ = run_toy(spm_toy, post_process="sentencepiece")
    alias, _ = run_toy(spm_toy, remove_bpe="sentencepiece")
    assert alias == text
    sp = spm.SentencePieceProcessor(model_file=str(spm_toy / "data-bin" / "spm.model"))
    for kind in "STH":
        for p, t in zip(by_kind(pieces, kind), by_kind(text, kind), strict=True):
            expected = "".join(p[-1].split()).replace("▁", " ").strip()
            assert t[-1] == expected
            assert sp.decode_pieces(p[-1].split()) == expected  # `cut -f3 | spm_decode`
    assert [d[2] for d in by_kind(pieces, "D")] == [d[2] for d in by_kind(text, "D")]


def test_diverse_beam_groups_changes_the_nbest_list(spm_toy: Path) -> None:
    plain, _ = run_toy(spm_toy, beam=4, nbest=4)
    diverse, _ = run_toy(spm_toy, beam=4, nbest=4, diverse_beam_groups=2, diverse_beam_strength=5.0)
    assert len(by_kind(diverse, "H")) == 48
    assert [h[2] for h in by_kind(plain, "H")] != [h[2] for h in by_kind(diverse, "H")]
