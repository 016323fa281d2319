"""Word forms of the toy corpus: German inflection and the English phrases that match it.

The tables give determiner and adjective endings per case (nom, acc, dat) and gender (m f n, p for
plural); a weak masculine noun (``mw``: der Junge, den Jungen) takes its plural form outside the
nominative. :mod:`toy_lexicon` lists the words, :mod:`toy_corpus` builds sentences from them.
"""

from __future__ import annotations

from dataclasses import dataclass

# Determiner and adjective endings, indexed [case][gender], gender order m f n p.
GENDER_INDEX = {"m": 0, "mw": 0, "f": 1, "n": 2, "p": 3}
DEFINITE = {"nom": "der die das die", "acc": "den die das die", "dat": "dem der dem den"}
DER_ENDINGS = {"nom": "er e es e", "acc": "en e es e", "dat": "em er em en"}  # dieser
EIN_ENDINGS = {"nom": "_ e _ e", "acc": "en e _ e", "dat": "em er em en"}  # ein, kein, mein
WEAK_ADJ = {"nom": "e e e en", "acc": "en e e en", "dat": "en en en en"}  # after der, dieser
MIXED_ADJ = {"nom": "er e es en", "acc": "en e es en", "dat": "en en en en"}  # after ein-words
STRONG_ADJ = {"nom": "- - - e", "acc": "- - - e", "dat": "- - - en"}  # no article (plural only)

# German contracts a preposition with the definite article: "in dem Park" -> "im Park".
CONTRACTIONS = {
    ("in", "dem"): "im",
    ("in", "das"): "ins",
    ("an", "dem"): "am",
    ("bei", "dem"): "beim",
    ("zu", "dem"): "zum",
    ("zu", "der"): "zur",
}
# Present-tense paradigms that the regular rules do not produce (1sg 2sg 3sg 1pl 2pl 3pl).
PRESENT_TABLE = {
    "haben": "habe hast hat haben habt haben",
    "sein": "bin bist ist sind seid sind",
    "können": "kann kannst kann können könnt können",
    "müssen": "muss musst muss müssen müsst müssen",
    "wollen": "will willst will wollen wollt wollen",
    "wissen": "weiß weißt weiß wissen wisst wissen",
    "mögen": "mag magst mag mögen mögt mögen",
}


@dataclass(frozen=True)
class Noun:
    """A noun sense; ``gender`` is ``m f n`` or ``mw`` (weak masculine)."""

    gender: str
    de_sg: str
    de_pl: str | None
    en_sg: str
    en_pl: str | None
    classes: frozenset[str]
    loc: tuple[tuple[str, str], ...]  # (German preposition, English preposition)
    dirs: tuple[str, ...]


@dataclass(frozen=True)
class Adjective:
    predicative: str
    stem: str
    en: str
    classes: frozenset[str]


@dataclass(frozen=True)
class Verb:
    """A verb sense; ``prefix`` is the separable prefix ("an" in an|rufen) or ``""``."""

    prefix: str
    base: str  # infinitive without the separable prefix
    stem23: str | None  # 2nd/3rd person singular stem when irregular
    participle: str
    aux: str  # "haben" or "sein"
    en: tuple[str, str, str]  # base, 3rd person singular, past
    subject: str  # "P" person or "A" animate
    acc: frozenset[str]
    dat: frozenset[str]
    frame: frozenset[str]  # of "loc", "dir", "that"


@dataclass(frozen=True)
class NP:
    """A noun phrase; ``det`` is def, dem, indef, kein, poss, num or bare (no determiner)."""

    noun: Noun
    plural: bool
    det: str
    adj: Adjective | None = None
    det_words: tuple[str, str] = ("", "")  # the German and English word of poss and num


@dataclass(frozen=True)
class Pronoun:
    de: str
    en: str
    person: int  # 0..5 = 1sg 2sg 3sg 1pl 2pl 3pl


def person(subject: NP | Pronoun) -> int:
    """0..5 = 1sg 2sg 3sg 1pl 2pl 3pl."""
    if isinstance(subject, Pronoun):
        return subject.person
    return 5 if subject.plural else 2


def present(base: str, stem23: str | None, person: int) -> str:
    """German present tense; the ending gets an -e- after d/t or consonant+n (findet, öffnet)."""
    if base in PRESENT_TABLE:
        return PRESENT_TABLE[base].split()[person]
    stem = base[:-2]
    needs_e = stem[-1] in "dt" or (stem[-1] in "mn" and stem[-2] not in "aeiouäöülrhmn")
    if person in (3, 5):
        return base
    if person == 0:
        return stem + "e"
    if person == 4:
        return stem + ("et" if needs_e else "t")
    if stem23 is not None:  # irregular stems never take the -e-: du liest, er lädt
        stem, needs_e = stem23, False
    if person == 1:
        return stem + ("t" if stem[-1] in "sßzx" else "est" if needs_e else "st")
    return stem + ("et" if needs_e else "t")


def article(next_word: str) -> str:
    """English "a" or "an" before ``next_word`` (the lexicon avoids "a unit", "an hour")."""
    return "an" if next_word[0] in "aeiou" else "a"


def de_np(np: NP, case: str) -> list[str]:
    """German words of ``np`` in ``case`` (nom, acc, dat), with agreeing article and adjective."""
    g = 3 if np.plural else GENDER_INDEX[np.noun.gender]
    kind, word = np.det, np.det_words[0]
    det: str | None = None
    if kind == "def":
        det, endings = DEFINITE[case].split()[g], WEAK_ADJ
    elif kind == "dem":
        det, endings = "dies" + DER_ENDINGS[case].split()[g], WEAK_ADJ
    elif kind in ("indef", "kein", "poss"):
        stem = word if kind == "poss" else {"indef": "ein", "kein": "kein"}[kind]
        det = stem + EIN_ENDINGS[case].split()[g].strip("_")
        endings = WEAK_ADJ if np.plural else MIXED_ADJ
    else:  # a number or nothing: the adjective takes the strong endings
        det, endings = (word or None), STRONG_ADJ
    words = [det] if det else []
    if np.adj:
        words.append(np.adj.stem + endings[case].split()[g])
    if np.plural:
        noun = str(np.noun.de_pl)
        words.append(noun + "n" if case == "dat" and noun[-1] not in "ns" else noun)
    else:
        weak = np.noun.gender == "mw" and case != "nom"
        words.append(str(np.noun.de_pl) if weak else np.noun.de_sg)
    return words


def en_np(np: NP) -> list[str]:
    """English words of ``np``; ``kein`` only occurs negated: "keinen Ball" -> "not ... a ball"."""
    kind, en_word = np.det, np.det_words[1]
    words = ([np.adj.en] if np.adj else []) + [str(np.noun.en_pl if np.plural else np.noun.en_sg)]
    if kind == "def":
        return ["the", *words]
    if kind == "dem":
        return ["these" if np.plural else "this", *words]
    if kind in ("indef", "kein"):
        return ["any" if np.plural else article(words[0]), *words]
    return [en_word, *words] if en_word else words


def pp(prep: str, np: NP, case: str) -> list[str]:
    """German prepositional phrase, contracted where German contracts ("in dem" -> "im")."""
    words = de_np(np, case)
    if np.det == "def" and (prep, words[0]) in CONTRACTIONS:
        return [CONTRACTIONS[(prep, words[0])], *words[1:]]
    return [prep, *words]
