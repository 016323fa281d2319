"""The settings of ``nmt-generate``: range checks, combinations, and what the text options mean.

:func:`validate` runs before anything is loaded and rejects every setting that is out of range,
that fairseq would refuse, or that would be accepted and then ignored (an ignored flag is a bug:
``--gen-subset`` with ``--input``, ``--prefix-size`` without references, ...). Each problem is
one line naming the option.

:func:`post_process` is fairseq 0.12's ``post_process`` of ``--post-process``/``--remove-bpe``
(the same option there): it turns the space-joined pieces of an S-/T-/H- line into text.
:func:`load_align_dict` reads the ``--replace-unk`` dictionary (fairseq's format: ``src tgt``
per line).
"""

from __future__ import annotations

import math

from nmt_preln.config import GenerateConfig, OutputFormat
from nmt_preln.data.segmenter import POST_PROCESS
from nmt_preln.errors import UserError
from nmt_preln.search.search_rules import check_search_options

SEED_MAX = 2**64 - 1  # torch.Generator.manual_seed's range (negative seeds are refused)


def post_process_symbol(cfg: GenerateConfig) -> str | None:
    """The one post-process setting of ``--post-process`` / ``--remove-bpe`` (fairseq aliases)."""
    return cfg.post_process if cfg.post_process is not None else cfg.remove_bpe


def load_align_dict(path: str) -> dict[str, str]:
    """Read a ``--replace-unk`` dictionary: one ``source_token target_token`` pair per line.

    Raises:
        UserError: the file is unreadable, or a line does not hold two tokens (naming it).
    """
    table: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                cols = line.split()
                if not cols:
                    continue
                if len(cols) != 2:
                    raise UserError(
                        f"--replace-unk {path}: line {number}: expected 'source target', "
                        f"got {len(cols)} fields"
                    )
                table[cols[0]] = cols[1]
    except OSError as e:
        raise UserError(f"--replace-unk {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise UserError(f"--replace-unk {path}: not UTF-8 text ({e.reason})") from e
    return table


def _range_checks(cfg: GenerateConfig) -> list[tuple[bool, str]]:
    search = cfg.search
    return [
        (search.beam >= 1, f"--beam must be >= 1, got {search.beam}"),
        (
            1 <= search.nbest <= search.beam,
            f"--nbest must be in [1, --beam={search.beam}], got {search.nbest}",
        ),
        (cfg.batch_size >= 1, f"--batch-size must be >= 1, got {cfg.batch_size}"),
        (cfg.max_tokens >= 0, f"--max-tokens must be >= 0, got {cfg.max_tokens}"),
        (cfg.buffer_size >= 1, f"--buffer-size must be >= 1, got {cfg.buffer_size}"),
        (search.min_len >= 0, f"--min-len must be >= 0, got {search.min_len}"),
        (search.max_len_a >= 0 and search.max_len_b >= 0, "--max-len-a/--max-len-b must be >= 0"),
        (search.temperature > 0, f"--temperature must be > 0, got {search.temperature}"),
        (search.sampling_topp <= 1.0, f"--sampling-topp must be <= 1, got {search.sampling_topp}"),
        (search.no_repeat_ngram_size >= 0, "--no-repeat-ngram-size must be >= 0"),
        (0 <= search.seed <= SEED_MAX, f"--seed must be in [0, 2**64-1], got {search.seed}"),
        (search.prefix_size >= 0, f"--prefix-size must be >= 0, got {search.prefix_size}"),
        (
            search.diverse_beam_groups == -1 or search.diverse_beam_groups >= 1,
            f"--diverse-beam-groups must be -1 (off) or >= 1, got {search.diverse_beam_groups}",
        ),
        (search.max_search_memory_mb >= 0, "--max-search-memory-mb must be >= 0 (0: automatic)"),
    ]


def _choice_checks(cfg: GenerateConfig) -> list[tuple[bool, str]]:
    search = cfg.search

    def one_of(flag: str, value: str | None, choices: tuple[str, ...]) -> tuple[bool, str]:
        names = ", ".join(repr(c) for c in choices)
        return value is None or value in choices, f"--{flag} must be one of {names}, got {value!r}"

    checks = [
        one_of("constraints", search.constraints, ("ordered", "unordered")),
        one_of("print-alignment", cfg.print_alignment, ("hard", "soft")),
        one_of("post-process", cfg.post_process, POST_PROCESS),
        one_of("remove-bpe", cfg.remove_bpe, POST_PROCESS),
    ]
    # fairseq spells one option two ways; two different values cannot both be meant.
    same = {"subword_nmt": "@@ "}
    pp, rb = cfg.post_process, cfg.remove_bpe
    checks.append(
        (
            pp is None or rb is None or same.get(pp, pp) == same.get(rb, rb),
            f"--post-process {pp!r} and --remove-bpe {rb!r} are the same option; give one",
        )
    )
    return checks


def _combination_checks(cfg: GenerateConfig) -> list[tuple[bool, str]]:
    search = cfg.search
    raw = cfg.input is not None
    groups = search.diverse_beam_groups if search.diverse_beam_groups > 0 else 0
    return [
        (not (raw and cfg.gen_subset is not None), "--gen-subset selects a binarized split; "
         "it cannot be combined with --input (which translates raw text)"),
        (not (raw and cfg.score_reference), "--score-reference needs the references of a "
         "binarized split (--gen-subset); raw --input has none"),
        (not (raw and search.prefix_size), "--prefix-size takes the prefix from the references of "
         "a binarized split; raw --input has none (fairseq-interactive ignores it)"),
        (not (search.constraints and not raw), "--constraints reads them from the tab-separated "
         "columns of --input lines (fairseq-interactive's format); a binarized split has none"),
        (not (cfg.score_reference and (search.sampling or search.constraints or groups or
              search.prefix_size)), "--score-reference does no search: it cannot be combined with "
         "--sampling, --constraints, --diverse-beam-groups or --prefix-size"),
        (not (cfg.score_reference and search.nbest > 1), "--score-reference gives one hypothesis "
         "(the reference); --nbest must be 1"),
        (not (search.constraints and (search.sampling or groups)), "--constraints needs plain beam "
         "search: not with --sampling or --diverse-beam-groups"),
        (not (groups and search.sampling),
         "--diverse-beam-groups and --sampling exclude each other"),
        (not (cfg.print_alignment and cfg.output_format == OutputFormat.plain), "--print-alignment "
         "writes A- lines, which --output-format plain does not have"),
        (not groups or search.beam % groups == 0, f"--beam {search.beam} must be a multiple of "
         f"--diverse-beam-groups {groups}"),
        (groups > 0 or search.diverse_beam_strength == 0.5, "--diverse-beam-strength needs "
         "--diverse-beam-groups"),
        (search.sampling or (search.sampling_topk <= 0 and search.sampling_topp <= 0),
         "--sampling-topk/--sampling-topp need --sampling"),
    ]  # fmt: skip


def validate(cfg: GenerateConfig) -> None:
    """Reject inconsistent settings before anything is loaded (one line naming the option).

    Raises:
        UserError: the first problem found.
    """
    for ok, message in _range_checks(cfg) + _choice_checks(cfg):
        if not ok:
            raise UserError(message)
    floats = ("lenpen", "unkpen", "temperature", "max_len_a", "sampling_topp",
              "diverse_beam_strength")  # fmt: skip
    for flag in floats:
        if not math.isfinite(getattr(cfg.search, flag)):  # NaN passes every comparison above
            raise UserError(f"--{flag.replace('_', '-')} must be a finite number")
    for ok, message in _combination_checks(cfg):
        if not ok:
            raise UserError(message)
    check_search_options(cfg.search)  # the search's own rules (a no-op after the checks above)
