"""``nmt-preprocess``: raw parallel text -> a finished data directory (see docs/INTERNALS.md).

The pipeline: check options and every input file -> learn or load SentencePiece -> segment the
training text and clean it -> build or load the dictionaries -> binarize every split. Everything
is written into a hidden staging directory inside DEST and moved into place at the end, with
``manifest.json`` written last and atomically: a failure never leaves a directory that looks
finished.

Rerunning the exact same command (same options and input paths) replaces the dataset; a DEST
that holds anything else (another dataset, other files) is refused unless ``--overwrite``.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from nmt_preln.config import PreprocessConfig, Segmentation
from nmt_preln.data.binarize import (
    EncodedText,
    Segmenter,
    SpmSegmenter,
    Timings,
    WhitespaceSegmenter,
    binarize,
    build_dictionary,
    clean_mask,
    count_symbols,
    encode_file,
)
from nmt_preln.data.dataset import FORMAT_VERSION  # the readers' version: one number
from nmt_preln.data.destination import check_destination, fingerprint, publish, staging
from nmt_preln.data.dictionary import Dictionary
from nmt_preln.data.preprocess_report import PreprocessReport, SideReport, SplitReport
from nmt_preln.data.rawtext import parallel_line_count
from nmt_preln.data.tokenizer import SentencePieceTokenizer, train_sentencepiece
from nmt_preln.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class SplitPlan:
    """One split to binarize: its output name (train, valid, valid1, test ...) and inputs."""

    name: str
    prefix: str
    paths: dict[str, str]  # lang -> PREFIX.LANG
    lines: int


def preprocess(cfg: PreprocessConfig) -> PreprocessReport:
    """Run the whole pipeline and return its report (also written to ``DEST/preprocess.log``).

    ``cfg`` has passed ``cfg.validate()`` (nmt-preprocess checks it once, before this).

    Raises:
        UserError: missing or malformed inputs, or a DEST that must not be touched.
    """
    start, timings = time.perf_counter(), Timings()
    langs = [cfg.source_lang, cfg.target_lang]
    with timings.stage("check_inputs"):
        splits = plan_splits(cfg)
        given_dicts = _load_given_dictionaries(cfg)
        given_spm = _load_given_spm(cfg.spm_model)
    check_destination(cfg.destdir, fingerprint(cfg), overwrite=cfg.overwrite)
    with staging(cfg.destdir) as work:
        train = splits[0] if splits[0].name == "train" else None
        segmenters, spm_files, description = _segmenters(cfg, train, given_spm, work, timings)
        # Train is segmented first: its cleaned text decides the dictionaries.
        encoded = {"train": _encode_train(cfg, train, segmenters, timings)} if train else {}
        with timings.stage("dictionary"):
            train_texts = encoded["train"][0] if train else {}
            dicts = _dictionaries(cfg, given_dicts, train_texts, segmenters)
            del train_texts
        report = PreprocessReport(
            source_lang=cfg.source_lang,
            target_lang=cfg.target_lang,
            destdir=cfg.destdir,
            segmentation=description,
            dictionary_sizes={lang: len(dicts[lang]) for lang in langs},
            joined_dictionary=cfg.joined_dictionary,
        )
        for plan in splits:
            if plan.name in encoded:  # pop: train's arrays (the biggest) go once written
                texts, split_report = encoded.pop(plan.name)
            else:
                texts, split_report = _encode_eval(plan, segmenters, timings)
            _write_split(cfg, plan, texts, segmenters, dicts, split_report, work, timings)
            report.splits.append(split_report)
        for lang in langs:
            dicts[lang].save(os.path.join(work, f"dict.{lang}.txt"))
        report.timings = dict(timings.seconds)
        report.total_seconds = time.perf_counter() - start
        with open(os.path.join(work, "preprocess.log"), "w", encoding="utf-8") as f:
            f.write(report.format() + "\n")
        publish(work, cfg.destdir, _manifest(cfg, report, spm_files, dicts))
    return report


def plan_splits(cfg: PreprocessConfig) -> list[SplitPlan]:
    """Check every input pair (exists, UTF-8, no NUL, equal line counts) and name the splits.

    Several comma-separated valid/test prefixes become valid, valid1, valid2 ... (fairseq).
    """
    named: list[tuple[str, str]] = []
    if cfg.trainpref:
        named.append(("train", cfg.trainpref))
    for split, option in (("valid", cfg.validpref), ("test", cfg.testpref)):
        for k, prefix in enumerate(option.split(",") if option else []):
            if not prefix.strip():
                raise UserError(f"--{split}pref {option!r}: empty prefix in the list")
            named.append((split if k == 0 else f"{split}{k}", prefix.strip()))
    plans = []
    for name, prefix in named:
        paths = {lang: f"{prefix}.{lang}" for lang in (cfg.source_lang, cfg.target_lang)}
        lines = parallel_line_count(paths[cfg.source_lang], paths[cfg.target_lang])
        if lines == 0:
            raise UserError(f"{paths[cfg.source_lang]}: empty file ({name} split has no sentences)")
        plans.append(SplitPlan(name=name, prefix=prefix, paths=paths, lines=lines))
    return plans


def _load_given_dictionaries(cfg: PreprocessConfig) -> dict[str, Dictionary]:
    given = {}
    for lang, option, path in (
        (cfg.source_lang, "--srcdict", cfg.srcdict),
        (cfg.target_lang, "--tgtdict", cfg.tgtdict),
    ):
        if path:
            try:
                given[lang] = Dictionary.load(path)
            except UserError as e:
                raise UserError(f"{option} {e}") from None
    return given


def _load_given_spm(path: str | None) -> SentencePieceTokenizer | None:
    try:
        return SentencePieceTokenizer(path) if path else None
    except UserError as e:
        raise UserError(f"--spm-model {e}") from None


def _segmenters(
    cfg: PreprocessConfig,
    train: SplitPlan | None,
    given_spm: SentencePieceTokenizer | None,
    work: str,
    timings: Timings,
) -> tuple[dict[str, Segmenter], dict[str, str], str]:
    """Return (segmenter per language, SentencePiece file per language, a description)."""
    langs = [cfg.source_lang, cfg.target_lang]
    if cfg.segmentation is Segmentation.none:
        return {lang: WhitespaceSegmenter() for lang in langs}, {}, "none (pre-segmented text)"
    if given_spm is not None:
        with open(os.path.join(work, "spm.model"), "wb") as f:
            f.write(given_spm.model_bytes())
        segmenter = SpmSegmenter(given_spm, num_threads=cfg.workers)
        description = f"sentencepiece (given model {cfg.spm_model}, {given_spm.vocab_size} pieces)"
        return dict.fromkeys(langs, segmenter), dict.fromkeys(langs, "spm.model"), description
    assert train is not None  # PreprocessConfig.validate demands --trainpref or --spm-model
    kind = "separate" if cfg.spm_separate else "joint"
    log.info("learning %s SentencePiece model(s) on %s", kind, train.prefix)
    groups = {f"spm.{lang}": [lang] for lang in langs} if cfg.spm_separate else {"spm": langs}
    segmenters: dict[str, Segmenter] = {}
    files = {}
    with timings.stage("spm_train"):
        for name, group in groups.items():
            model = train_sentencepiece(
                inputs=[train.paths[lang] for lang in group],
                model_prefix=os.path.join(work, name),
                vocab_size=cfg.spm_vocab_size,
                model_type=cfg.spm_model_type.value,
                character_coverage=cfg.spm_character_coverage,
                num_threads=cfg.workers,
            )
            os.remove(os.path.join(work, name + ".vocab"))  # a human-readable copy; not needed
            segmenter = SpmSegmenter(SentencePieceTokenizer(model), num_threads=cfg.workers)
            segmenters.update(dict.fromkeys(group, segmenter))
            files.update(dict.fromkeys(group, os.path.basename(model)))
    description = (
        f"sentencepiece ({kind} {cfg.spm_model_type.value}, {cfg.spm_vocab_size} pieces, "
        f"learned on {train.prefix})"
    )
    return segmenters, files, description


def _encode_train(
    cfg: PreprocessConfig,
    train: SplitPlan,
    segmenters: dict[str, Segmenter],
    timings: Timings,
) -> tuple[dict[str, EncodedText], SplitReport]:
    """Segment and clean the training pair; refuse a training set that ends up empty."""
    start = time.perf_counter()
    src, tgt = cfg.source_lang, cfg.target_lang
    log.info("segmenting %s", train.prefix)
    texts = {
        lang: encode_file(train.paths[lang], segmenters[lang], timings=timings)
        for lang in (src, tgt)
    }
    with timings.stage("clean"):
        keep, dropped = clean_mask(
            texts[src].sizes,
            texts[tgt].sizes,
            min_len=cfg.min_len,
            max_len=cfg.max_len,
            max_len_ratio=cfg.max_len_ratio,
        )
        texts = {lang: text.select(keep) for lang, text in texts.items()}
    kept = int(keep.sum())
    if kept == 0:
        reasons = ", ".join(f"{r} {n}" for r, n in dropped.items())
        raise UserError(
            f"empty training set: all {train.lines} pairs of {train.prefix}.{{{src},{tgt}}} "
            f"were dropped ({reasons}); check the files and --min-len/--max-len/--max-len-ratio"
        )
    report = SplitReport(
        name="train",
        lines=train.lines,
        kept=kept,
        dropped=dropped,
        empty_kept=0,
        sides=[],
        seconds=time.perf_counter() - start,
    )
    return texts, report


def _encode_eval(
    plan: SplitPlan, segmenters: dict[str, Segmenter], timings: Timings
) -> tuple[dict[str, EncodedText], SplitReport]:
    """Segment a valid/test pair; nothing is dropped (scores must cover the whole set)."""
    start = time.perf_counter()
    texts = {
        lang: encode_file(path, segmenters[lang], timings=timings)
        for lang, path in plan.paths.items()
    }
    sizes = list(texts.values())
    empty = int(((sizes[0].sizes == 0) | (sizes[1].sizes == 0)).sum())
    report = SplitReport(
        name=plan.name,
        lines=plan.lines,
        kept=plan.lines,
        dropped={},
        empty_kept=empty,
        sides=[],
        seconds=time.perf_counter() - start,
    )
    return texts, report


def _dictionaries(
    cfg: PreprocessConfig,
    given: dict[str, Dictionary],
    train_texts: dict[str, EncodedText],
    segmenters: dict[str, Segmenter],
) -> dict[str, Dictionary]:
    """Load or build the dictionaries (fairseq's rules for --joined-dictionary)."""
    src, tgt = cfg.source_lang, cfg.target_lang
    counts = {
        lang: count_symbols(text, segmenters[lang].pieces()) for lang, text in train_texts.items()
    }
    if cfg.joined_dictionary:
        joint = given.get(src) or given.get(tgt)
        if joint is None:
            joint = build_dictionary(
                counts[src] + counts[tgt], threshold=cfg.thresholdsrc, nwords=cfg.nwordssrc
            )
        return {src: joint, tgt: joint}
    dicts = {}
    for lang, threshold, nwords in (
        (src, cfg.thresholdsrc, cfg.nwordssrc),
        (tgt, cfg.thresholdtgt, cfg.nwordstgt),
    ):
        dicts[lang] = given.get(lang) or build_dictionary(
            counts[lang], threshold=threshold, nwords=nwords
        )
    return dicts


def _write_split(
    cfg: PreprocessConfig,
    plan: SplitPlan,
    texts: dict[str, EncodedText],
    segmenters: dict[str, Segmenter],
    dicts: dict[str, Dictionary],
    report: SplitReport,
    work: str,
    timings: Timings,
) -> None:
    """Binarize both sides of a split into ``work`` and fill in the report's per-side numbers."""
    start = time.perf_counter()
    with timings.stage("binarize"):
        for lang, text in texts.items():
            prefix = os.path.join(work, f"{plan.name}.{cfg.source_lang}-{cfg.target_lang}.{lang}")
            unk = binarize(text, segmenters[lang].pieces(), dicts[lang], prefix=prefix)
            report.sides.append(
                SideReport(lang=lang, path=plan.paths[lang], tokens=len(text.ids), unk=unk)
            )
    report.seconds += time.perf_counter() - start
    log.info("binarized %s (%d pairs)", plan.name, report.kept)


def _manifest(
    cfg: PreprocessConfig,
    report: PreprocessReport,
    spm_files: dict[str, str],
    dicts: dict[str, Dictionary],
) -> dict[str, object]:
    langs = [cfg.source_lang, cfg.target_lang]
    return {
        "format_version": FORMAT_VERSION,
        "source_lang": cfg.source_lang,
        "target_lang": cfg.target_lang,
        "segmentation": cfg.segmentation.value,
        "spm_models": spm_files,
        "joined_dictionary": cfg.joined_dictionary,
        "splits": {split.name: split.kept for split in report.splits},
        "dictionaries": {lang: f"dict.{lang}.txt" for lang in langs},
        "vocab_sizes": {lang: len(dicts[lang]) for lang in langs},
        "created_by": "nmt-preprocess",
        "config": fingerprint(cfg),
    }
