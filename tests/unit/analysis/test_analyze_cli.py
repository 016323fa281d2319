"""nmt-analyze's entry point: subcommands, exit codes, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from nmt_preln.cli.analyze import main


def test_grad_norm_command_writes_its_files(
    tiny_data: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "figs"
    flags = "--arch preln_tiny --depths 1,2 --seeds 1 --batches 1 --max-tokens 512 --num-threads 1"
    code = main(["grad-norm", tiny_data, *flags.split(), "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in printed) == sorted(
        [
            "grad_norm_layers.csv",
            "grad_norm_layers.png",
            "grad_norm_depth.csv",
            "grad_norm_depth.png",
        ]
    )
    assert all(Path(p).exists() for p in printed)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["grad-norm", "DATA", "--arch", "nosuch"], "nosuch"),
        (["grad-norm", "DATA", "--batches", "999", "--max-tokens", "512"], "--batches 999"),
        (["grad-norm", "/no/such/dir"], "/no/such/dir"),
        (["sweep", "--experiments", "cpu/nope"], "cpu/nope"),
    ],
)
def test_errors_are_one_line(
    tiny_data: str, args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [tiny_data if a == "DATA" else a for a in args]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nmt-analyze: error:") and needle in err[0]


def test_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "grad-norm" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "sweep" in capsys.readouterr().out
