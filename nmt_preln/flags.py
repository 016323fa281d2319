"""Command-line flags generated from a config dataclass, so a setting is declared only once.

``nmt-preprocess`` and ``nmt-generate`` keep fairseq's flag spelling: the field ``source_lang``
becomes ``--source-lang``. A ``bool`` field (always ``False`` by default) becomes a switch,
an ``Enum`` field a choice, ``str | None`` an optional value, ``list[str]`` a flag that
takes one or more values (``--inputs a.pt b.pt``). A field whose metadata has ``const`` takes
an optional value, as fairseq's ``--constraints [ordered|unordered]`` does: the flag alone
means ``const``, the flag with a value that value (argparse ``nargs="?"``). A field whose
default is ``MISSING`` is required; a field named in ``positional`` is taken as a positional
argument. A field typed as a dataclass (``GenerateConfig.search: SearchConfig``) contributes its
own fields as flags of their own name (``--beam``), listed as an argument group.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from enum import Enum
from typing import Any, TypeVar

from omegaconf import MISSING

T = TypeVar("T")


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """Return (the non-None type, whether None is allowed) of a resolved annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], True
    return annotation, False


def build_parser(
    config_cls: type[Any], *, prog: str, description: str, positional: tuple[str, ...] = ()
) -> argparse.ArgumentParser:
    """Build an argparse parser with one flag per field of ``config_cls``.

    Args:
        config_cls: a dataclass whose fields carry ``metadata={"help": ...}``.
        prog: the program name shown in usage and error lines.
        description: the first paragraph of ``--help``.
        positional: fields taken as positional arguments instead of ``--flags``.

    Returns:
        A parser whose namespace :func:`to_config` turns into a ``config_cls``.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    _add_flags(parser, config_cls, positional=positional)
    return parser


def _add_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    config_cls: type[Any],
    *,
    positional: tuple[str, ...],
) -> None:
    """Add one flag per leaf field of ``config_cls``; nested dataclasses become groups."""
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        kind, _ = _base_type(hints[f.name])
        if dataclasses.is_dataclass(kind) and isinstance(kind, type):
            doc = (kind.__doc__ or "").strip().splitlines()[0]
            group = parser.add_argument_group(f.name, doc)
            _add_flags(group, kind, positional=())
            continue
        help_text = f.metadata.get("help", "")
        required = f.default is MISSING
        default = None if required else f.default
        if f.name in positional:
            parser.add_argument(f.name, metavar=f.name.upper(), help=help_text)
            continue
        flag = "--" + f.name.replace("_", "-")
        if typing.get_origin(kind) is list:
            (item,) = typing.get_args(kind)
            parser.add_argument(
                flag,
                dest=f.name,
                type=item,
                nargs="+",
                default=default,
                required=required,
                metavar=f.name.upper(),
                help=help_text,
            )
        elif "const" in f.metadata:
            const = f.metadata["const"]
            parser.add_argument(
                flag,
                dest=f.name,
                type=kind,
                nargs="?",
                const=const,
                default=default,
                metavar=f.name.upper(),
                help=f"{help_text} (default: {default}; the flag alone: {const!r})",
            )
        elif kind is bool:
            if default:
                raise TypeError(f"{config_cls.__name__}.{f.name}: switches must default to False")
            parser.add_argument(flag, dest=f.name, action="store_true", help=help_text)
        elif isinstance(kind, type) and issubclass(kind, Enum):
            choices = [m.value for m in kind]
            parser.add_argument(
                flag,
                dest=f.name,
                choices=choices,
                default=default.value if default is not None else None,
                required=required,
                help=f"{help_text} (default: {default.value if default is not None else None})",
            )
        else:
            parser.add_argument(
                flag,
                dest=f.name,
                type=kind,
                default=default,
                required=required,
                metavar=f.name.upper(),
                # A help text that states its own default ("default: test") keeps it alone.
                help=help_text if "default:" in help_text else f"{help_text} (default: {default})",
            )


def to_config(config_cls: type[T], namespace: argparse.Namespace) -> T:
    """Convert a parsed namespace back into the typed dataclass (enums restored, groups nested)."""
    hints = typing.get_type_hints(config_cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(config_cls):  # type: ignore[arg-type]
        kind, _ = _base_type(hints[f.name])
        if dataclasses.is_dataclass(kind) and isinstance(kind, type):
            values[f.name] = to_config(kind, namespace)
            continue
        value = getattr(namespace, f.name)
        if value is not None and isinstance(kind, type) and issubclass(kind, Enum):
            value = kind(value)
        values[f.name] = value
    return config_cls(**values)


def parse_config(
    config_cls: type[T],
    argv: list[str] | None,
    *,
    prog: str,
    description: str,
    positional: tuple[str, ...] = (),
) -> T:
    """Parse ``argv`` into ``config_cls``; argparse exits with status 2 on a usage error."""
    parser = build_parser(config_cls, prog=prog, description=description, positional=positional)
    return to_config(config_cls, parser.parse_args(argv))
