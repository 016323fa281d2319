"""The checkpoint format, owned here: writing, loading, validation, versions and averaging.

:mod:`~nmt_preln.checkpoint.store` saves and loads files (``weights_only``, atomic writes, fairseq's
file names), :mod:`~nmt_preln.checkpoint.schema` validates a loaded state field by field (with
:mod:`~nmt_preln.checkpoint.training_state` for optimizer, RNG and progress) and upgrades older
format versions, :mod:`~nmt_preln.checkpoint.average` averages checkpoints (``nmt-average``).
Training, generation, export and import all go through these modules.
"""
