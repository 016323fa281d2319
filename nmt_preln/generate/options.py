"""What two of ``nmt-generate``'s text options mean (its range rules are ``GenerateConfig``'s).

:func:`post_process_symbol` is the one value of ``--post-process``/``--remove-bpe`` (fairseq's
two spellings of one option), which ``nmt_preln.data.segmenter.post_process`` applies to the
space-joined pieces of an S-/T-/H- line. :func:`load_align_dict` reads the ``--replace-unk``
dictionary (fairseq's format: ``src tgt`` per line).
"""

from __future__ import annotations

from nmt_preln.config import GenerateConfig
from nmt_preln.errors import UserError


def post_process_symbol(cfg: GenerateConfig) -> str | None:
    """The one post-process setting of ``--post-process`` / ``--remove-bpe`` (fairseq aliases)."""
    return cfg.post_process if cfg.post_process is not None else cfg.remove_bpe


def load_align_dict(path: str) -> dict[str, str]:
    """Read a ``--replace-unk`` dictionary: one ``source_token target_token`` pair per line.

    Raises:
        UserError: the file is unreadable, or a line does not hold two tokens (naming it).
    """
    table: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                cols = line.split()
                if not cols:
                    continue
                if len(cols) != 2:
                    raise UserError(
                        f"--replace-unk {path}: line {number}: expected 'source target', "
                        f"got {len(cols)} fields"
                    )
                table[cols[0]] = cols[1]
    except OSError as e:
        raise UserError(f"--replace-unk {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise UserError(f"--replace-unk {path}: not UTF-8 text ({e.reason})") from e
    return table
