"""``nmt-train``'s command line: Hydra overrides, fairseq-style flags and a DATA argument.

fairseq users write ``fairseq-train DATA --arch transformer_iwslt_de_en --max-update 100``;
:func:`to_overrides` turns such a command line into the Hydra overrides nmt-train composes
(``data.path=DATA +arch=postln ... max_update=100``). Three kinds of arguments are accepted:

- ``KEY=VALUE``, ``+GROUP=OPTION``, ``~KEY``: Hydra overrides, passed on unchanged;
- ``--flag VALUE`` / ``--flag=VALUE`` / ``--switch``: a fairseq-train flag of
  :data:`~nmt_preln.fairseq_flags.FLAGS`, or ``--<last name>`` of any setting whose last
  name is unique (``--decay-epoch 8`` is ``schedule.decay_epoch=8``);
- one bare argument: the data directory, like fairseq-train's positional DATA.

Every value is checked against the setting's type here, so the error names the flag.
"""

from __future__ import annotations

import functools
import json
import typing
from collections.abc import Iterator
from enum import Enum

from nmt_preln.compose import UsageError
from nmt_preln.config import TrainConfig
from nmt_preln.config_tree import Setting, settings
from nmt_preln.fairseq_flags import ARCH_PRESETS, FLAGS_BY_NAME, UNSUPPORTED, Flag

EVAL_BLEU_ARGS = {
    "beam": "validate_bleu_beam",
    "lenpen": "validate_bleu_lenpen",
    "max_len_a": "validate_bleu_max_len_a",
    "max_len_b": "validate_bleu_max_len_b",
}
NOT_BY_LAST_NAME = {"path"}  # --path is a checkpoint in fairseq-generate: never data.path


def _setting(key: str) -> Setting:
    return next(s for s in settings(TrainConfig) if s.key == key)


@functools.cache
def by_last_name() -> dict[str, list[Setting]]:
    """``{"--decay-epoch": [schedule.decay_epoch], "--name": [arch.name, optim.name, ...]}``."""
    found: dict[str, list[Setting]] = {}
    for s in settings(TrainConfig):
        if s.leaf not in NOT_BY_LAST_NAME:
            found.setdefault("--" + s.leaf.replace("_", "-"), []).append(s)
    return found


def _quote(text: str) -> str:
    """A Hydra quoted string: any path or text survives the override grammar."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def hydra_value(setting: Setting, value: str, *, flag: str) -> str:
    """``value`` (as typed after ``flag``) checked against the setting's type, for Hydra.

    Raises:
        UsageError: the value does not fit (``--max-update abc``, ``--lr 0.25,0.1``).
    """
    kind, key = setting.kind, setting.key

    def bad(expected: str) -> UsageError:
        return UsageError(f"{flag} {value}: expects {expected} (sets {key})")

    if isinstance(kind, type) and issubclass(kind, Enum):
        choices = [str(m.value) for m in kind]
        if value not in choices:
            raise bad("one of " + ", ".join(choices))
        return value
    if typing.get_origin(kind) is list:
        items = value.strip().strip("()[]").replace(" ", "").split(",")
        try:
            return "[" + ",".join(repr(float(i)) for i in items) + "]"
        except ValueError:
            raise bad("numbers like '(0.9, 0.98)'") from None
    if kind is bool:
        if value.lower() not in ("true", "false"):
            raise bad("true or false")
        return value.lower()
    if kind in (int, float):
        try:
            return str(int(value)) if kind is int else repr(float(value))
        except ValueError:
            raise bad("an integer" if kind is int else "a number") from None
    return _quote(value)


def _unknown_flag(flag: str, value: str | None) -> UsageError:
    if flag in UNSUPPORTED:
        return UsageError(f"{flag} has no nmt-train equivalent: {UNSUPPORTED[flag]}")
    key = flag.lstrip("-").replace("-", "_")
    if "." in key:  # --optim.lr: a setting written as a flag
        return UsageError(f"unknown option {flag}: write the override {key}={value or 'VALUE'}")
    from nmt_preln.config_tree import closest_key
    from nmt_preln.fairseq_flags import KEY_ALIASES

    guess = closest_key(key, TrainConfig, aliases=KEY_ALIASES)
    hint = f"write the override {guess}={value or 'VALUE'}" if guess else "see nmt-train --help"
    return UsageError(f"unknown option {flag} ({hint})")


Overrides = tuple[tuple[str, ...], tuple[str, ...]]  # (explicit, implied fairseq defaults)


def flag_overrides(flag: str, value: str | None) -> Overrides:
    """The overrides ``flag value`` stands for: what it sets, and fairseq defaults it implies.

    Raises:
        UsageError: an unknown or ambiguous flag, or a value that does not fit.
    """
    entry = FLAGS_BY_NAME.get(flag)
    if entry is not None:
        return _table_overrides(entry, value)
    found = by_last_name().get(flag)
    if found is None:
        raise _unknown_flag(flag, value)
    if len(found) > 1:
        keys = ", ".join(f"{s.key}={value or 'VALUE'}" for s in found)
        raise UsageError(f"{flag} is ambiguous: write one of the overrides {keys}")
    setting = found[0]
    if value is None:  # only bool settings take no value
        return (f"{setting.key}=true",), ()
    return (f"{setting.key}={hydra_value(setting, value, flag=flag)}",), ()


def _table_overrides(entry: Flag, value: str | None) -> Overrides:
    if value is None:
        return ((f"{entry.key}={entry.switch}",) if entry.key else ()), ()
    if value in entry.presets:
        preset = entry.presets[value]
        return tuple(filter(None, preset[:1])), preset[1:]
    if entry.flag == "--eval-bleu-args":
        return _eval_bleu_args(value), ()
    if entry.key is None:
        ours = "; or +arch=NAME for nmt-preln's presets" if entry.presets is ARCH_PRESETS else ""
        raise UsageError(
            f"{entry.flag} {value}: nmt-train supports {', '.join(entry.presets)}{ours}"
        )
    return (f"{entry.key}={hydra_value(_setting(entry.key), value, flag=entry.flag)}",), ()


def _eval_bleu_args(value: str) -> tuple[str, ...]:
    try:
        args = json.loads(value)
    except json.JSONDecodeError as err:
        raise UsageError(f"--eval-bleu-args {value}: not JSON ({err.msg})") from None
    if not isinstance(args, dict) or set(args) - set(EVAL_BLEU_ARGS):
        raise UsageError(
            f"--eval-bleu-args {value}: expects a JSON object with keys "
            + ", ".join(EVAL_BLEU_ARGS)
        )
    return tuple(
        f"{key}={hydra_value(_setting(key), str(args[name]), flag='--eval-bleu-args')}"
        for name, key in EVAL_BLEU_ARGS.items()
        if name in args
    )


def _split_flags(args: list[str]) -> Iterator[tuple[str | None, str | None, str | None]]:
    """Yield (flag, value, None) for each flag and (None, None, arg) for anything else."""
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-") or arg == "-":
            yield None, None, arg
            continue
        flag, eq, inline = arg.partition("=")
        entry = FLAGS_BY_NAME.get(flag)
        generic = by_last_name().get(flag)
        needs_value = entry.takes_value if entry else bool(generic and generic[0].kind is not bool)
        if eq:
            yield flag, inline, None
        elif needs_value:
            if i >= len(args):
                raise UsageError(f"{flag} needs a value")
            yield flag, args[i], None
            i += 1
        elif generic and i < len(args) and args[i].lower() in ("true", "false"):
            yield flag, args[i], None  # a bool setting by its last name, value given
            i += 1
        elif not entry and not generic and i < len(args) and "=" not in args[i]:
            yield flag, args[i], None  # an unknown flag: its value only makes the hint exact
            i += 1
        else:
            yield flag, None, None


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _check_requires(given: dict[str, str | None]) -> None:
    for flag in given:
        required = FLAGS_BY_NAME[flag].requires if flag in FLAGS_BY_NAME else None
        if required is None:
            continue
        other, _, value = required.partition("=")
        if other not in given or (value and given[other] != value):
            note = FLAGS_BY_NAME[flag].note
            raise UsageError(f"{flag} needs {required.replace('=', ' ')} ({note})")


def to_overrides(args: list[str]) -> list[str]:
    """Translate nmt-train's arguments (overrides, fairseq flags, DATA) into Hydra overrides.

    Args:
        args: the command line without the program name and without ``--cfg job``.

    Returns:
        Overrides for :func:`nmt_preln.compose.compose_train_config`: first the fairseq
        defaults implied by preset flags (so that any explicit setting wins), then the rest in
        the order given.

    Raises:
        UsageError: an unknown flag, a bad value, two data directories, or one setting given
            two different values by a flag and another argument.
    """
    implied: list[str] = []
    explicit: list[tuple[str, str]] = []  # (what the user wrote, the override)
    given: dict[str, str | None] = {}
    for flag, value, arg in _split_flags(args):
        if arg is not None and ("=" in arg or arg.startswith(("+", "~"))):
            explicit.append(("", arg))  # a Hydra override, checked by Hydra
        elif arg is not None:
            if any(source.startswith("DATA") for source, _ in explicit):
                raise UsageError(f"{arg}: a second data directory (DATA is given once)")
            explicit.append((f"DATA {arg}", f"data.path={_quote(arg)}"))
        elif flag is not None:
            sets, defaults = flag_overrides(flag, value)
            given[flag] = value
            source = flag if value is None else f"{flag} {value}"
            explicit += [(source, override) for override in sets]
            implied += defaults
    _check_requires(given)
    _check_conflicts(explicit)
    return implied + [override for _, override in explicit]


def _check_conflicts(explicit: list[tuple[str, str]]) -> None:
    """One setting set twice differently, once by a flag or DATA: refuse rather than guess."""
    first: dict[str, tuple[str, str]] = {}
    for source, override in explicit:
        key = _key(override)
        if key in first:
            other_source, other = first[key]
            if (source or other_source) and other.split("=", 1)[-1] != override.split("=", 1)[-1]:
                a = other_source or other
                b = source or override
                raise UsageError(f"{a} and {b} both set {key}: give it once")
        else:
            first[key] = (source, override)


def split_cfg_flag(args: list[str]) -> tuple[list[str], bool]:
    """Remove Hydra's ``--cfg job`` from ``args``; whether it was there.

    Raises:
        UsageError: ``--cfg`` with anything but ``job`` (only the job config exists here).
    """
    if "--cfg" not in args:
        return args, False
    i = args.index("--cfg")
    if args[i + 1 : i + 2] != ["job"]:
        raise UsageError("--cfg takes job (print the composed config): --cfg job")
    return args[:i] + args[i + 2 :], True
