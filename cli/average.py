"""``nmt-average``: average the weights of checkpoints (fairseq's average_checkpoints.py flags).

nmt-average --inputs ckpt --num-epoch-checkpoints 5 --output ckpt/checkpoint_avg5.pt
nmt-average --inputs ckpt/checkpoint9.pt ckpt/checkpoint10.pt --output avg.pt
"""

from __future__ import annotations

import sys

from nmt_preln.errors import UserError
from nmt_preln.flags import build_parser, to_config
from nmt_preln.tools_config import AverageConfig

DESCRIPTION = (
    "Average the model weights of the given checkpoints, or of the last N epoch/update "
    "checkpoints of a directory; the rest of the state is the newest checkpoint's."
)


def main(argv: list[str] | None = None) -> int:
    """Parse flags and run :func:`nmt_preln.checkpoint.average.average`."""
    parser = build_parser(AverageConfig, prog="nmt-average", description=DESCRIPTION)
    cfg = to_config(AverageConfig, parser.parse_args(argv))
    try:
        cfg.validate()
        from nmt_preln.checkpoint.average import average  # torch after the flags parse

        used = average(cfg)
    except UserError as err:
        print(f"nmt-average: error: {err}", file=sys.stderr)
        return 1
    print(f"averaged {len(used)} checkpoints into {cfg.output}: {' '.join(map(str, used))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
