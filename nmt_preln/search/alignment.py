"""Hard alignments for ``--print-alignment`` (fairseq's ``A-`` lines) from decoder attention.

The attention of a target token is the last decoder layer's cross-attention, averaged over
heads (and over the models of an ensemble), at the step that predicted the token, as fairseq
records it during the search. fairseq's hard alignment (``extract_hard_alignment``) pairs
every target token except the final ``</s>`` with the source position it attends to most,
never the source's ``</s>`` or padding: the same here, positions 0-based on both sides.
"""

from __future__ import annotations

from torch import Tensor


def hard_alignment(attention: Tensor, *, src_len: int) -> list[int]:
    """The source position aligned with each target token, ``</s>`` excluded on both sides.

    Args:
        attention: ``(tgt_len, src_len)`` the hypothesis's attention; its last row is the
            target ``</s>`` and its last column the source ``</s>``.
        src_len: the source length, ``</s>`` included.

    Returns:
        ``tgt_len - 1`` source positions in ``[0, src_len - 1)``, one per target token but
        the final ``</s>``; empty when the source has no token besides ``</s>`` (fairseq
        prints an empty alignment then). fairseq's ``A-`` line is
        ``" ".join(f"{s}-{t}" for t, s in enumerate(result))``.
    """
    if src_len <= 1 or attention.size(0) <= 1:
        return []
    return attention[:-1, : src_len - 1].argmax(dim=1).tolist()
