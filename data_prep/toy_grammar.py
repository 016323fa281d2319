"""The grammar of the toy corpus: random clauses and their German and English renderings.

One call of :func:`sentence` draws a main clause (verb-second), optionally joined with a
subordinate (verb-final) or coordinated clause, and renders it in both languages; see
:mod:`nmt_preln.data_prep.toy_corpus` for what the corpus covers and how it is written.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, replace

from nmt_preln.data_prep import toy_lexicon as lex
from nmt_preln.data_prep.toy_morphology import (
    NP,
    Adjective,
    Noun,
    Pronoun,
    Verb,
    de_np,
    en_np,
    person,
    pp,
    present,
)

MODAL_TENSES = ("können", "müssen", "wollen")
_PRESENTISH = ("pres", "pres", "pres", *MODAL_TENSES)
_COPULA_TENSES = ("pres", "pres", "perf", "können", "müssen")  # "will müde sein" is odd
_CLASSES = sorted({c for n in lex.ALL_NOUNS for c in n.classes})
_BY_CLASS = {c: [n for n in lex.ALL_NOUNS if c in n.classes] for c in _CLASSES}
_LOC_NOUNS = [n for n in lex.ALL_NOUNS if n.loc]
_DIR_NOUNS = [n for n in lex.ALL_NOUNS if n.dirs]
_THAT_VERBS = [v for v in lex.ALL_VERBS if "that" in v.frame]
_VERBS = [v for v in lex.ALL_VERBS if "that" not in v.frame]


@dataclass(frozen=True)
class Clause:
    """One clause; ``verb`` None is a copula with the predicate adjective ``pred``."""

    subject: NP | Pronoun
    verb: Verb | None
    tense: str  # pres, perf, or a modal infinitive (können, müssen, wollen)
    negated: bool = False
    dat: NP | None = None
    acc: NP | None = None
    pred: Adjective | None = None
    place: tuple[list[str], list[str]] | None = None  # a prepositional phrase (German, English)
    time: tuple[str, str] | None = None
    freq: tuple[str, str] | None = None


# ---------------------------------------------------------------- noun phrases


@functools.cache
def _adjectives_for(classes: frozenset[str]) -> tuple[Adjective, ...]:
    return tuple(a for a in lex.ALL_ADJECTIVES if "any" in a.classes or a.classes & classes)


def _adjective_for(rng: random.Random, classes: frozenset[str]) -> Adjective | None:
    fits = _adjectives_for(classes)
    return rng.choice(fits) if fits else None


def _np(rng: random.Random, noun: Noun, *, negated: bool = False) -> NP:
    """A random noun phrase; under negation an indefinite becomes kein-, a number definite."""
    r = rng.random()
    if noun.de_pl is None:  # mass noun: singular, with a definite-like determiner
        det = "def" if r < 0.6 else "dem" if r < 0.75 else "poss"
    else:
        kinds = ["def", "indef", "dem", "poss", "num", "bare"]
        det = rng.choices(kinds, weights=[40, 22, 8, 10, 12, 8])[0]
    words = ("", "")
    if det in ("poss", "num"):
        words = rng.choice(lex.POSSESSIVE_PAIRS if det == "poss" else lex.NUMBER_PAIRS)
    plural = det in ("num", "bare") or (det in ("def", "dem", "poss") and r < 0.2)
    plural = plural and noun.de_pl is not None
    if negated and det in ("indef", "bare"):
        det = "kein"
    elif negated and det == "num":
        det, words = "def", ("", "")
    adj = _adjective_for(rng, noun.classes) if rng.random() < 0.3 else None
    return NP(noun, plural, det, adj, words)


def _noun_of(rng: random.Random, classes: frozenset[str]) -> Noun:
    return rng.choice(_BY_CLASS[rng.choice(sorted(classes))])


def _subject(rng: random.Random, kind: str) -> NP | Pronoun:
    if rng.random() < 0.25:
        i = rng.randrange(len(lex.PRONOUN_PAIRS))
        de, en = lex.PRONOUN_PAIRS[i]
        return Pronoun(de, en, lex.PRONOUN_PERSON[i])
    classes = {"P": {"person"}, "A": {"person", "animal"}}.get(kind, set(_CLASSES))
    return _np(rng, _noun_of(rng, frozenset(classes)))


# ---------------------------------------------------------------- prepositional phrases


def _place_np(rng: random.Random, noun: Noun) -> NP:
    adj = _adjective_for(rng, noun.classes | {"place"}) if rng.random() < 0.2 else None
    return NP(noun, False, "def", adj)


def _location(rng: random.Random) -> tuple[list[str], list[str]]:
    noun = rng.choice(_LOC_NOUNS)
    prep, en_prep = rng.choice(noun.loc)
    np = _place_np(rng, noun)
    return pp(prep, np, "dat"), [en_prep, *en_np(np)]


def _destination(rng: random.Random) -> tuple[list[str], list[str]]:
    if rng.random() < 0.3:
        city, en_city = rng.choice(lex.CITY_PAIRS)
        return ["nach", city], ["to", en_city]
    noun = rng.choice(_DIR_NOUNS)
    prep, case, en_prep = lex.DIR_PREPS[rng.choice(noun.dirs)]
    np = _place_np(rng, noun)
    return pp(prep, np, case), [en_prep, *en_np(np)]


# ---------------------------------------------------------------- clauses


def _tense(rng: random.Random, *, modal: bool = True) -> str:
    r = rng.random()
    if r < 0.5 or (not modal and r < 0.7):
        return "pres"
    return "perf" if r < 0.75 or not modal else rng.choice(MODAL_TENSES)


def _adverbs(rng: random.Random, clause: Clause) -> Clause:
    r = rng.random()
    if r < 0.25:
        code = {"pres": "p", "perf": "f"}.get(clause.tense, "m")
        times = [(de, en) for de, en, tenses in lex.TIME_TRIPLES if code in tenses]
        return replace(clause, time=rng.choice(times))
    if r < 0.35 and not clause.negated:
        return replace(clause, freq=rng.choice(lex.FREQ_PAIRS))
    return clause


def _clause(
    rng: random.Random, *, matrix: bool = False, tenses: tuple[str, ...] | None = None
) -> Clause:
    """A random clause.

    Args:
        rng: the corpus's random generator.
        matrix: pick a verb that takes a dass-clause (glauben, sagen ...).
        tenses: choose among these (a clause attached to a perfect one stays in the perfect).
    """
    negated = rng.random() < 0.2
    if not matrix and rng.random() < 0.15:  # copula: "Der Hund ist (nicht) müde."
        subject = _subject(rng, "N")
        classes = subject.noun.classes if isinstance(subject, NP) else frozenset({"person"})
        tense = rng.choice([t for t in tenses or _COPULA_TENSES if t != "wollen"])
        pred = _adjective_for(rng, classes)
        clause = Clause(subject, None, tense, negated=negated, pred=pred)
        return _adverbs(rng, clause)
    verb = rng.choice(_THAT_VERBS if matrix else _VERBS)
    tense = rng.choice(tenses) if tenses else _tense(rng, modal=not matrix)
    clause = Clause(_subject(rng, verb.subject), verb, tense, negated=negated)
    if verb.dat:
        dat = _np(rng, _noun_of(rng, verb.dat), negated=negated)
        # under negation the dative stays definite, "nicht" negates: "gibt dem Kind den Ball nicht"
        clause = replace(clause, dat=replace(dat, det="def") if negated else dat)
    if verb.acc:
        clause = replace(clause, acc=_np(rng, _noun_of(rng, verb.acc), negated=negated))
    if "dir" in verb.frame:
        clause = replace(clause, place=_destination(rng))
    elif "loc!" in verb.frame or ("loc" in verb.frame and rng.random() < 0.4):
        clause = replace(clause, place=_location(rng))
    return _adverbs(rng, clause)


def _de_verb(c: Clause) -> tuple[str, list[str]]:
    """The finite German verb and the right bracket (prefix, participle or infinitive)."""
    p = person(c.subject)
    if c.verb is None:
        if c.tense == "pres":
            return present("sein", None, p), []
        if c.tense == "perf":
            return present("sein", None, p), ["gewesen"]
        return present(c.tense, None, p), ["sein"]
    v = c.verb
    if c.tense == "pres":
        return present(v.base, v.stem23, p), [v.prefix] if v.prefix else []
    if c.tense == "perf":
        return present(v.aux, None, p), [v.participle]
    return present(c.tense, None, p), [v.prefix + v.base]


def _de_middle(c: Clause, *, skip_front: bool) -> list[str]:
    """The German middle field: adverb, objects, ``nicht``, place, predicate adjective."""
    words: list[str] = []
    for adverb in (c.time, c.freq):
        if adverb and not skip_front:
            words.append(adverb[0])
    if c.dat:
        words += de_np(c.dat, "dat")
    if c.acc:
        words += de_np(c.acc, "acc")
    if c.negated and not (c.acc and c.acc.det == "kein"):
        words.append("nicht")
    if c.place:
        words += c.place[0]
    return words + ([c.pred.predicative] if c.pred else [])


def _de_subject(c: Clause) -> list[str]:
    return [c.subject.de] if isinstance(c.subject, Pronoun) else de_np(c.subject, "nom")


def german(c: Clause, order: str, *, front: list[str] | None = None) -> list[str]:
    """German words of ``c``; ``order`` is main (verb second), sub (verb last) or question.

    ``front`` (main order only) fills the first position instead of the subject and takes the
    place of the clause's adverb, which must then be the front itself or absent.
    """
    finite, right = _de_verb(c)
    if order == "sub":
        if c.tense == "pres" and right:  # the separable prefix joins the verb: "... anruft"
            return [*_de_subject(c), *_de_middle(c, skip_front=False), right[0] + finite]
        return [*_de_subject(c), *_de_middle(c, skip_front=False), *right, finite]
    if order == "question":
        return [finite, *_de_subject(c), *_de_middle(c, skip_front=False), *right]
    if front is not None:
        return [*front, finite, *_de_subject(c), *_de_middle(c, skip_front=True), *right]
    return [*_de_subject(c), finite, *_de_middle(c, skip_front=False), *right]


def _en_verb(c: Clause, *, question: bool) -> tuple[list[str], list[str]]:
    """English auxiliaries and main verb words, with do-support for negations and questions."""
    p = person(c.subject)
    third = p == 2
    if c.verb is None and c.tense in ("pres", "perf"):
        table = ("am", "are", "is") if c.tense == "pres" else ("was", "were", "was")
        be = table[0] if p == 0 else table[2] if third else table[1]
        return ([be, "not"] if c.negated else [be]), []
    base, s3, past = c.verb.en if c.verb else ("be", "is", "was")
    if c.tense in lex.MODAL_AUX:
        return [lex.MODAL_AUX[c.tense][1 if c.negated else 0]], [base]
    if c.tense in lex.MODAL_VERBS:  # "wants to see" behaves like a verb: "does not want to see"
        plain, s3_modal = lex.MODAL_VERBS[c.tense]
        base, s3 = f"{plain} {base}", f"{s3_modal} {base}"
    finite = past if c.tense == "perf" else s3 if third else base
    do = "did" if c.tense == "perf" else "does" if third else "do"
    if c.negated:
        return [do, "not"], [base]
    return ([do], [base]) if question else ([], [finite])


def english(c: Clause, order: str, *, front: list[str] | None = None) -> list[str]:
    """English words of ``c`` (subject-verb-object whatever the German order)."""
    subject = [c.subject.en] if isinstance(c.subject, Pronoun) else en_np(c.subject)
    aux, main = _en_verb(c, question=order == "question")
    objects = (en_np(c.dat) if c.dat else []) + (en_np(c.acc) if c.acc else [])
    rest = objects + (c.place[1] if c.place else []) + ([c.pred.en] if c.pred else [])
    freq = [c.freq[1]] if c.freq and front is None else []
    time = [c.time[1]] if c.time and front is None else []
    if order == "question":
        return [aux[0], *subject, *aux[1:], *freq, *main, *rest, *time]
    return [*(front or []), *subject, *aux, *freq, *main, *rest, *time]


# ---------------------------------------------------------------- sentences


def sentence(rng: random.Random) -> tuple[list[str], list[str], str]:
    """German words, English words and the final punctuation of one random sentence."""
    r = rng.random()
    c = _clause(rng)
    if r < 0.1 and not c.negated:
        return german(c, "question"), english(c, "question"), "?"
    if r < 0.45:
        adverb = c.time or c.freq
        if adverb and rng.random() < 0.4:  # "Heute sieht der Hund ..." / "Today the dog sees ..."
            return german(c, "main", front=[adverb[0]]), english(c, "main", front=[adverb[1]]), "."
        return german(c, "main"), english(c, "main"), "."
    sub = _clause(rng, tenses=("perf",) if c.tense == "perf" else _PRESENTISH)
    if r < 0.6:  # German puts a comma before every subordinate clause, English does not here
        conj = rng.choice(["weil", "wenn"])
        de = [*german(c, "main"), ",", conj, *german(sub, "sub")]
        return de, [*english(c, "main"), lex.CONJUNCTIONS[conj], *english(sub, "sub")], "."
    if r < 0.7:  # the fronted clause takes the first position: "Wenn ..., schläft der Hund."
        conj = rng.choice(["weil", "wenn"])
        c = replace(c, time=None, freq=None)  # the front replaces the adverb position
        de_front = [conj, *german(sub, "sub"), ","]
        en_front = [lex.CONJUNCTIONS[conj], *english(sub, "sub"), ","]
        return german(c, "main", front=de_front), english(c, "main", front=en_front), "."
    if r < 0.88:
        m = _clause(rng, matrix=True)
        de = [*german(m, "main"), ",", "dass", *german(sub, "sub")]
        return de, [*english(m, "main"), "that", *english(sub, "sub")], "."
    de_conj, en_conj = rng.choice([("und", "and"), (", aber", "but")])
    de = [*german(c, "main"), de_conj, *german(sub, "main")]
    comma = [","] if en_conj == "but" else []
    return de, [*english(c, "main"), *comma, en_conj, *english(sub, "main")], "."


def surface(words: list[str], end: str) -> str:
    """Written text: words joined, commas attached, the end punctuation, a capital first letter."""
    text = " ".join(words).replace(" ,", ",") + end
    return text[0].upper() + text[1:]
