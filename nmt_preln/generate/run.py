"""``nmt-generate`` as a library call: read, translate chunk by chunk, write, score, summarize.

A binarized split is translated as one chunk and printed sorted by id; raw input (``--input
FILE`` or ``--input -``) is translated ``--buffer-size`` lines at a time (from a pipe or a
terminal: the lines that have arrived) and each chunk is written and flushed as soon as it is
done, so the command streams in a pipe. A failed write (a full disk, ``> /dev/full``) is one
:class:`OutputError` line.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TextIO

import torch

from nmt_preln.config import GenerateConfig, OutputFormat
from nmt_preln.data.dataset import LanguagePairDataset, load_manifest
from nmt_preln.data.segmenter import Segmenter, post_process
from nmt_preln.data.tokenizer import SentencePieceTokenizer
from nmt_preln.devices import resolve_device
from nmt_preln.errors import UserError
from nmt_preln.generate.inputs import TargetSide, Warn, encode_lines, read_line_chunks
from nmt_preln.generate.options import load_align_dict, post_process_symbol
from nmt_preln.generate.output import (
    Translation,
    alignment_text,
    format_translations,
    hypothesis_pieces,
)
from nmt_preln.generate.scoring import CorpusScores, score_corpus
from nmt_preln.search.beam_search import Hypothesis
from nmt_preln.search.source_items import SourceItem
from nmt_preln.search.translator import (
    Ensemble,
    Translator,
    check_dictionaries,
    load_ensemble,
)

__all__ = ["OutputError", "generate"]


class OutputError(UserError):
    """The translations could not be written (full disk, closed terminal, ...)."""


class _Output:
    """The output stream; a failed write or flush becomes one :class:`OutputError` line."""

    def __init__(self, stream: TextIO, *, name: str) -> None:
        self.stream = stream
        self.name = name

    def write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            raise  # the reader left (`| head`): the CLI exits quietly
        except OSError as e:
            raise OutputError(f"cannot write to {self.name}: {e.strerror or e}") from e


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
        self.symbol = post_process_symbol(cfg)
        self.src_seg = Segmenter(self._tokenizer(manifest, self.source_lang) if segmented else None)
        # D- lines: SentencePiece decoding, or (pre-segmented data) fairseq's post-processing.
        self.tgt_seg = Segmenter(
            self._tokenizer(manifest, self.target_lang) if segmented else None,
            remove_bpe=self.symbol,
        )
        # fairseq: None = no replacement, {} = copy the aligned source token.
        self.align_dict = (
            None
            if cfg.replace_unk is None
            else (load_align_dict(cfg.replace_unk) if cfg.replace_unk else {})
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

    def post_process(self, pieces: str) -> str:
        """What S-/T-/C-/H- lines show: the pieces, or ``--post-process``'s text."""
        return post_process(pieces, self.symbol)

    def translations(
        self, items: list[SourceItem], hyps: list[list[Hypothesis]]
    ) -> list[Translation]:
        src_dict, tgt_dict = self.ensemble.src_dict, self.ensemble.tgt_dict
        translations = []
        for item, h in zip(items, hyps, strict=True):
            src = item.src.tolist()
            # Copies under --replace-unk come from the pieces as read (not <unk> when the
            # source dictionary lacks them); a binarized split only has its dictionary's.
            src_pieces = item.src_pieces or [src_dict[t] for t in src[:-1]]
            texts = [
                hypothesis_pieces(
                    hyp, tgt_dict=tgt_dict, src_pieces=src_pieces, align_dict=self.align_dict
                )
                for hyp in h
            ]
            alignments = [
                alignment_text(hyp, src_tokens=src, kind=self.cfg.print_alignment, eos=tgt_dict.eos)
                for hyp in h
                if self.cfg.print_alignment
            ]
            translations.append(
                Translation(
                    id=item.id,
                    src_pieces=src_dict.string(src),
                    ref_pieces=None
                    if item.ref is None
                    else tgt_dict.string(item.ref.tolist(), escape_unk=True),
                    hypotheses=h,
                    pieces=texts,
                    alignments=alignments,
                    constraints=item.constraint_pieces,
                )
            )
        return translations


def _split_items(session: _Session, *, subset: str, warn: Warn) -> Iterator[list[SourceItem]]:
    cfg, limit = session.cfg, session.ensemble.max_positions
    dataset = LanguagePairDataset(
        cfg.data, subset, source_lang=session.source_lang, target_lang=session.target_lang
    )
    if dataset.tgt is None and (cfg.score_reference or cfg.search.prefix_size):
        flag = "--score-reference" if cfg.score_reference else "--prefix-size"
        raise UserError(f"{flag}: the {subset} split of {cfg.data} has no target side")
    items = []
    for i in range(len(dataset)):
        src = dataset.src[i]
        if len(src) > limit:
            warn(
                f"{subset} sentence {i}: {len(src)} tokens exceed the model's "
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
    target = None
    if session.cfg.search.constraints:
        target = TargetSide(segmenter=session.tgt_seg, dictionary=session.ensemble.tgt_dict)
    for lines in read_line_chunks(stream, chunk_size=session.cfg.buffer_size, name=name, warn=warn):
        yield encode_lines(
            lines,
            first_id=first_id,
            segmenter=session.src_seg,
            src_dict=session.ensemble.src_dict,
            max_positions=session.ensemble.max_positions,
            name=name,
            warn=warn,
            constraints=target,
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
        cfg: the command's settings, checked by ``cfg.validate()`` (nmt-generate does it
            once, before anything is loaded).
        stdin: the byte stream read by ``--input -`` (default: ``sys.stdin.buffer``).
        stdout: where translations (and scores, in the fairseq format) go without
            ``--results-path`` (default: ``sys.stdout``).
        stderr: warnings and the summary line (default: ``sys.stderr``).

    Returns:
        The corpus scores when a split with references was translated, else None.

    Raises:
        UserError: missing/corrupt checkpoint or data, mismatched dictionaries, input lines.
    """
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr

    def warn(message: str) -> None:
        print(f"nmt-generate: warning: {message}", file=err, flush=True)

    # A setting: checked before any file is read.
    device = resolve_device(cfg.device, option="--device cuda")
    manifest = load_manifest(cfg.data)
    if device.type == "cpu" and cfg.precision.value != "fp32":
        warn(f"--precision {cfg.precision.value} is for CUDA; decoding in fp32 on the CPU")
    ensemble = load_ensemble(cfg.path, device=device)
    langs = _languages(cfg, manifest, ensemble)
    check_dictionaries(ensemble, data_dir=cfg.data, source_lang=langs[0], target_lang=langs[1])
    session = _Session(cfg, ensemble=ensemble, manifest=manifest, langs=langs)
    translator = make_translator(cfg, ensemble, device=device, warn=warn)
    subset, chunks = _chunks(session, stdin=stdin, warn=warn)
    totals = _Totals()
    start = time.perf_counter()
    with _open_output(cfg, subset=subset, stdout=stdout) as stream:
        out = _Output(stream, name=_output_name(cfg, subset=subset))
        for items in chunks:
            _write_chunk(session, translator, items, out=out, totals=totals)
        elapsed = time.perf_counter() - start
        scores = _score(session, totals, subset=subset)
        if scores is not None:
            text = "\n".join(scores.lines) + "\n"
            if cfg.output_format == OutputFormat.fairseq:
                out.write(text)
            else:
                print(text, end="", file=err, flush=True)
    rate = max(elapsed, 1e-9)
    print(
        f"Translated {totals.sentences} sentences ({totals.tokens} tokens) in {elapsed:.1f}s "
        f"({totals.sentences / rate:.2f} sentences/s, {totals.tokens / rate:.2f} tokens/s)",
        file=err,
        flush=True,
    )
    return scores


def make_translator(
    cfg: GenerateConfig,
    ensemble: Ensemble,
    *,
    device: torch.device,
    use_cache: bool = True,
    warn: Warn | None = None,
) -> Translator:
    """The translator of ``nmt-generate``'s settings: ``cfg.search`` and the batching options."""
    return Translator(
        ensemble,
        search=cfg.search,
        device=device,
        batch_size=cfg.batch_size,
        max_tokens=cfg.max_tokens,
        precision=cfg.precision,
        score_reference=cfg.score_reference,
        need_alignment=cfg.print_alignment is not None or cfg.replace_unk is not None,
        use_cache=use_cache,
        warn=warn,
    )


def _chunks(
    session: _Session, *, stdin: BinaryIO, warn: Warn
) -> tuple[str, Iterator[list[SourceItem]]]:
    """The name of what is translated (a split, or "interactive") and its chunks."""
    cfg = session.cfg
    if cfg.input is None:
        subset = cfg.gen_subset or "test"
        return subset, _split_items(session, subset=subset, warn=warn)
    if cfg.input == "-":
        return "interactive", _raw_items(session, stdin, name="<stdin>", warn=warn)
    return "interactive", _raw_file_items(session, cfg.input, warn=warn)


def _raw_file_items(session: _Session, path: str, *, warn: Warn) -> Iterator[list[SourceItem]]:
    try:
        stream = open(path, "rb")  # noqa: SIM115 (closed when the generator finishes)
    except OSError as e:
        raise UserError(f"--input {path}: {e.strerror}") from e
    with stream:
        yield from _raw_items(session, stream, name=path, warn=warn)


def _output_name(cfg: GenerateConfig, *, subset: str) -> str:
    if cfg.results_path is None:
        return "<stdout>"
    return os.path.join(cfg.results_path, f"generate-{subset}.txt")


def _write_chunk(
    session: _Session,
    translator: Translator,
    items: list[SourceItem],
    *,
    out: _Output,
    totals: _Totals,
) -> None:
    cfg = session.cfg
    translations = session.translations(items, translator.translate(items))
    if not cfg.quiet:
        out.write(
            format_translations(
                translations,
                plain=cfg.output_format == OutputFormat.plain,
                detokenize=session.tgt_seg.decode,
                post_process=session.post_process,
            )
        )
    for t in translations:
        totals.sentences += 1
        best = t.pieces[0] if t.hypotheses else ""
        totals.tokens += len(t.hypotheses[0].tokens) if t.hypotheses else 0
        if t.ref_pieces is not None:
            # fairseq's BLEU4 line scores what H-/T- show; sacreBLEU the detokenized text.
            totals.hyp_pieces.append(session.post_process(best))
            totals.ref_pieces.append(session.post_process(t.ref_pieces))
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
        beam=session.cfg.search.beam,
    )
