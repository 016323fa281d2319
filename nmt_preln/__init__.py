"""nmt-preln: neural machine translation with switchable Pre-LN / Post-LN Transformers."""

__version__ = "0.1.0"
