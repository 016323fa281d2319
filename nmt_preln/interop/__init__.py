"""Interoperability with fairseq 0.12.2: adopt its data-bins, convert its checkpoints.

See docs/FAIRSEQ.md for the commands and what carries over.
"""
