"""Builders shared by every test folder: toy corpora, preprocessed data dirs, tiny checkpoints.

The session fixtures of ``tests/conftest.py`` call these once per run; a test that needs its
own variant calls them with other parameters, and one that edits a shared directory copies it
first (:func:`helpers.corpus.copy_tree`).
"""
