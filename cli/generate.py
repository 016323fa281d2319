"""``nmt-generate``: translate a binarized split or raw text with a trained model (fairseq flags).

nmt-generate data-bin/iwslt14 --path ckpt/checkpoint_best.pt --beam 5 --lenpen 1.0
cat input.de | nmt-generate data-bin/iwslt14 --path a.pt:b.pt --input - --output-format plain
"""

from __future__ import annotations

import os
import sys

from nmt_preln.config import GenerateConfig
from nmt_preln.errors import UserError
from nmt_preln.flags import parse_config

DESCRIPTION = (
    "Translate the --gen-subset split of DATA (with BLEU/chrF against its references), or raw "
    "text with --input FILE / --input - (stdin, streamed in --buffer-size chunks), by beam "
    "search or sampling. Output: fairseq's S-/T-/H-/D-/P- lines (scores in base 2) or plain text."
)


def main(argv: list[str] | None = None) -> int:
    """Parse flags and run :func:`nmt_preln.generate.run.generate`."""
    cfg = parse_config(
        GenerateConfig, argv, prog="nmt-generate", description=DESCRIPTION, positional=("data",)
    )
    try:
        from nmt_preln.generate.run import generate  # torch is imported after the flags parse

        generate(cfg)
    except UserError as err:
        print(f"nmt-generate: error: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `nmt-generate ... | head`: the reader is gone, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
