"""What ``nmt-preprocess`` did per split: printed, and saved as ``DEST/preprocess.log``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SideReport:
    """One language of one split."""

    lang: str
    path: str
    tokens: int  # after segmentation, without </s>
    unk: int  # tokens mapped to <unk>

    @property
    def unk_rate(self) -> float:
        return self.unk / self.tokens if self.tokens else 0.0


@dataclass
class SplitReport:
    """One split: how many pairs were read, kept, dropped (by reason), and the time it took."""

    name: str
    lines: int
    kept: int
    dropped: dict[str, int]  # reason -> pairs; empty for valid/test (never filtered)
    empty_kept: int  # pairs with an empty side kept in valid/test
    sides: list[SideReport]
    seconds: float

    def format(self) -> list[str]:
        if self.dropped:
            reasons = ", ".join(f"{r} {n}" for r, n in self.dropped.items())
            head = (
                f"[{self.name}] {self.lines} pairs: {self.kept} kept, "
                f"{self.lines - self.kept} dropped ({reasons})"
            )
        else:
            head = f"[{self.name}] {self.lines} pairs kept (not filtered; {self.empty_kept} "
            head += "with an empty side)"
        lines = [f"{head}; {self.seconds:.2f}s"]
        for side in self.sides:
            lines.append(
                f"  {side.lang}: {side.path}: {side.tokens} tokens, "
                f"{side.unk} <unk> ({100 * side.unk_rate:.2f}%)"
            )
        return lines


@dataclass
class PreprocessReport:
    """Everything the report prints; ``timings`` are seconds per pipeline stage."""

    source_lang: str
    target_lang: str
    destdir: str
    segmentation: str  # a human description, e.g. "sentencepiece (joint bpe, 8000 pieces, learned)"
    dictionary_sizes: dict[str, int]
    joined_dictionary: bool
    splits: list[SplitReport] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    total_seconds: float = 0.0

    def format(self) -> str:
        """The report as text, one fact per line."""
        sizes = ", ".join(f"{lang} {n}" for lang, n in self.dictionary_sizes.items())
        joined = " (joined)" if self.joined_dictionary else ""
        lines = [
            f"nmt-preprocess {self.source_lang}-{self.target_lang} -> {self.destdir}",
            f"segmentation: {self.segmentation}",
            f"dictionaries: {sizes} symbols{joined}",
        ]
        for split in self.splits:
            lines += split.format()
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in self.timings.items())
        sentences = sum(s.lines for s in self.splits)
        rate = sentences / self.total_seconds if self.total_seconds > 0 else 0.0
        lines.append(f"stages: {stages}")
        lines.append(f"total {self.total_seconds:.2f}s ({sentences} pairs, {rate:.0f} pairs/s)")
        return "\n".join(lines)
