"""Resource limits of nmt-generate (issue 15): search memory, seeds, an unwritable output."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest
from helpers.generation import run_generate, toy_config
from nmt_preln.cli import generate as generate_cli

from nmt_preln.config import SearchConfig
from nmt_preln.errors import UserError
from nmt_preln.generate.run import OutputError, generate
from nmt_preln.search.search_memory import SearchFootprint, decoding_steps

pytestmark = pytest.mark.usefixtures("one_thread")


def hyp_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith(("H-", "P-"))]


def test_a_huge_beam_is_refused_in_one_line_before_decoding(spm_toy: Path) -> None:
    err = io.StringIO()
    argv = [str(spm_toy / "data-bin"), "--path", str(spm_toy / "a.pt"), "--beam", "1000000000"]
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = generate_cli.main(argv)
    lines = err.getvalue().splitlines()
    assert code == 1 and len(lines) == 1, err.getvalue()
    assert lines[0].startswith("nmt-generate: error: --beam 1000000000: decoding ")
    assert "--max-search-memory-mb" in lines[0] and "MiB" in lines[0]


def test_a_beam_that_fits_only_alone_shrinks_the_batch(spm_toy: Path) -> None:
    # About 0.7 MiB per sentence at beam 200: a 1 MiB budget holds one sentence per batch.
    shrunk, warnings = run_generate(toy_config(spm_toy, beam=200, nbest=2, max_search_memory_mb=1))
    assert warnings.count("nmt-generate: warning: --batch-size 128 x --beam 200 does not fit") == 1
    one_by_one, _ = run_generate(toy_config(spm_toy, beam=200, nbest=2, batch_size=1))
    assert hyp_lines(shrunk) == hyp_lines(one_by_one) and len(hyp_lines(shrunk)) == 48
    with pytest.raises(UserError, match=r"--beam 2000: .* more than the 1 MiB budget"):
        run_generate(toy_config(spm_toy, beam=2000, max_search_memory_mb=1))


def test_footprint_grows_with_beam_length_and_vocabulary() -> None:
    base = SearchFootprint(rows=4, vocab=1000, layers=[6], d_model=[512])
    one = base.sentence_bytes(src_len=20, steps=30)
    assert (
        SearchFootprint(rows=8, vocab=1000, layers=[6], d_model=[512]).sentence_bytes(
            src_len=20, steps=30
        )
        > 1.9 * one
    )
    assert base.sentence_bytes(src_len=20, steps=60) > 1.5 * one
    ensemble = SearchFootprint(rows=4, vocab=1000, layers=[6, 6], d_model=[512, 512])
    assert ensemble.sentence_bytes(src_len=20, steps=30) > 1.9 * one
    # The KV cache alone: 2 buffers x (keys, values) x layers x rows x steps x d_model x 4 bytes.
    assert one >= 4 * 6 * 4 * 30 * 512 * 4
    cfg = SearchConfig(max_len_a=1.5, max_len_b=3)
    assert decoding_steps(10, cfg, limit=100) == 19 and decoding_steps(10, cfg, limit=7) == 8


@pytest.mark.parametrize("seed", ["99999999999999999999999", "-3", str(2**64)])
def test_seeds_out_of_range_are_one_line(spm_toy: Path, seed: str) -> None:
    err = io.StringIO()
    argv = [
        str(spm_toy / "data-bin"),
        "--path",
        str(spm_toy / "a.pt"),
        "--sampling",
        "--seed",
        seed,
    ]
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = generate_cli.main(argv)
    assert code == 1 and err.getvalue().count("\n") == 1, err.getvalue()
    assert err.getvalue().startswith("nmt-generate: error: --seed must be in [0, 2**64-1]")


def test_largest_seed_samples(spm_toy: Path) -> None:
    out, _ = run_generate(toy_config(spm_toy, sampling=True, seed=2**64 - 1, beam=2, nbest=2))
    assert len(hyp_lines(out)) == 48


class _FullDisk(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(28, os.strerror(28))


def test_a_full_output_is_one_error(spm_toy: Path) -> None:
    with pytest.raises(OutputError, match=r"^cannot write to <stdout>: No space left on device$"):
        generate(
            toy_config(spm_toy), stdin=io.BytesIO(b""), stdout=_FullDisk(), stderr=io.StringIO()
        )
