"""The symbol <-> index map of one language, in fairseq's ``dict.txt`` format.

Indices 0..3 are the specials ``<s>``, ``<pad>``, ``</s>``, ``<unk>`` (fairseq's order); they are
implied by every ``dict.txt`` and never written to it. The file holds one ``symbol count`` line
per remaining symbol, most frequent first, optionally followed by the flag
``#fairseq:overwrite`` (fairseq uses it to let a file redefine a special).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence

from nmt_preln.errors import UserError

_OVERWRITE_FLAG = "#fairseq:overwrite"


class Dictionary:
    """A vocabulary with fairseq's special symbols and file format.

    Attributes:
        symbols: the symbol of each index.
        count: how often each symbol was seen (1 for the specials, 0 for padding symbols).
    """

    bos = 0
    pad = 1
    eos = 2
    unk = 3
    bos_word = "<s>"
    pad_word = "<pad>"
    eos_word = "</s>"
    unk_word = "<unk>"
    nspecial = 4

    def __init__(self) -> None:
        self.symbols: list[str] = []
        self.count: list[int] = []
        self.indices: dict[str, int] = {}
        for word in (self.bos_word, self.pad_word, self.eos_word, self.unk_word):
            self.add_symbol(word)

    def __len__(self) -> int:
        return len(self.symbols)

    def __getitem__(self, index: int) -> str:
        return self.symbols[index]

    def __contains__(self, symbol: str) -> bool:
        return symbol in self.indices

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dictionary) and self.symbols == other.symbols

    def index(self, symbol: str) -> int:
        """Return the index of ``symbol``, or :attr:`unk` when it is not in the dictionary."""
        return self.indices.get(symbol, self.unk)

    def add_symbol(self, symbol: str, n: int = 1, *, overwrite: bool = False) -> int:
        """Add ``n`` occurrences of ``symbol`` and return its index (fairseq's semantics)."""
        if symbol in self.indices and not overwrite:
            idx = self.indices[symbol]
            self.count[idx] += n
            return idx
        idx = len(self.symbols)
        self.indices[symbol] = idx
        self.symbols.append(symbol)
        self.count.append(n)
        return idx

    def encode(self, tokens: Iterable[str], *, append_eos: bool = True) -> list[int]:
        """Map tokens to indices (unknown ones to :attr:`unk`), then append ``</s>``."""
        ids = [self.index(t) for t in tokens]
        if append_eos:
            ids.append(self.eos)
        return ids

    def string(
        self, ids: Sequence[int], *, strip_special: bool = True, escape_unk: bool = False
    ) -> str:
        """Join the symbols of ``ids`` with spaces; ``<s>``, ``<pad>``, ``</s>`` are dropped
        when ``strip_special`` (``<unk>`` always stays visible). ``escape_unk`` writes ``<unk>``
        as ``<<unk>>``, as fairseq-generate does for references, so that an unknown reference
        word never matches an unknown hypothesis word in BLEU."""
        skip = {self.bos, self.pad, self.eos} if strip_special else set()
        unk = f"<{self.symbols[self.unk]}>" if escape_unk else self.symbols[self.unk]
        return " ".join(
            unk if int(i) == self.unk else self.symbols[int(i)] for i in ids if int(i) not in skip
        )

    def finalize(self, *, threshold: int = 0, nwords: int = -1, padding_factor: int = 8) -> None:
        """Sort by frequency, drop rare symbols, pad the size to a multiple (fairseq's rules).

        Symbols are ordered by decreasing count, ties alphabetically. A symbol is kept while
        ``count >= threshold`` and the size including the specials stays ``<= nwords``
        (``nwords <= 0``: no limit). Then ``madeupword0000``, ``madeupword0001``, ... with count 0
        are appended until ``len(self) % padding_factor == 0`` (which keeps embedding matrices
        friendly to tensor cores).
        """
        if nwords <= 0:
            nwords = len(self)
        specials = self.symbols[: self.nspecial]
        new_symbols, new_count = list(specials), self.count[: self.nspecial]
        # Counter.most_common sorts stably, so inserting alphabetically breaks count ties by name.
        pairs = zip(self.symbols[self.nspecial :], self.count[self.nspecial :], strict=True)
        counts = Counter(dict(sorted(pairs)))
        for symbol, n in counts.most_common(max(nwords - self.nspecial, 0)):
            if n < threshold:
                break
            new_symbols.append(symbol)
            new_count.append(n)
        self.symbols, self.count = new_symbols, new_count
        self.indices = {s: i for i, s in enumerate(self.symbols)}
        self.pad_to_multiple(padding_factor)

    def pad_to_multiple(self, padding_factor: int) -> None:
        """Append ``madeupwordNNNN`` symbols until the size is a multiple of ``padding_factor``."""
        i = 0
        while padding_factor > 1 and len(self) % padding_factor != 0:
            self.add_symbol(f"madeupword{i:04d}", n=0)
            i += 1

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``symbol count`` lines for every non-special symbol (fairseq's dict.txt)."""
        seen = set(self.symbols[: self.nspecial])
        with open(path, "w", encoding="utf-8") as f:
            pairs = zip(self.symbols[self.nspecial :], self.count[self.nspecial :], strict=True)
            for symbol, n in pairs:
                # A symbol loaded twice (fairseq's overwrite flag) keeps the flag, or load()
                # would refuse the file this writes as holding a duplicate.
                flag = f" {_OVERWRITE_FLAG}" if symbol in seen else ""
                seen.add(symbol)
                f.write(f"{symbol} {n}{flag}\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Dictionary:
        """Read a fairseq dict.txt; a missing or malformed file raises a one-line UserError."""
        try:
            with open(path, "rb") as f:
                raw_lines = f.read().split(b"\n")
        except FileNotFoundError:
            raise UserError(f"{path}: dictionary file not found") from None
        except OSError as e:
            raise UserError(f"{path}: cannot read dictionary: {e.strerror}") from None
        if raw_lines and raw_lines[-1] == b"":
            raw_lines.pop()
        d = cls()
        for lineno, raw in enumerate(raw_lines, 1):
            d._add_file_line(raw, where=f"{path}: line {lineno}")
        return d

    def _add_file_line(self, raw: bytes, *, where: str) -> None:
        try:
            line = raw.decode("utf-8").rstrip()
        except UnicodeDecodeError:
            raise UserError(f"{where}: invalid UTF-8 in dictionary") from None
        overwrite = False
        if line.endswith(" " + _OVERWRITE_FLAG):
            overwrite = True
            line = line[: -len(_OVERWRITE_FLAG) - 1]
        symbol, _, field = line.rpartition(" ")
        if not symbol or not (field.isascii() and field.isdigit()):
            raise UserError(f"{where}: malformed dictionary line, expected '<symbol> <count>'")
        if symbol in self.indices and not overwrite:
            raise UserError(f"{where}: duplicate symbol {symbol!r} in dictionary")
        self.add_symbol(symbol, int(field), overwrite=overwrite)

    @classmethod
    def from_symbols(cls, symbols: list[str]) -> Dictionary:
        """Rebuild a dictionary from its exact symbol list (as stored in checkpoints)."""
        d = cls()
        if symbols[: cls.nspecial] != d.symbols:
            raise UserError(f"dictionary symbols must start with {d.symbols}, got {symbols[:4]}")
        for symbol in symbols[cls.nspecial :]:
            if symbol in d.indices:
                raise UserError(f"duplicate symbol {symbol!r} in dictionary symbol list")
            d.add_symbol(symbol, n=0)
        return d


def symbol_difference(ours: Sequence[str], theirs: Sequence[str]) -> str | None:
    """None when equal, else a short description: the sizes or the first differing symbol."""
    if len(ours) != len(theirs):
        return f"{len(ours)} vs {len(theirs)} symbols"
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if a != b:
            return f"symbol {i} is {a!r} vs {b!r}"
    return None
