"""``nmt-preprocess``: raw parallel text -> binarized data directory (fairseq-preprocess's flags).

nmt-preprocess --source-lang de --target-lang en --trainpref raw/train --validpref raw/valid \
    --testpref raw/test --destdir data-bin/iwslt14 --joined-dictionary --spm-vocab-size 10000
"""

from __future__ import annotations

import logging
import sys

from nmt_preln.config import PreprocessConfig
from nmt_preln.errors import UserError
from nmt_preln.flags import parse_config

DESCRIPTION = (
    "Learn or load SentencePiece models, build fairseq dictionaries and binarize parallel text "
    "PREFIX.LANG into DESTDIR (see docs/INTERNALS.md, 'Data directory'). Rerunning the same "
    "command replaces its dataset; a DESTDIR holding anything else needs --overwrite."
)


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run :func:`nmt_preln.data.preprocess.preprocess`, print its report."""
    cfg = parse_config(PreprocessConfig, argv, prog="nmt-preprocess", description=DESCRIPTION)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(message)s", stream=sys.stderr)
    try:
        cfg.validate()  # every flag, before any file is read
        from nmt_preln.data.preprocess import preprocess  # numpy/sentencepiece after parsing

        report = preprocess(cfg)
    except UserError as err:
        print(f"nmt-preprocess: error: {err}", file=sys.stderr)
        return 1
    print(report.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
