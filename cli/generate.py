"""``nmt-generate``: translate a binarized split or raw text with a trained model (fairseq flags).

nmt-generate data-bin/iwslt14 --path ckpt/checkpoint_best.pt --beam 5 --lenpen 1.0
cat input.de | nmt-generate data-bin/iwslt14 --path a.pt:b.pt --input - --output-format plain
"""

from __future__ import annotations

import contextlib
import os
import sys

from nmt_preln.config import GenerateConfig
from nmt_preln.errors import UserError
from nmt_preln.flags import parse_config

DESCRIPTION = (
    "Translate the --gen-subset split of DATA (with BLEU/chrF against its references), or raw "
    "text with --input FILE / --input - (stdin; from a pipe or terminal each line is "
    "translated as it arrives), by beam search or sampling. Output: fairseq's S-/T-/H-/D-/P- "
    "lines (scores in base 2), or plain text. S-, T- and H- hold SentencePiece pieces as "
    "fairseq prints them without --post-process, so `grep ^H | cut -f3 | spm_decode` works; "
    "--post-process sentencepiece (alias --remove-bpe) turns them into text, as fairseq does. "
    "D- always holds the detokenized translation."
)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError):  # a captured stdout (tests) has none
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    """Parse flags and run :func:`nmt_preln.generate.run.generate`."""
    cfg = parse_config(
        GenerateConfig, argv, prog="nmt-generate", description=DESCRIPTION, positional=("data",)
    )
    try:
        cfg.validate()  # every setting, before torch or any file is loaded
        from nmt_preln.generate.run import OutputError, generate  # torch after the flags parse

        try:
            generate(cfg)
        except OutputError:
            _silence_stdout()  # e.g. `> /dev/full`: the pending bytes can never be written
            raise
    except UserError as err:
        print(f"nmt-generate: error: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `nmt-generate ... | head`: the reader is gone, not an error
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
