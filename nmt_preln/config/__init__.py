"""Every setting of nmt-preln: one typed dataclass field, one name, one default, one owner.

The YAML files under ``conf/`` only hold values that differ between options; the types and
defaults live in this package and are registered as Hydra structured configs by
:func:`register_configs`. Library code receives these dataclasses (never a ``DictConfig``), so
it runs without Hydra. The argparse front ends of ``nmt-preprocess`` and ``nmt-generate`` are
generated from :class:`PreprocessConfig` and :class:`GenerateConfig` by :mod:`nmt_preln.flags`
(field metadata ``help`` is their one-line help text).

Each dataclass owns its range and consistency rules as a ``validate()`` method; the console
scripts call the top one (``TrainConfig``, ``GenerateConfig``, ``PreprocessConfig``) once,
before reading any file, and library code trusts a config it is given.

Modules: :mod:`~nmt_preln.config.model` (``arch.*``), :mod:`~nmt_preln.config.hardware`,
:mod:`~nmt_preln.config.train` (``nmt-train``), :mod:`~nmt_preln.config.generate`
(``nmt-generate`` and the search), :mod:`~nmt_preln.config.preprocess` (``nmt-preprocess``).
"""

from __future__ import annotations

from nmt_preln.config.fields import cli_help
from nmt_preln.config.generate import GenerateConfig, OutputFormat, SearchConfig
from nmt_preln.config.hardware import Device, HardwareConfig, Precision
from nmt_preln.config.model import Activation, InitMethod, ModelConfig, NormPosition
from nmt_preln.config.preprocess import PreprocessConfig, Segmentation, SpmModelType
from nmt_preln.config.train import (
    BestMetric,
    CheckpointConfig,
    DataConfig,
    LogFormat,
    OptimConfig,
    Optimizer,
    ScheduleConfig,
    ScheduleName,
    TrainConfig,
)

__all__ = [
    "Activation",
    "BestMetric",
    "CheckpointConfig",
    "DataConfig",
    "Device",
    "GenerateConfig",
    "HardwareConfig",
    "InitMethod",
    "LogFormat",
    "ModelConfig",
    "NormPosition",
    "OptimConfig",
    "Optimizer",
    "OutputFormat",
    "Precision",
    "PreprocessConfig",
    "ScheduleConfig",
    "ScheduleName",
    "SearchConfig",
    "Segmentation",
    "SpmModelType",
    "TrainConfig",
    "cli_help",
    "register_configs",
]


def register_configs() -> None:
    """Register the dataclasses with Hydra's ConfigStore (called by the CLI, not the library)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    # The primary schema types every group's key, so the YAML options need no schema of their own.
    store.store(name="train_schema", node=TrainConfig)
    store.store(name="preprocess_schema", node=PreprocessConfig)
    store.store(name="generate_schema", node=GenerateConfig)
