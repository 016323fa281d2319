"""The settings of ``nmt-generate`` (flag names follow fairseq-generate and fairseq-interactive).

:class:`SearchConfig` is all that beam search, greedy search and sampling take;
:class:`GenerateConfig` adds what to translate and how to print it. Their ``validate`` methods
reject, before anything is loaded, every setting that is out of range, that fairseq would
refuse, or that would be accepted and then ignored (an ignored flag is a bug: ``--gen-subset``
with ``--input``, ``--prefix-size`` without references, ...). Each problem is one line naming
the flag.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from omegaconf import MISSING

from nmt_preln.config.fields import cli_help, refuse_first
from nmt_preln.config.hardware import Device, Precision
from nmt_preln.data.segmenter import POST_PROCESS

SEED_MAX = 2**64 - 1  # torch.Generator.manual_seed's range (negative seeds are refused)
CONSTRAINT_MODES = ("ordered", "unordered")
# Floats that NaN would slip past every comparison of the rules.
_FINITE = ("lenpen", "unkpen", "temperature", "max_len_a", "sampling_topp", "diverse_beam_strength")


def _one_of(flag: str, value: str | None, choices: tuple[str, ...]) -> tuple[bool, str]:
    names = ", ".join(repr(c) for c in choices)
    return (
        value is not None and value not in choices,
        f"--{flag} must be one of {names}, got {value!r}",
    )


class OutputFormat(StrEnum):
    fairseq = "fairseq"  # S-/T-/H-/D-/P- lines, scores in base 2
    plain = "plain"  # one detokenized translation per input line, in input order


@dataclass
class SearchConfig:
    """What beam search, greedy search and sampling take (``nmt-generate``'s search flags).

    Validation BLEU fills one from ``validate_bleu_*``; nothing else of the command is needed.
    """

    beam: int = field(default=5, metadata=cli_help("beam size; 1 is greedy"))
    nbest: int = field(default=1, metadata=cli_help("hypotheses to print per sentence"))
    lenpen: float = field(default=1.0, metadata=cli_help("length penalty: score / length^lenpen"))
    max_len_a: float = field(default=0.0, metadata=cli_help("max length = a * src_len + b"))
    max_len_b: int = field(default=200, metadata=cli_help("max length = a * src_len + b"))
    min_len: int = field(default=1, metadata=cli_help("minimum target length"))
    unkpen: float = field(default=0.0, metadata=cli_help("penalty subtracted from <unk> scores"))
    no_repeat_ngram_size: int = field(default=0, metadata=cli_help("block repeated n-grams, 0 off"))
    sampling: bool = field(default=False, metadata=cli_help("sample instead of beam search"))
    sampling_topk: int = field(default=-1, metadata=cli_help("sample from the k best, -1 off"))
    sampling_topp: float = field(default=-1.0, metadata=cli_help("nucleus sampling mass, -1 off"))
    # Divides the logits in beam search too, as fairseq's --temperature does.
    temperature: float = field(default=1.0, metadata=cli_help("softmax temperature (logits / T)"))
    seed: int = field(default=1, metadata=cli_help("random seed (sampling), 0 to 2**64-1"))
    prefix_size: int = field(
        default=0, metadata=cli_help("force the first N reference tokens as the target prefix")
    )
    constraints: str | None = field(
        default=None,
        metadata=cli_help(
            "lexically constrained decoding (ordered or unordered); constraints follow the "
            "source line, tab-separated",
            const="ordered",
        ),
    )
    diverse_beam_groups: int = field(
        default=-1, metadata=cli_help("diverse beam search: number of groups, -1 off")
    )
    diverse_beam_strength: float = field(
        default=0.5, metadata=cli_help("diverse beam search: penalty for tokens of earlier groups")
    )
    # Bounds beam x batch x length x vocabulary before decoding: batches are shrunk to fit and
    # a sentence that alone does not fit is refused, instead of the allocator failing.
    max_search_memory_mb: int = field(
        default=0,
        metadata=cli_help("memory for the search's tensors in MiB; 0: 3/4 of the free memory"),
    )

    def validate(self) -> None:
        """Refuse search settings out of range or that cannot work together.

        As in fairseq, ``--sampling`` and ``--diverse-beam-groups`` exclude each other and the
        beam must split into equal groups; fairseq silently ignores ``--constraints`` next to
        either of them, here that is an error too.

        Raises:
            UserError: one line naming the flags.
        """
        refuse_first(self._rules())

    def _rules(self) -> Iterator[tuple[bool, str]]:
        groups = self.diverse_beam_groups
        yield self.beam < 1, f"--beam must be >= 1, got {self.beam}"
        yield (
            not 1 <= self.nbest <= self.beam,
            f"--nbest must be in [1, --beam={self.beam}], got {self.nbest}",
        )
        yield self.min_len < 0, f"--min-len must be >= 0, got {self.min_len}"
        yield (
            not (self.max_len_a >= 0 and self.max_len_b >= 0),  # NaN fails here, as it should
            "--max-len-a/--max-len-b must be >= 0",
        )
        yield not self.temperature > 0, f"--temperature must be > 0, got {self.temperature}"
        yield (
            not self.sampling_topp <= 1.0,
            f"--sampling-topp must be <= 1, got {self.sampling_topp}",
        )
        yield self.no_repeat_ngram_size < 0, "--no-repeat-ngram-size must be >= 0"
        yield not 0 <= self.seed <= SEED_MAX, f"--seed must be in [0, 2**64-1], got {self.seed}"
        yield self.prefix_size < 0, f"--prefix-size must be >= 0, got {self.prefix_size}"
        yield (
            groups != -1 and groups < 1,
            f"--diverse-beam-groups must be -1 (off) or >= 1, got {groups}",
        )
        yield self.max_search_memory_mb < 0, "--max-search-memory-mb must be >= 0 (0: automatic)"
        yield _one_of("constraints", self.constraints, CONSTRAINT_MODES)
        for name in _FINITE:
            yield (
                not math.isfinite(getattr(self, name)),
                f"--{name.replace('_', '-')} must be a finite number",
            )
        grouped = groups > 0
        yield (
            bool(self.constraints) and (self.sampling or grouped),
            "--constraints needs plain beam search: not with --sampling or --diverse-beam-groups",
        )
        yield grouped and self.sampling, "--diverse-beam-groups and --sampling exclude each other"
        yield (
            grouped and self.beam % groups != 0,
            f"--beam {self.beam} must be a multiple of --diverse-beam-groups {groups}",
        )
        yield (
            not grouped and self.diverse_beam_strength != 0.5,
            "--diverse-beam-strength needs --diverse-beam-groups",
        )
        yield (
            not self.sampling and (self.sampling_topk > 0 or self.sampling_topp > 0),
            "--sampling-topk/--sampling-topp need --sampling",
        )


@dataclass
class GenerateConfig:
    """``nmt-generate``; flag names follow fairseq-generate and fairseq-interactive."""

    data: str = field(
        default=MISSING,
        metadata=cli_help("data directory of nmt-preprocess (or nmt-import fairseq-data)"),
    )
    path: str = field(
        default=MISSING, metadata=cli_help("checkpoint(s), colon-separated = ensemble")
    )
    # None = "test"; an explicit split together with --input is refused (it would be ignored).
    gen_subset: str | None = field(
        default=None, metadata=cli_help("binarized split to translate (default: test)")
    )
    input: str | None = field(default=None, metadata=cli_help("raw text file, or - for stdin"))
    source_lang: str | None = field(default=None, metadata=cli_help("default: from the data dir"))
    target_lang: str | None = field(default=None, metadata=cli_help("default: from the data dir"))
    # beam, lenpen, sampling, ... (flags of their own: --beam, --lenpen ...)
    search: SearchConfig = field(default_factory=SearchConfig)
    batch_size: int = field(default=128, metadata=cli_help("maximum sentences per batch"))
    max_tokens: int = field(default=0, metadata=cli_help("maximum source tokens per batch, 0 off"))
    buffer_size: int = field(default=256, metadata=cli_help("stdin lines translated per chunk"))
    output_format: OutputFormat = field(
        default=OutputFormat.fairseq, metadata=cli_help("fairseq lines or plain translations")
    )
    results_path: str | None = field(default=None, metadata=cli_help("write output to this dir"))
    quiet: bool = field(default=False, metadata=cli_help("print only the scores"))
    # fairseq's alias of --post-process (the same option): giving both with different values
    # is refused.
    remove_bpe: str | None = field(
        default=None, metadata=cli_help("the same as --post-process (fairseq's alias)", const="@@ ")
    )
    device: Device = field(default=Device.auto, metadata=cli_help("auto, cpu or cuda"))
    precision: Precision = field(default=Precision.fp32, metadata=cli_help("fp32, bf16 or fp16"))
    # fairseq-generate's options for scoring, forcing and inspecting translations. A field whose
    # metadata has "const" takes an optional value (argparse nargs="?"), as fairseq's flag does.
    score_reference: bool = field(
        default=False, metadata=cli_help("score the reference translations instead of decoding")
    )
    # fairseq 0.12's --print-alignment [hard|soft]; "hard" without a value.
    print_alignment: str | None = field(
        default=None,
        metadata=cli_help(
            "print A- lines: hard = srcpos-tgtpos pairs, soft = each target token's attention "
            "over the source",
            const="hard",
        ),
    )
    replace_unk: str | None = field(
        default=None,
        metadata=cli_help(
            "replace <unk> by the aligned source token, or its entry in this alignment "
            "dictionary file",
            const="",
        ),
    )
    post_process: str | None = field(
        default=None,
        metadata=cli_help(
            "post-process S-/T-/H- text as fairseq does: sentencepiece, subword_nmt, @@ , "
            "@@, wordpiece, letter, silence, _EOW or none",
            const="subword_nmt",
        ),
    )

    def validate(self) -> None:
        """Reject inconsistent settings before anything is loaded (one line naming the flag).

        Raises:
            UserError: the first problem found.
        """
        refuse_first(self._own_rules())
        self.search.validate()
        refuse_first(self._combination_rules())

    def _own_rules(self) -> Iterator[tuple[bool, str]]:
        yield self.batch_size < 1, f"--batch-size must be >= 1, got {self.batch_size}"
        yield self.max_tokens < 0, f"--max-tokens must be >= 0, got {self.max_tokens}"
        yield self.buffer_size < 1, f"--buffer-size must be >= 1, got {self.buffer_size}"
        yield _one_of("print-alignment", self.print_alignment, ("hard", "soft"))
        yield _one_of("post-process", self.post_process, POST_PROCESS)
        yield _one_of("remove-bpe", self.remove_bpe, POST_PROCESS)
        # fairseq spells one option two ways; two different values cannot both be meant.
        same = {"subword_nmt": "@@ "}
        pp, rb = self.post_process, self.remove_bpe
        yield (
            pp is not None and rb is not None and same.get(pp, pp) != same.get(rb, rb),
            f"--post-process {pp!r} and --remove-bpe {rb!r} are the same option; give one",
        )

    def _combination_rules(self) -> Iterator[tuple[bool, str]]:
        s = self.search
        raw = self.input is not None
        searching = s.sampling or bool(s.constraints) or s.diverse_beam_groups > 0 or s.prefix_size
        yield (
            raw and self.gen_subset is not None,
            (
                "--gen-subset selects a binarized split; it cannot be combined with --input (which "
                "translates raw text)"
            ),
        )
        yield (
            raw and self.score_reference,
            (
                "--score-reference needs the references of a binarized split (--gen-subset); raw "
                "--input has none"
            ),
        )
        yield (
            raw and s.prefix_size > 0,
            (
                "--prefix-size takes the prefix from the references of a binarized split; raw "
                "--input has none (fairseq-interactive ignores it)"
            ),
        )
        yield (
            bool(s.constraints) and not raw,
            (
                "--constraints reads them from the tab-separated columns of --input lines "
                "(fairseq-interactive's format); a binarized split has none"
            ),
        )
        yield (
            self.score_reference and bool(searching),
            (
                "--score-reference does no search: it cannot be combined with --sampling, "
                "--constraints, --diverse-beam-groups or --prefix-size"
            ),
        )
        yield (
            self.score_reference and s.nbest > 1,
            ("--score-reference gives one hypothesis (the reference); --nbest must be 1"),
        )
        yield (
            bool(self.print_alignment) and self.output_format == OutputFormat.plain,
            ("--print-alignment writes A- lines, which --output-format plain does not have"),
        )
