"""``nmt-generate`` as a library call: read, translate chunk by chunk, write, score, summarize.

A binarized split is translated as one chunk and printed sorted by id; raw input (``--input
FILE`` or ``--input -``) is translated ``--buffer-size`` lines at a time and each chunk is
written and flushed as soon as it is done, so the command streams in a pipe.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TextIO

from nmt_preln.config import GenerateConfig, OutputFormat
from nmt_preln.data.dataset import LanguagePairDataset, load_manifest
from nmt_preln.data.tokenizer import SentencePieceTokenizer
from nmt_preln.errors import UserError
from nmt_preln.generate.beam_search import Hypothesis
from nmt_preln.generate.inputs import (
    Segmenter,
    SourceItem,
    Warn,
    encode_lines,
    read_line_chunks,
)
from nmt_preln.generate.output import Translation, format_translations
from nmt_preln.generate.scoring import CorpusScores, score_corpus
from nmt_preln.generate.translator import (
    Ensemble,
    Translator,
    check_dictionaries,
    load_ensemble,
    resolve_device,
)


def validate(cfg: GenerateConfig) -> None:
    """Reject inconsistent settings before anything is loaded (one line naming the option)."""
    checks = [
        (cfg.beam >= 1, f"--beam must be >= 1, got {cfg.beam}"),
        (1 <= cfg.nbest <= cfg.beam, f"--nbest must be in [1, --beam={cfg.beam}], got {cfg.nbest}"),
        (cfg.batch_size >= 1, f"--batch-size must be >= 1, got {cfg.batch_size}"),
        (cfg.max_tokens >= 0, f"--max-tokens must be >= 0, got {cfg.max_tokens}"),
        (cfg.buffer_size >= 1, f"--buffer-size must be >= 1, got {cfg.buffer_size}"),
        (cfg.min_len >= 0, f"--min-len must be >= 0, got {cfg.min_len}"),
        (cfg.max_len_a >= 0 and cfg.max_len_b >= 0, "--max-len-a/--max-len-b must be >= 0"),
        (cfg.temperature > 0, f"--temperature must be > 0, got {cfg.temperature}"),
        (cfg.sampling_topp <= 1.0, f"--sampling-topp must be <= 1, got {cfg.sampling_topp}"),
        (cfg.no_repeat_ngram_size >= 0, "--no-repeat-ngram-size must be >= 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)
    for flag in ("lenpen", "unkpen", "temperature", "max_len_a", "sampling_topp"):
        if not math.isfinite(getattr(cfg, flag)):  # NaN passes every comparison above
            raise UserError(f"--{flag.replace('_', '-')} must be a finite number")
    if not cfg.sampling and (cfg.sampling_topk > 0 or cfg.sampling_topp > 0):
        raise UserError("--sampling-topk/--sampling-topp need --sampling")


@dataclass
class _Totals:
    sentences: int = 0
    tokens: int = 0
    hypotheses: list[str] = field(default_factory=list)  # detokenized, for scoring
    references: list[str] = field(default_factory=list)
    hyp_pieces: list[str] = field(default_factory=list)
    ref_pieces: list[str] = field(default_factory=list)


class _Session:
    """The loaded models and text processing shared by every chunk."""

    def __init__(
        self,
        cfg: GenerateConfig,
        *,
        ensemble: Ensemble,
        manifest: dict[str, Any],
        langs: tuple[str, str],
    ) -> None:
        self.cfg = cfg
        self.ensemble = ensemble
        self.source_lang, self.target_lang = langs
        segmented = manifest.get("segmentation", "sentencepiece") != "none"
        self.src_seg = Segmenter(self._tokenizer(manifest, self.source_lang) if segmented else None)
        self.tgt_seg = Segmenter(
            self._tokenizer(manifest, self.target_lang) if segmented else None,
            remove_bpe=cfg.remove_bpe,
        )

    def _tokenizer(self, manifest: dict[str, Any], lang: str) -> SentencePieceTokenizer:
        """The checkpoint's own SentencePiece model, else the data directory's."""
        stored = (self.ensemble.state.get("spm_models") or {}).get(lang)
        if stored:
            return SentencePieceTokenizer.from_bytes(
                stored, name=f"{self.ensemble.state['path']} ({lang})"
            )
        filename = (manifest.get("spm_models") or {}).get(lang)
        if not filename:
            raise UserError(f"{self.cfg.data}/manifest.json: no SentencePiece model for '{lang}'")
        return SentencePieceTokenizer(os.path.join(self.cfg.data, filename))

    def hyp_pieces(self, hyp: Hypothesis) -> str:
        return self.ensemble.tgt_dict.string(hyp.tokens)

    def translations(
        self, items: list[SourceItem], hyps: list[list[Hypothesis]]
    ) -> list[Translation]:
        src_dict, tgt_dict = self.ensemble.src_dict, self.ensemble.tgt_dict
        return [
            Translation(
                id=item.id,
                src_pieces=src_dict.string(item.src.tolist()),
                ref_pieces=None if item.ref is None else tgt_dict.string(item.ref.tolist()),
                hypotheses=h,
            )
            for item, h in zip(items, hyps, strict=True)
        ]


def _split_items(session: _Session, *, warn: Warn) -> Iterator[list[SourceItem]]:
    cfg, limit = session.cfg, session.ensemble.max_positions
    dataset = LanguagePairDataset(
        cfg.data, cfg.gen_subset, source_lang=session.source_lang, target_lang=session.target_lang
    )
    items = []
    for i in range(len(dataset)):
        src = dataset.src[i]
        if len(src) > limit:
            warn(
                f"{cfg.gen_subset} sentence {i}: {len(src)} tokens exceed the model's "
                f"{limit} positions, truncated"
            )
            src = src[:limit].copy()
            src[-1] = session.ensemble.src_dict.eos
        items.append(SourceItem(id=i, src=src, ref=None if dataset.tgt is None else dataset.tgt[i]))
    yield items


def _raw_items(
    session: _Session, stream: BinaryIO, *, name: str, warn: Warn
) -> Iterator[list[SourceItem]]:
    first_id = 0
    for lines in read_line_chunks(stream, chunk_size=session.cfg.buffer_size, name=name, warn=warn):
        yield encode_lines(
            lines,
            first_id=first_id,
            segmenter=session.src_seg,
            src_dict=session.ensemble.src_dict,
            max_positions=session.ensemble.max_positions,
            name=name,
            warn=warn,
        )
        first_id += len(lines)


def _open_output(
    cfg: GenerateConfig, *, subset: str, stdout: TextIO
) -> contextlib.AbstractContextManager[TextIO]:
    if cfg.results_path is None:
        return contextlib.nullcontext(stdout)
    try:
        os.makedirs(cfg.results_path, exist_ok=True)
        return open(os.path.join(cfg.results_path, f"generate-{subset}.txt"), "w", encoding="utf-8")
    except OSError as e:
        raise UserError(f"--results-path {cfg.results_path}: {e.strerror}") from e


def _languages(
    cfg: GenerateConfig, manifest: dict[str, Any], ensemble: Ensemble
) -> tuple[str, str]:
    # The checkpoint knows its direction (a model may be trained en->de on a de-en directory).
    source = cfg.source_lang or ensemble.state.get("source_lang") or manifest.get("source_lang")
    target = cfg.target_lang or ensemble.state.get("target_lang") or manifest.get("target_lang")
    if not source or not target:
        raise UserError(f"{cfg.data}/manifest.json: no languages; pass --source-lang/--target-lang")
    # A joined dictionary fits both directions, so only the checkpoint can tell a reversed pair.
    trained = (ensemble.state.get("source_lang"), ensemble.state.get("target_lang"))
    if None not in trained and trained != (source, target):
        raise UserError(
            f"--path {ensemble.state['path']} translates {trained[0]}->{trained[1]}, not "
            f"{source}->{target} (--source-lang/--target-lang)"
        )
    return source, target


def generate(
    cfg: GenerateConfig,
    *,
    stdin: BinaryIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> CorpusScores | None:
    """Run ``nmt-generate``: translate a split or raw input, write the lines, score.

    Args:
        cfg: the command's settings.
        stdin: the byte stream read by ``--input -`` (default: ``sys.stdin.buffer``).
        stdout: where translations (and scores, in the fairseq format) go without
            ``--results-path`` (default: ``sys.stdout``).
        stderr: warnings and the summary line (default: ``sys.stderr``).

    Returns:
        The corpus scores when a split with references was translated, else None.

    Raises:
        UserError: bad settings, missing/corrupt checkpoint or data, mismatched dictionaries.
    """
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr

    def warn(message: str) -> None:
        print(f"nmt-generate: warning: {message}", file=err, flush=True)

    validate(cfg)
    device = resolve_device(cfg.device)  # a setting: checked before any file is read
    manifest = load_manifest(cfg.data)
    if device.type == "cpu" and cfg.precision.value != "fp32":
        warn(f"--precision {cfg.precision.value} is for CUDA; decoding in fp32 on the CPU")
    ensemble = load_ensemble(cfg.path, device=device)
    langs = _languages(cfg, manifest, ensemble)
    check_dictionaries(ensemble, data_dir=cfg.data, source_lang=langs[0], target_lang=langs[1])
    session = _Session(cfg, ensemble=ensemble, manifest=manifest, langs=langs)
    translator = Translator(ensemble, cfg=cfg, device=device)
    if cfg.input is None:
        subset, chunks = cfg.gen_subset, _split_items(session, warn=warn)
    elif cfg.input == "-":
        subset, chunks = "interactive", _raw_items(session, stdin, name="<stdin>", warn=warn)
    else:
        subset, chunks = "interactive", _raw_file_items(session, cfg.input, warn=warn)
    totals = _Totals()
    start = time.perf_counter()
    with _open_output(cfg, subset=subset, stdout=stdout) as out:
        for items in chunks:
            _write_chunk(session, translator, items, out=out, totals=totals)
        elapsed = time.perf_counter() - start
        scores = _score(session, totals, subset=subset)
        if scores is not None:
            report = out if cfg.output_format == OutputFormat.fairseq else err
            print("\n".join(scores.lines), file=report, flush=True)
    rate = max(elapsed, 1e-9)
    print(
        f"Translated {totals.sentences} sentences ({totals.tokens} tokens) in {elapsed:.1f}s "
        f"({totals.sentences / rate:.2f} sentences/s, {totals.tokens / rate:.2f} tokens/s)",
        file=err,
        flush=True,
    )
    return scores


def _raw_file_items(session: _Session, path: str, *, warn: Warn) -> Iterator[list[SourceItem]]:
    try:
        stream = open(path, "rb")  # noqa: SIM115 (closed when the generator finishes)
    except OSError as e:
        raise UserError(f"--input {path}: {e.strerror}") from e
    with stream:
        yield from _raw_items(session, stream, name=path, warn=warn)


def _write_chunk(
    session: _Session,
    translator: Translator,
    items: list[SourceItem],
    *,
    out: TextIO,
    totals: _Totals,
) -> None:
    cfg = session.cfg
    translations = session.translations(items, translator.translate(items))
    if not cfg.quiet:
        out.write(
            format_translations(
                translations,
                plain=cfg.output_format == OutputFormat.plain,
                hypothesis_pieces=session.hyp_pieces,
                detokenize=session.tgt_seg.decode,
            )
        )
        out.flush()
    for t in translations:
        totals.sentences += 1
        best = session.hyp_pieces(t.hypotheses[0]) if t.hypotheses else ""
        totals.tokens += len(t.hypotheses[0].tokens) if t.hypotheses else 0
        if t.ref_pieces is not None:
            totals.hyp_pieces.append(best)
            totals.ref_pieces.append(t.ref_pieces)
            totals.hypotheses.append(session.tgt_seg.decode(best))
            totals.references.append(session.tgt_seg.decode(t.ref_pieces))


def _score(session: _Session, totals: _Totals, *, subset: str) -> CorpusScores | None:
    if not totals.references:
        return None
    return score_corpus(
        hypotheses=totals.hypotheses,
        references=totals.references,
        hypothesis_pieces=totals.hyp_pieces,
        reference_pieces=totals.ref_pieces,
        subset=subset,
        beam=session.cfg.beam,
    )
