"""The settings of a config dataclass tree as dotted keys: types, defaults, help, typos.

``nmt-train`` takes Hydra overrides, and Hydra's ``+key=value`` appends keys that no dataclass
has (the typed config is only checked for the keys it knows). This module lists every real key
of :class:`~nmt_preln.config.TrainConfig` (``arch.d_model``, ``optim.lr``, ``max_update`` ...),
so that an unknown one fails with the closest real key as a suggestion, and so that
``nmt-train --help`` and the fairseq flag table are generated from the dataclasses.

A field's help text is its ``metadata["help"]`` when it has one, else the comment that ends
its line in the class (``nmt_preln/config/``: the training dataclasses document their fields
that way).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import io
import tokenize
import types
import typing
from collections.abc import Iterable
from enum import Enum
from typing import Any

from omegaconf import MISSING, DictConfig


@dataclasses.dataclass(frozen=True)
class Setting:
    """One leaf of a config tree.

    Attributes:
        key: the dotted path, e.g. ``"schedule.warmup_updates"``.
        kind: the field's type without ``None`` (``int``, an Enum class, ``list[float]`` ...).
        optional: whether ``None`` is allowed.
        default: the dataclass default (``MISSING`` when the value is required).
        help: one line saying what the setting does ("" when the source has none).
    """

    key: str
    kind: Any
    optional: bool
    default: Any
    help: str

    @property
    def leaf(self) -> str:
        """The last name of the key (``warmup_updates``)."""
        return self.key.rsplit(".", 1)[-1]

    def type_name(self) -> str:
        """``int``, ``float``, ``str``, ``pre|post`` (choices), ``list[float]``, ``+ |None``."""
        if isinstance(self.kind, type) and issubclass(self.kind, Enum):
            name = "|".join(str(m.value) for m in self.kind)
        elif typing.get_origin(self.kind) is list:
            name = f"list[{typing.get_args(self.kind)[0].__name__}]"
        else:
            name = getattr(self.kind, "__name__", str(self.kind))
        return f"{name}|None" if self.optional else name

    def default_text(self) -> str:
        """The default as a user writes it on the command line."""
        if self.default is MISSING:
            return "(required)"
        if isinstance(self.default, Enum):
            return str(self.default.value)
        if isinstance(self.default, bool):
            return str(self.default).lower()
        if self.default is None:
            return "null"
        return str(self.default)


def base_type(annotation: Any) -> tuple[Any, bool]:
    """Return (the non-None type, whether None is allowed) of a resolved annotation."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(annotation))
    return annotation, False


@functools.cache
def _line_comments(cls: type) -> dict[str, str]:
    """``{field name: comment}`` from the class source (empty when the source is unavailable).

    The comment ending the field's line, else the first sentence of the comment block
    right above the field.
    """
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):  # no source (frozen app): help stays empty, nothing breaks
        return {}
    comments: dict[str, str] = {}
    block: list[str] = []  # the comment lines since the last field
    field_line: dict[int, str] = {}  # line number -> the field declared on it
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        line, col = tok.start
        if tok.type == tokenize.NAME and col == 4 and line not in field_line:
            field_line[line] = tok.string
            if block:
                comments[tok.string] = " ".join(block).split(". ")[0].rstrip(".")
            block = []
        elif tok.type == tokenize.COMMENT:
            text = tok.string.lstrip("# ").strip()
            if line in field_line:
                comments[field_line[line]] = text
            elif col == 4:
                block.append(text)
    return comments


def field_help(cls: type, name: str) -> str:
    """The help text of field ``name`` of dataclass ``cls``: metadata, else its line comment."""
    for f in dataclasses.fields(cls):
        if f.name == name and "help" in f.metadata:
            return str(f.metadata["help"])
    return _line_comments(cls).get(name, "")


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return MISSING


@functools.cache
def settings(cls: type, prefix: str = "") -> tuple[Setting, ...]:
    """Every leaf setting of dataclass ``cls``, nested dataclasses flattened to dotted keys.

    A field typed as a dataclass (``arch: ModelConfig``) is a node: its fields are listed under
    ``arch.``, whatever its default (``arch`` itself is ``MISSING`` until ``+arch=`` picks one).
    """
    hints = typing.get_type_hints(cls)
    found: list[Setting] = []
    for f in dataclasses.fields(cls):
        kind, optional = base_type(hints[f.name])
        if dataclasses.is_dataclass(kind) and isinstance(kind, type):
            found += settings(kind, f"{prefix}{f.name}.")
        else:
            help_text = field_help(cls, f.name)
            found.append(Setting(f"{prefix}{f.name}", kind, optional, _default(f), help_text))
    return tuple(found)


@functools.cache
def nodes(cls: type, prefix: str = "") -> frozenset[str]:
    """Dotted keys of the nested dataclass nodes of ``cls`` (``arch``, ``data`` ...)."""
    hints = typing.get_type_hints(cls)
    found: set[str] = set()
    for f in dataclasses.fields(cls):
        kind, _ = base_type(hints[f.name])
        if dataclasses.is_dataclass(kind) and isinstance(kind, type):
            found |= {f"{prefix}{f.name}"} | nodes(kind, f"{prefix}{f.name}.")
    return frozenset(found)


def is_known(key: str, cls: type) -> bool:
    """Whether ``key`` names a setting or node of ``cls`` (``optim.betas.0``: a list item)."""
    if key in nodes(cls):
        return True
    for s in settings(cls):
        if key == s.key:
            return True
        rest = key[len(s.key) + 1 :] if key.startswith(s.key + ".") else ""
        if rest.isdigit() and typing.get_origin(s.kind) is list:
            return True
    return False


def closest_key(key: str, cls: type, *, aliases: dict[str, str] | None = None) -> str | None:
    """The real key a mistyped ``key`` most likely meant, or None.

    Tried in order: ``aliases`` (other tools' names, e.g. fairseq's), the same last name
    under another node (``optim.warmup_updates`` -> ``schedule.warmup_updates``), then the
    closest spelling of the whole key and of its last name.
    """
    keys = [s.key for s in settings(cls)] + sorted(nodes(cls))
    node, _, leaf = key.rpartition(".")
    for name in (key, leaf):
        if aliases and name in aliases:
            return aliases[name]
    same_leaf = [k for k in keys if k.rsplit(".", 1)[-1] == leaf]
    if len(same_leaf) == 1:
        return same_leaf[0]
    if node in nodes(cls):  # a known node: only its own fields can be meant
        siblings = [k for k in keys if k.startswith(node + ".")]
        close = difflib.get_close_matches(leaf, [k[len(node) + 1 :] for k in siblings], n=1)
        return f"{node}.{close[0]}" if close else None
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_setting_message(key: str, cls: type, *, aliases: dict[str, str] | None = None) -> str:
    """``unknown setting 'max_epochs' (did you mean 'max_epoch'?)``."""
    guess = closest_key(key, cls, aliases=aliases)
    hint = f" (did you mean '{guess}'?)" if guess else " (nmt-train --help lists every setting)"
    return f"unknown setting '{key}'{hint}"


def unknown_keys(cfg: DictConfig, cls: type, prefix: str = "") -> Iterable[str]:
    """Dotted keys of the composed ``cfg`` that no field of ``cls`` declares.

    Hydra's ``+key=value`` and the ``# @package _global_`` experiment files can add keys to a
    typed config; OmegaConf's conversion to the dataclass then drops them without a word.
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for name in cfg:
        key = str(name)
        full = f"{prefix}{key}"
        if key not in names:
            yield full
            continue
        kind, _ = base_type(hints[key])
        node = cfg._get_node(key)
        if dataclasses.is_dataclass(kind) and isinstance(node, DictConfig):
            yield from unknown_keys(node, kind, f"{full}.")  # type: ignore[arg-type]
