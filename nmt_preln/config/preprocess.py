"""The settings of ``nmt-preprocess`` (flag names follow fairseq-preprocess) and their rules."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from omegaconf import MISSING

from nmt_preln.config.fields import cli_help, refuse_first


class Segmentation(StrEnum):
    sentencepiece = "sentencepiece"  # learn or reuse a SentencePiece model
    none = "none"  # the text is already segmented (e.g. fairseq's IWSLT14 "@@ " BPE)


class SpmModelType(StrEnum):
    bpe = "bpe"
    unigram = "unigram"


@dataclass
class PreprocessConfig:
    """``nmt-preprocess``; flag names follow fairseq-preprocess (``--source-lang`` ...)."""

    source_lang: str = field(default=MISSING, metadata=cli_help("source language suffix, e.g. de"))
    target_lang: str = field(default=MISSING, metadata=cli_help("target language suffix, e.g. en"))
    trainpref: str | None = field(
        default=None, metadata=cli_help("train file prefix (PREFIX.LANG)")
    )
    validpref: str | None = field(default=None, metadata=cli_help("comma-separated valid prefixes"))
    testpref: str | None = field(default=None, metadata=cli_help("comma-separated test prefixes"))
    destdir: str = field(default="data-bin", metadata=cli_help("output directory"))
    joined_dictionary: bool = field(default=False, metadata=cli_help("one dictionary for both"))
    srcdict: str | None = field(default=None, metadata=cli_help("reuse this source dictionary"))
    tgtdict: str | None = field(default=None, metadata=cli_help("reuse this target dictionary"))
    nwordssrc: int = field(default=-1, metadata=cli_help("source dictionary size limit, -1 none"))
    nwordstgt: int = field(default=-1, metadata=cli_help("target dictionary size limit, -1 none"))
    # fairseq's Dictionary.finalize keeps a symbol when count >= threshold (0 and 1 keep all).
    thresholdsrc: int = field(
        default=0, metadata=cli_help("map source words seen < N times to unk")
    )
    thresholdtgt: int = field(
        default=0, metadata=cli_help("map target words seen < N times to unk")
    )
    # SentencePiece training/encoding threads; 0 = every available core (fairseq's default is 1).
    workers: int = field(default=0, metadata=cli_help("threads, 0 = all cores"))
    segmentation: Segmentation = field(
        default=Segmentation.sentencepiece,
        metadata=cli_help("sentencepiece or none (pre-segmented)"),
    )
    spm_model: str | None = field(default=None, metadata=cli_help("reuse this SentencePiece model"))
    spm_vocab_size: int = field(default=8000, metadata=cli_help("SentencePiece vocabulary size"))
    spm_model_type: SpmModelType = field(
        default=SpmModelType.bpe, metadata=cli_help("bpe or unigram")
    )
    spm_character_coverage: float = field(default=1.0, metadata=cli_help("SentencePiece coverage"))
    spm_separate: bool = field(
        default=False, metadata=cli_help("one SentencePiece model per language")
    )
    min_len: int = field(
        default=1, metadata=cli_help("drop train pairs with a side shorter (tokens)")
    )
    max_len: int = field(
        default=250, metadata=cli_help("drop train pairs with a side longer (tokens)")
    )
    max_len_ratio: float = field(
        default=0.0, metadata=cli_help("drop train pairs past this ratio, 0 off")
    )
    overwrite: bool = field(
        default=False, metadata=cli_help("replace an existing different dataset")
    )

    def validate(self) -> None:
        """Refuse contradictory or out-of-range options before any file is read.

        Raises:
            UserError: one line naming the flags.
        """
        refuse_first(self._rules())

    def _rules(self) -> Iterator[tuple[bool, str]]:
        yield self.source_lang == self.target_lang, "--source-lang and --target-lang must differ"
        yield (
            not (self.trainpref or self.validpref or self.testpref),
            "nothing to do: give --trainpref, --validpref or --testpref",
        )
        yield self.spm_vocab_size <= 0, "--spm-vocab-size must be positive"
        yield (
            not 0 < self.spm_character_coverage <= 1,
            "--spm-character-coverage must be in (0, 1]",
        )
        yield self.min_len < 0 or self.max_len < self.min_len, "need 0 <= --min-len <= --max-len"
        yield (
            self.max_len_ratio < 0,
            "--max-len-ratio must be >= 0 (0 disables the ratio filter)",
        )
        yield self.workers < 0, "--workers must be >= 0 (0 uses every core)"
        yield (
            self.joined_dictionary and bool(self.srcdict) and bool(self.tgtdict),
            "cannot use both --srcdict and --tgtdict with --joined-dictionary",
        )
        yield (
            self.segmentation is Segmentation.none and bool(self.spm_model or self.spm_separate),
            "--spm-model and --spm-separate need --segmentation sentencepiece",
        )
        yield (
            bool(self.spm_model) and self.spm_separate,
            "--spm-model is one joint model: drop --spm-separate",
        )
        if self.trainpref:
            return  # the rest says what must be given instead of training data
        yield (
            self.joined_dictionary and not (self.srcdict or self.tgtdict),
            "without --trainpref, give the joined dictionary as --srcdict",
        )
        yield (
            not self.joined_dictionary and not (self.srcdict and self.tgtdict),
            "without --trainpref, give the dictionaries (--srcdict and --tgtdict)",
        )
        yield (
            self.segmentation is Segmentation.sentencepiece and not self.spm_model,
            "without --trainpref, give --spm-model (or use --segmentation none)",
        )
