"""``nmt-import``: bring a fairseq user's data-bin and checkpoints over (docs/FAIRSEQ.md).

nmt-import fairseq-data data-bin/iwslt14.tokenized.de-en
nmt-import fairseq checkpoints/checkpoint_best.pt --out imported.pt --data data-bin/iwslt14...
"""

from __future__ import annotations

import sys
from typing import Any

from nmt_preln.errors import UserError
from nmt_preln.flags import parse_config
from nmt_preln.interop.config import FairseqCheckpointImportConfig, FairseqDataImportConfig
from nmt_preln.models.placement import placement_of

COMMANDS: dict[str, tuple[type[Any], str, str]] = {
    "fairseq-data": (
        FairseqDataImportConfig,
        "data",
        "Adopt a fairseq-preprocess data-bin in place: check its splits and write the "
        "manifest.json that nmt-train and nmt-generate need (the binaries stay as they are).",
    ),
    "fairseq": (
        FairseqCheckpointImportConfig,
        "path",
        "Convert a fairseq transformer checkpoint into an nmt-preln checkpoint for "
        "nmt-generate, nmt-export and fine-tuning (nothing in the file is run).",
    ),
}
USAGE = "usage: nmt-import {fairseq-data,fairseq} ... (nmt-import COMMAND --help for its flags)"


def _run(command: str, cfg: Any) -> str:
    if command == "fairseq-data":
        from nmt_preln.interop.fairseq_data import adopt_fairseq_data

        manifest = adopt_fairseq_data(cfg)
        splits = ", ".join(f"{k} {v}" for k, v in manifest["splits"].items())
        return (
            f"adopted {cfg.data}: {manifest['source_lang']}-{manifest['target_lang']}, "
            f"splits {splits}; segmentation none: decode with --remove-bpe if it is BPE"
        )
    from nmt_preln.interop.fairseq_checkpoint import finetune_overrides, import_fairseq_checkpoint

    result = import_fairseq_checkpoint(cfg)
    return (
        f"wrote {result.out} ({result.arch.name}, {placement_of(result.arch.norm_position).title}, "
        f"{result.source_lang}->{result.target_lang})\n"
        f"decode:    nmt-generate {result.data} --path {result.out} --remove-bpe '@@ '\n"
        f"fine-tune: nmt-train {' '.join(finetune_overrides(result))} data.path={result.data} "
        f"checkpoint.finetune_from_model={result.out}"
    )


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``nmt-import COMMAND ...`` to the command's flags and library call."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr if not argv or argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    config_cls, positional, description = COMMANDS[argv[0]]
    cfg = parse_config(
        config_cls,
        argv[1:],
        prog=f"nmt-import {argv[0]}",
        description=description,
        positional=(positional,),
    )
    try:
        print(_run(argv[0], cfg))
    except UserError as err:
        print(f"nmt-import: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
