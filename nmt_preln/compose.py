"""Compose the shipped Hydra configs into typed dataclasses, with one-line errors.

``nmt-train`` uses Hydra's compose API rather than ``@hydra.main``: every torchrun rank composes
the same config from the same overrides, nothing changes the working directory, and every
composition error (unknown key, wrong type, bad enum value, missing option) becomes a single
:class:`~nmt_preln.errors.UserError` line instead of Hydra's multi-line report.
"""

from __future__ import annotations

import os
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nmt_preln.config import TrainConfig, register_configs
from nmt_preln.config_tree import is_known, unknown_keys, unknown_setting_message
from nmt_preln.errors import UserError

CONFIG_MODULE = "nmt_preln.conf"


class UsageError(UserError):
    """The command line does not make a config (exit status 2, argparse's usage-error status).

    Unknown settings or flags, malformed overrides, values of the wrong type or outside an
    enum's choices, a missing ``+arch`` or ``data.path``. Values that compose but are out of
    range (``optim.lr=-1``) and problems with files are plain :class:`UserError` (status 1).
    """


def config_groups() -> list[str]:
    """The config groups of ``conf/`` (``arch``, ``data``, ``experiment`` ...)."""
    return sorted(p.name for p in resources.files(CONFIG_MODULE).iterdir() if p.is_dir())


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
        raise UsageError(_one_line(err)) from None


def to_dataclass(cfg: DictConfig) -> Any:
    """Turn a composed config into its dataclass, validating every field once.

    Raises:
        UserError: a required value is missing or a value does not fit its type.
    """
    try:
        return OmegaConf.to_object(cfg)
    except OmegaConfBaseException as err:
        raise UsageError(_one_line(err)) from None


def check_override_keys(overrides: list[str]) -> None:
    """Refuse an override of a key no dataclass has, ``+`` or not, naming the closest real key.

    Hydra's ``+key=value`` adds keys to the typed config that the dataclass then drops, and
    its message for ``key=value`` suggests exactly that ``+``. Groups (``+arch=preln``,
    ``data=toy``, ``+experiment=...``) are left to Hydra, which knows their options.

    Raises:
        UsageError: an unknown key, or a ``hydra.*`` setting (nothing here reads them).
    """
    from nmt_preln.fairseq_flags import KEY_ALIASES

    parser = OverridesParser.create()
    groups = config_groups()
    for line in overrides:
        try:
            (override,) = parser.parse_overrides([line])
        except HydraException as err:
            lines = str(err).splitlines()
            why = lines[1] if lines[0].startswith("Error parsing") else "a character it cannot take"
            raise UsageError(
                f"cannot parse the override {line!r} ({why}): write KEY=VALUE, quote a value "
                "with spaces or special characters (KEY='a b'), or use --flag VALUE"
            ) from None
        key = override.key_or_group
        if key.split("/")[0] in groups or override.package is not None:
            continue
        if key.split(".")[0].split("/")[0] == "hydra":
            raise UsageError(
                f"{override.input_line}: nmt-train composes its config without Hydra's job "
                "runner, so hydra settings have no effect"
            )
        if not is_known(key, TrainConfig):
            raise UsageError(unknown_setting_message(key, TrainConfig, aliases=KEY_ALIASES))


def compose_train(overrides: list[str]) -> DictConfig:
    """Compose ``nmt-train``'s config, refusing every key that :class:`TrainConfig` lacks.

    Raises:
        UsageError: an unknown key (in an override or in a config file), or any
            composition error.
    """
    from nmt_preln.fairseq_flags import KEY_ALIASES

    check_override_keys(overrides)
    cfg = compose_config("train", overrides)
    for key in unknown_keys(cfg, TrainConfig):
        raise UsageError(unknown_setting_message(key, TrainConfig, aliases=KEY_ALIASES))
    return cfg


def compose_train_config(overrides: list[str]) -> tuple[TrainConfig, DictConfig]:
    """Compose ``nmt-train``'s config from command-line overrides.

    Args:
        overrides: Hydra overrides, e.g. ``["+arch=preln", "data.path=data-bin/toy"]``.

    Returns:
        The validated :class:`TrainConfig` and the composed DictConfig (for ``--cfg job``).

    Raises:
        UsageError: no architecture or data directory was chosen, or any
            composition/validation error.
    """
    cfg = compose_train(overrides)
    if OmegaConf.is_missing(cfg, "arch"):
        choices = ", ".join(group_options("arch"))
        raise UsageError(f"no architecture chosen: add +arch=NAME, NAME one of: {choices}")
    if OmegaConf.is_missing(cfg.data, "path"):
        raise UsageError("no data directory: add data.path=DIR (a directory from nmt-preprocess)")
    train_cfg = to_dataclass(cfg)
    assert isinstance(train_cfg, TrainConfig)
    return train_cfg, cfg


def check_data_path(cfg: TrainConfig, overrides: list[str]) -> None:
    """Check that ``data.path`` is a finished nmt-preprocess directory, naming the setting.

    A relative ``data.path`` (``data=toy`` has ``demo/data-bin``) is resolved against the
    current directory, like any path on a command line; the error shows both forms and where
    the value came from.

    Raises:
        UserError: the directory does not exist or has no valid manifest.
    """
    from nmt_preln.data.dataset import load_manifest

    given = cfg.data.path
    origin = ""
    if not any(o.lstrip("+").startswith("data.path=") for o in overrides):
        chosen = [o for o in overrides if o.startswith(("data=", "+experiment="))]
        origin = f" (set by {chosen[-1]})" if chosen else ""
    resolved = os.path.abspath(given)
    where = "" if os.path.isabs(given) else f" (relative to the current directory {os.getcwd()})"
    if not os.path.isdir(resolved):
        raise UserError(f"data.path={given}{origin}: {resolved} does not exist{where}")
    try:
        load_manifest(resolved)
    except UserError as err:
        raise UserError(f"data.path={given}{origin}: {err}") from None
