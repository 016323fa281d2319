"""nmt-generate's option checks, optional-value flags and fairseq's --post-process rules."""

from __future__ import annotations

import contextlib
import io

import pytest
from nmt_preln.cli import generate as generate_cli

from nmt_preln.config import GenerateConfig
from nmt_preln.data.segmenter import post_process
from nmt_preln.flags import build_parser, to_config

MISSING = "/nonexistent/data-bin"


def parse(*argv: str) -> GenerateConfig:
    parser = build_parser(GenerateConfig, prog="nmt-generate", description="", positional=("data",))
    return to_config(GenerateConfig, parser.parse_args([MISSING, "--path", "m.pt", *argv]))


def one_error_line(*argv: str) -> str:
    """Run nmt-generate in-process; it must fail with exactly one error line, no traceback."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = generate_cli.main([MISSING, "--path", "/nonexistent/m.pt", *argv])
        except SystemExit as e:  # argparse
            code = e.code  # type: ignore[assignment]
    lines = [ln for ln in err.getvalue().splitlines() if ln.startswith("nmt-generate: error:")]
    assert code not in (0, None) and len(lines) == 1, err.getvalue()
    assert "Traceback" not in err.getvalue()
    assert "nonexistent" not in lines[0], f"data was read before the check: {lines[0]}"
    return lines[0]


def test_optional_value_flags_take_fairseq_constants() -> None:
    cfg = parse("--constraints", "--replace-unk", "--post-process", "--print-alignment")
    assert (cfg.search.constraints, cfg.replace_unk, cfg.post_process, cfg.print_alignment) == (
        "ordered",
        "",
        "subword_nmt",
        "hard",
    )
    cfg = parse("--constraints", "unordered", "--replace-unk", "dict.txt", "--remove-bpe")
    assert (cfg.search.constraints, cfg.replace_unk, cfg.remove_bpe) == (
        "unordered",
        "dict.txt",
        "@@ ",
    )
    cfg = parse("--post-process", "sentencepiece", "--print-alignment", "soft")
    assert (cfg.post_process, cfg.print_alignment) == ("sentencepiece", "soft")
    default = parse()
    assert default.search.constraints is default.replace_unk is default.post_process is None
    assert default.gen_subset is None and default.print_alignment is None


def test_post_process_matches_fairseq() -> None:
    assert post_process("▁Das ▁ist ▁gut .", "sentencepiece") == "Das ist gut."
    assert post_process("▁a b ▁c", "sentencepiece") == "ab c"
    for symbol in ("subword_nmt", "@@ "):
        assert post_process("new@@ s ab@@ c@@", symbol) == "news abc"  # a final marker goes too
    assert post_process("ab@@ c", "@@") == "ab c"
    assert post_process("he_ llo_ world", "wordpiece") == "he llo world"
    assert post_process("a b | c", "letter") == "ab c"
    assert post_process("a <SIL>  b", "silence") == "a b"
    assert post_process("x@@ y", "none") == post_process("x@@ y", None) == "x@@ y"


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["--input", "-", "--gen-subset", "valid"], "--gen-subset"),
        (["--input", "-", "--score-reference"], "--score-reference"),
        (["--input", "-", "--prefix-size", "2"], "--prefix-size"),
        (["--constraints"], "--constraints"),
        (["--input", "-", "--constraints", "sorted"], "--constraints"),
        (["--print-alignment", "medium"], "--print-alignment"),
        (["--post-process", "sentencepice"], "--post-process"),
        (["--post-process", "sentencepiece", "--remove-bpe"], "--remove-bpe"),
        (["--seed", "99999999999999999999999"], "--seed"),
        (["--seed", "-1"], "--seed"),
        (["--score-reference", "--sampling"], "--score-reference"),
        (["--score-reference", "--nbest", "2"], "--nbest"),
        (["--input", "-", "--constraints", "--sampling"], "--constraints"),
        (["--diverse-beam-groups", "0"], "--diverse-beam-groups"),
        (["--beam", "5", "--diverse-beam-groups", "2"], "--diverse-beam-groups"),
        (["--diverse-beam-strength", "2.0"], "--diverse-beam-strength"),
        (["--diverse-beam-groups", "2", "--beam", "4", "--sampling"], "--sampling"),
        (["--prefix-size", "-1"], "--prefix-size"),
        (["--max-search-memory-mb", "-5"], "--max-search-memory-mb"),
        (["--print-alignment", "--output-format", "plain"], "--print-alignment"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else v,
)
def test_bad_combinations_are_one_line_before_loading(argv: list[str], names: str) -> None:
    assert names in one_error_line(*argv)


def test_accepted_combinations_pass_validation() -> None:
    for argv in (
        ["--input", "-", "--constraints", "unordered", "--print-alignment", "soft"],
        ["--score-reference", "--print-alignment"],
        ["--prefix-size", "2", "--replace-unk"],
        ["--diverse-beam-groups", "2", "--beam", "4", "--diverse-beam-strength", "1.0"],
        ["--post-process", "subword_nmt", "--remove-bpe", "@@ "],  # the same option twice
        ["--seed", str(2**64 - 1)],
    ):
        parse(*argv).validate()
