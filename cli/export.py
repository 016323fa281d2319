"""``nmt-export``: write a trained model for an inference engine.

nmt-export --format ctranslate2 --path checkpoints/checkpoint_best.pt --out ct2-model
nmt-export --format safetensors --path checkpoints/checkpoint_best.pt --out st-model
"""

from __future__ import annotations

import sys

from nmt_preln.errors import UserError
from nmt_preln.flags import build_parser, to_config
from nmt_preln.tools_config import ExportConfig, ExportFormat

DESCRIPTION = (
    "Export a checkpoint's model: a CTranslate2 model directory (TransformerSpec, with the "
    "SentencePiece model) or model.safetensors + config.json."
)


def main(argv: list[str] | None = None) -> int:
    """Parse flags and run the exporter of ``--format``."""
    parser = build_parser(ExportConfig, prog="nmt-export", description=DESCRIPTION)
    cfg = to_config(ExportConfig, parser.parse_args(argv))
    try:  # torch and the engines are imported after the flags parse
        if cfg.format == ExportFormat.ctranslate2:
            from nmt_preln.export.ctranslate2 import export_ctranslate2

            out = export_ctranslate2(
                cfg.path, cfg.out, quantization=cfg.quantization, force=cfg.force
            )
        else:
            from nmt_preln.export.safetensors import export_safetensors

            out = export_safetensors(cfg.path, cfg.out, force=cfg.force)
    except UserError as err:
        print(f"nmt-export: error: {err}", file=sys.stderr)
        return 1
    print(f"exported {cfg.path} as {cfg.format.value} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
