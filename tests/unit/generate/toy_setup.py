"""The decoding tests' toy data and random checkpoints, under their older names.

Only ``tests/unit/export`` still imports this module; everything lives in ``tests/helpers``
(and the built data dir is the session fixture ``spm_toy`` of ``tests/conftest.py``).
"""

from helpers.checkpoints import random_checkpoint as make_checkpoint
from helpers.corpus import make_spm_data as make_data
from helpers.corpus import write_corpus

__all__ = ["make_checkpoint", "make_data", "write_corpus"]
