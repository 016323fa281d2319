"""Text generated from the settings, so it cannot go stale: ``nmt-train --help`` and README's
"Coming from fairseq" tables.

Both are rendered from the dataclasses of :mod:`nmt_preln.config` (through
:mod:`nmt_preln.config_tree`) and from the fairseq flag table of :mod:`nmt_preln.fairseq_flags`.
"""

from __future__ import annotations

import textwrap
import typing
from collections.abc import Sequence
from enum import Enum

from nmt_preln.config import GenerateConfig, PreprocessConfig, TrainConfig
from nmt_preln.config_tree import Setting, settings
from nmt_preln.fairseq_flags import ALIASES, FLAGS, Flag

README_BEGIN = "<!-- BEGIN fairseq tables: python -m nmt_preln.fairseq_flags --readme README.md -->"
README_END = "<!-- END fairseq tables -->"

# fairseq-generate's / fairseq-interactive's (and fairseq-preprocess's) own flag names; a field
# of ours outside these sets is shown as nmt-preln's own, with the fairseq spelling if any.
FAIRSEQ_GENERATE = frozenset(
    [
        "data",
        "path",
        "gen_subset",
        "input",
        "source_lang",
        "target_lang",
        "beam",
        "nbest",
        "lenpen",
        "max_len_a",
        "max_len_b",
        "min_len",
        "unkpen",
        "no_repeat_ngram_size",
        "batch_size",
        "max_tokens",
        "buffer_size",
        "sampling",
        "sampling_topk",
        "sampling_topp",
        "temperature",
        "results_path",
        "quiet",
        "remove_bpe",
        "seed",
        "score_reference",
        "prefix_size",
        "print_alignment",
        "replace_unk",
        "constraints",
        "diverse_beam_groups",
        "diverse_beam_strength",
        "post_process",
    ]
)
FAIRSEQ_PREPROCESS = frozenset(
    [
        "source_lang",
        "target_lang",
        "trainpref",
        "validpref",
        "testpref",
        "destdir",
        "joined_dictionary",
        "srcdict",
        "tgtdict",
        "nwordssrc",
        "nwordstgt",
        "thresholdsrc",
        "thresholdtgt",
        "workers",
    ]
)
FAIRSEQ_SPELLING = {"device": "`--cpu`", "precision": "`--fp16`, `--bf16`"}
USAGE = """\
usage: nmt-train +arch=NAME data.path=DIR [KEY=VALUE ...] [--cfg job]
       nmt-train DATA --arch FAIRSEQ_ARCH [--FAIRSEQ-FLAG [VALUE] ...]

Train a Transformer. Settings are Hydra overrides KEY=VALUE; GROUP=OPTION picks a config file
(+arch=NAME and +experiment=NAME add one); fairseq-train's flags and a positional DATA are
translated into overrides (table below). --cfg job prints the composed config and exits.
Relative paths (data.path, checkpoint.save_dir ...) start at the current directory.
"""
EXIT_STATUS = """\
Exit status: 0 done; 2 usage error (unknown setting or flag, malformed override, wrong type
or choice, missing +arch or data.path); 1 any other error (a value out of range, missing or
bad data, a failed run); 130 / 143 interrupted by SIGINT / SIGTERM (checkpoint_last.pt saved).
"""


def _metavar(setting: Setting) -> str:
    if isinstance(setting.kind, type) and issubclass(setting.kind, Enum):
        return "|".join(str(m.value) for m in setting.kind)
    if typing.get_origin(setting.kind) is list:
        return "'(A, B)'"
    return {int: "N", float: "X", bool: "true|false"}.get(setting.kind, "VALUE")


def _flag_rows(entry: Flag) -> list[tuple[str, str]]:
    """(``--flag VALUE``, ``what it sets``) rows of one fairseq flag."""
    rows = [
        (f"{entry.flag} {value}", " ".join(filter(None, sets)) or "(always)")
        for value, sets in entry.presets.items()
    ]
    if entry.key is None and entry.switch is not None:
        rows.append((entry.flag, "(always)"))
    elif entry.key and entry.switch is not None:
        rows.append((entry.flag, f"{entry.key}={entry.switch}"))
    elif entry.key:
        meta = _metavar(next(s for s in settings(TrainConfig) if s.key == entry.key))
        ours = "[A,B]" if meta.startswith("'(") else meta
        rows.append((f"{entry.flag} {meta}", f"{entry.key}={ours}"))
    elif entry.flag == "--eval-bleu-args":
        rows.append(
            (f"{entry.flag} JSON", "validate_bleu_beam=, _lenpen=, _max_len_a=, _max_len_b=")
        )
    return rows


def _columns(rows: Sequence[tuple[str, ...]]) -> str:
    """Rows as aligned columns, the last one left ragged."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = (
        "  " + "  ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)), r[-1]])
        for r in rows
    )
    return "".join(line.rstrip() + "\n" for line in lines)


def _setting_row(s: Setting) -> tuple[str, str, str, str]:
    """(key, type, default, help); an enum's choices go to the help, keeping the column narrow."""
    if isinstance(s.kind, type) and issubclass(s.kind, Enum):
        choices = "one of " + ", ".join(str(m.value) for m in s.kind)
        return s.key, "choice", s.default_text(), "; ".join(filter(None, [s.help, choices]))
    return s.key, s.type_name(), s.default_text(), s.help


def train_usage() -> str:
    """``nmt-train --help``: groups, every setting with type/default/help, the fairseq flags."""
    from nmt_preln.compose import group_options

    def shown(g: str) -> str:  # names starting with "_" are shared bases, not choices
        return ", ".join(o for o in group_options(g) if not o.rsplit("/", 1)[-1].startswith("_"))

    groups = ("arch", "data", "optim", "schedule", "hardware", "experiment")
    text = USAGE + "\nConfig groups (GROUP=OPTION):\n"
    text += "".join(
        textwrap.fill(f"{g}: {shown(g)}", 100, initial_indent="  ", subsequent_indent="      ")
        + "\n"
        for g in groups
    )
    text += "\nSettings (KEY  TYPE  DEFAULT  meaning; the +arch option replaces arch.* defaults):\n"
    text += _columns([_setting_row(s) for s in settings(TrainConfig)])
    text += (
        "\nfairseq-train flags (--flag VALUE or --flag=VALUE). Any setting is also --LAST-NAME "
        "VALUE\nwhen its last name is unique (--decay-epoch 8 is schedule.decay_epoch=8):\n"
    )
    rows = [("DATA", "data.path=DATA")] + [row for f in FLAGS for row in _flag_rows(f)]
    rows += [(alias, f"as {flag}") for alias, flag in ALIASES.items()]
    return text + _columns(rows) + "\n" + EXIT_STATUS


def _cell(text: str, *, code: bool = False) -> str:
    """Text for a markdown table cell (a code span keeps ``<``, plain text escapes it)."""
    return text.replace("|", "\\|") if code else text.replace("|", "\\|").replace("<", "&lt;")


def _train_table() -> list[str]:
    lines = ["| fairseq-train | nmt-train | notes |", "|---|---|---|"]
    lines.append("| `DATA` (positional) | `data.path=DATA` | relative to the current directory |")
    for entry in FLAGS:
        aliases = ", ".join(f"`{a}`" for a, flag in ALIASES.items() if flag == entry.flag)
        for i, (flag, sets) in enumerate(_flag_rows(entry)):
            note = "; ".join(filter(None, [entry.note, aliases and f"also {aliases}"]))
            note = _cell(note) if i == 0 else ""
            lines.append(f"| `{_cell(flag, code=True)}` | `{_cell(sets, code=True)}` | {note} |")
    return lines


def _command_table(cls: type, *, fairseq: frozenset[str], tool: str) -> list[str]:
    lines = [f"| nmt flag | {tool} | default | what it does |", "|---|---|---|---|"]
    for s in settings(cls):
        name = s.key.rsplit(".", 1)[-1]  # a nested group's field is a flag of its own name
        flag = name.upper() if name == "data" else "--" + name.replace("_", "-")
        same = "same" if name in fairseq else FAIRSEQ_SPELLING.get(name, "—")
        default = _cell(s.default_text(), code=True)
        lines.append(f"| `{flag}` | {same} | `{default}` | {_cell(s.help)} |")
    return lines


def write_readme(path: str) -> bool:
    """Replace the generated block of the README at ``path``; whether it changed.

    Raises:
        ValueError: the file has no generated block (no begin/end markers).
    """
    with open(path, encoding="utf-8") as f:
        text = f.read()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(f"{path}: no block between {README_BEGIN!r} and {README_END!r}")
    new = text[:begin] + readme_section() + text[end + len(README_END) + 1 :]
    if new != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
    return new != text


def readme_section() -> str:
    """The generated block of README's "Coming from fairseq" section, markers included."""
    lines = [README_BEGIN, "", "#### nmt-train", "", *_train_table(), ""]
    lines.append(
        "Any other setting is also accepted as `--LAST-NAME VALUE` when its last name is unique "
        "(`--decay-epoch 8` is `schedule.decay_epoch=8`); an unknown flag fails with the "
        "override to write."
    )
    for title, cls, known, tool in (
        ("nmt-generate", GenerateConfig, FAIRSEQ_GENERATE, "fairseq-generate / -interactive"),
        ("nmt-preprocess", PreprocessConfig, FAIRSEQ_PREPROCESS, "fairseq-preprocess"),
    ):
        lines += ["", f"#### {title}", "", *_command_table(cls, fairseq=known, tool=tool)]
    return "\n".join([*lines, "", README_END]) + "\n"
