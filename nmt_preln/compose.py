"""Compose the shipped Hydra configs into typed dataclasses, with one-line errors.

``nmt-train`` uses Hydra's compose API rather than ``@hydra.main``: every torchrun rank composes
the same config from the same overrides, nothing changes the working directory, and every
composition error (unknown key, wrong type, bad enum value, missing option) becomes a single
:class:`~nmt_preln.errors.UserError` line instead of Hydra's multi-line report.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nmt_preln.config import TrainConfig, register_configs
from nmt_preln.errors import UserError

CONFIG_MODULE = "nmt_preln.conf"


def group_options(group: str) -> list[str]:
    """Names of the YAML options shipped in ``conf/<group>/``, sorted.

    Subfolders count too (``conf/experiment/cpu/x.yaml`` is the option ``cpu/x``, selected as
    ``+experiment=cpu/x``).
    """

    def walk(folder: Traversable, prefix: str) -> list[str]:
        names = []
        for p in folder.iterdir():
            if p.is_dir():
                names += walk(p, f"{prefix}{p.name}/")
            elif p.name.endswith(".yaml"):
                names.append(prefix + p.name[: -len(".yaml")])
        return names

    return sorted(walk(resources.files(CONFIG_MODULE).joinpath(group), ""))


def _one_line(err: BaseException) -> str:
    """Hydra and OmegaConf messages span lines and chain causes; keep what names the problem."""
    parts: list[str] = []
    cause: BaseException | None = err
    while cause is not None:
        lines = [ln.strip() for ln in str(cause).splitlines() if ln.strip()]
        if lines:
            head = lines[0]
            key = next((ln for ln in lines if ln.startswith("full_key:")), "full_key:")
            if key != "full_key:" and key[len("full_key:") :].strip() not in head:
                head += f" ({key.replace('full_key:', 'key').strip()})"
            options = [
                ln for ln in str(cause).splitlines() if ln.startswith("\t") and "=" not in ln
            ]
            if options:
                head += "; available: " + ", ".join(o.strip() for o in options)
            hint = next((ln for ln in lines if ln.startswith("To append")), None)
            parts.append(f"{head} ({hint[0].lower()}{hint[1:]})" if hint else head)
        cause = cause.__cause__
    return ": ".join(parts) or type(err).__name__


def compose_config(config_name: str, overrides: list[str]) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with Hydra ``overrides``.

    Raises:
        UserError: the overrides do not parse, name an unknown option or key, or give a
            value of the wrong type.
    """
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
            return compose(config_name=config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        raise UserError(_one_line(err)) from None


def to_dataclass(cfg: DictConfig) -> Any:
    """Turn a composed config into its dataclass, validating every field once.

    Raises:
        UserError: a required value is missing or a value does not fit its type.
    """
    try:
        return OmegaConf.to_object(cfg)
    except OmegaConfBaseException as err:
        raise UserError(_one_line(err)) from None


def compose_train_config(overrides: list[str]) -> tuple[TrainConfig, DictConfig]:
    """Compose ``nmt-train``'s config from command-line overrides.

    Args:
        overrides: Hydra overrides, e.g. ``["+arch=preln", "data.path=data-bin/toy"]``.

    Returns:
        The validated :class:`TrainConfig` and the composed DictConfig (for ``--cfg job``).

    Raises:
        UserError: no architecture was chosen, or any composition/validation error.
    """
    cfg = compose_config("train", overrides)
    if OmegaConf.is_missing(cfg, "arch"):
        choices = ", ".join(group_options("arch"))
        raise UserError(f"no architecture chosen: add +arch=NAME, NAME one of: {choices}")
    if OmegaConf.is_missing(cfg.data, "path"):
        raise UserError("no data directory: add data.path=DIR (a directory from nmt-preprocess)")
    train_cfg = to_dataclass(cfg)
    assert isinstance(train_cfg, TrainConfig)
    return train_cfg, cfg
