"""A tiny synthetic parallel corpus for the data-layer tests (generated, never real data).

A uniquely named module (not conftest) so that tests can import it without clashing with
other directories' conftest modules.
"""

from __future__ import annotations

import random
from pathlib import Path

# German-ish and English-ish words with non-ASCII letters, so UTF-8 handling is exercised.
LEXICON = (  # de:en word pairs; each English sentence is the word-by-word translation
    "haus:house katze:cat hund:dog baum:tree straße:street grün:green blau:blue schön:nice "
    "über:over fährt:drives läuft:runs der:the die:the das:the ein:a eine:an"
)
PAIRS = [pair.split(":") for pair in LEXICON.split()]
DE = [de for de, _ in PAIRS]
EN = [en for _, en in PAIRS]


def parallel_lines(n: int, *, seed: int = 0, max_words: int = 8) -> tuple[list[str], list[str]]:
    """``n`` aligned sentence pairs; the English side is the word-by-word translation."""
    rng = random.Random(seed)
    de, en = [], []
    for _ in range(n):
        ids = [rng.randrange(len(DE)) for _ in range(rng.randint(1, max_words))]
        de.append(" ".join(DE[i] for i in ids))
        en.append(" ".join(EN[i] for i in ids))
    return de, en


def write_pair(prefix: Path, de: list[str], en: list[str]) -> str:
    """Write ``PREFIX.de`` and ``PREFIX.en`` (one sentence per line) and return the prefix."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{prefix}.de").write_text("".join(line + "\n" for line in de), encoding="utf-8")
    Path(f"{prefix}.en").write_text("".join(line + "\n" for line in en), encoding="utf-8")
    return str(prefix)
