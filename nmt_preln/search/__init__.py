"""Decoding shared by ``nmt-generate`` and validation: beam search, sampling, the translator.

Neither :mod:`nmt_preln.train` nor :mod:`nmt_preln.generate` imports the other; both decode
through :class:`nmt_preln.search.translator.Translator`.
"""
