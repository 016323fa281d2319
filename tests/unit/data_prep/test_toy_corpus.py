"""The embedded toy corpus: deterministic, a real translation task, well-formed splits."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from nmt_preln.data_prep import toy_lexicon as lex
from nmt_preln.data_prep.toy_corpus import generate_corpus, generate_pairs, main
from nmt_preln.data_prep.toy_morphology import NP, PRESENT_TABLE, de_np, en_np, pp, present
from prep_release import read_lines

N = 3000


@pytest.fixture(scope="module")
def pairs() -> list[tuple[str, str]]:
    return generate_pairs(N, seed=7)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _noun(de_sg: str, en_sg: str | None = None) -> lex.Noun:
    return next(n for n in lex.ALL_NOUNS if n.de_sg == de_sg and en_sg in (None, n.en_sg))


def test_same_seed_same_corpus_other_seed_other_corpus(pairs: list[tuple[str, str]]) -> None:
    assert generate_pairs(200, seed=7) == pairs[:200]
    other = generate_pairs(200, seed=8)
    assert len(set(other) & set(pairs[:200])) < 20


def test_sentences_are_distinct_and_5_to_25_words(pairs: list[tuple[str, str]]) -> None:
    assert len({de for de, _ in pairs}) == N
    for de, en in pairs:
        assert 5 <= len(de.split()) <= 25 and 5 <= len(en.split()) <= 25
        assert de[0].isupper() and en[0].isupper() and de[-1] in ".?" and en[-1] == de[-1]


def test_not_a_copy_task(pairs: list[tuple[str, str]]) -> None:
    assert sum(de == en for de, en in pairs) == 0
    shared = [len(set(_words(de)) & set(_words(en))) / len(set(_words(de))) for de, en in pairs]
    assert sum(shared) / len(shared) < 0.2  # names and a few loanwords only


def test_subordinate_clauses_are_verb_final_only_in_german(pairs: list[tuple[str, str]]) -> None:
    german_verbs = {present(v.base, v.stem23, p) for v in lex.ALL_VERBS for p in range(6)}
    german_verbs |= {present(aux, None, p) for aux in PRESENT_TABLE for p in range(6)}
    german_verbs |= {v.prefix + form for v in lex.ALL_VERBS if v.prefix for form in german_verbs}
    english_verbs = {form for v in lex.ALL_VERBS for w in v.en for form in w.split()}
    english_verbs |= {"is", "are", "am", "was", "were", "be"}
    late = [(de, en) for de, en in pairs if re.search(r", (weil|wenn) ", de)]
    assert len(late) > N // 10
    de_final = sum(_words(de)[-1] in german_verbs for de, _ in late)
    en_final = sum(_words(en)[-1] in english_verbs for _, en in late)
    assert de_final == len(late)  # "..., weil der Hund die Katze sieht."
    assert en_final < 0.5 * len(late)  # "..., because the dog sees the cat."


def test_verb_second_after_a_fronted_adverb(pairs: list[tuple[str, str]]) -> None:
    fronted = [(de, en) for de, en in pairs if de.startswith("Heute ")]
    assert fronted
    for de, en in fronted:  # "Heute sieht der Hund ..." -> "Today the dog sees ..."
        assert en.startswith("Today ") and _words(de)[1] not in ("der", "die", "das", "ein")


def test_context_resolves_ambiguous_words(pairs: list[tuple[str, str]]) -> None:
    bench = [en for de, en in pairs if re.search(r"\b(auf|unter) der \w*\s?Bank\b", de)]
    bank = [en for de, en in pairs if re.search(r"\b(zur|bei der|vor der) \w*\s?Bank\b", de)]
    assert bench and bank
    assert all("bench" in en for en in bench) and not any("bench" in en for en in bank)
    she = [en for de, en in pairs if re.match(r"Sie (ist|hat|kann|muss|will|\w+t) ", de)]
    they = [en for de, en in pairs if re.match(r"Sie (sind|haben|können|müssen|wollen) ", de)]
    assert she and they
    assert all(en.startswith("She ") for en in she) and all(en.startswith("They ") for en in they)


def test_vocabulary_has_a_few_hundred_words(pairs: list[tuple[str, str]]) -> None:
    assert 200 <= lex.lexicon_size() <= 600
    de = {w for s, _ in pairs for w in _words(s)}
    en = {w for _, s in pairs for w in _words(s)}
    assert 300 <= len(de) <= 3000 and 200 <= len(en) <= 2000
    assert len(de) > len(en)  # German inflects more


def test_german_inflection() -> None:
    assert [present("sehen", "sieh", p) for p in range(6)] == [
        "sehe", "siehst", "sieht", "sehen", "seht", "sehen",
    ]  # fmt: skip
    assert present("finden", None, 2) == "findet" and present("öffnen", None, 1) == "öffnest"
    assert present("laden", "läd", 2) == "lädt" and present("lesen", "lies", 1) == "liest"
    dog, man, boy = _noun("Hund"), _noun("Mann"), _noun("Junge")
    small = next(a for a in lex.ALL_ADJECTIVES if a.predicative == "klein")
    assert de_np(NP(dog, False, "def", small), "dat") == ["dem", "kleinen", "Hund"]
    assert de_np(NP(dog, False, "indef", small), "nom") == ["ein", "kleiner", "Hund"]
    assert de_np(NP(man, True, "num", small, ("zwei", "two")), "dat") == [
        "zwei", "kleinen", "Männern",
    ]  # fmt: skip
    assert de_np(NP(boy, False, "def"), "acc") == ["den", "Jungen"]  # weak masculine
    assert pp("in", NP(_noun("Park"), False, "def"), "dat") == ["im", "Park"]
    assert en_np(NP(_noun("Apfel"), False, "indef")) == ["an", "apple"]
    assert en_np(NP(man, True, "num", small, ("zwei", "two"))) == ["two", "small", "men"]


def test_generate_corpus_writes_disjoint_aligned_splits(tmp_path: Path) -> None:
    counts = generate_corpus(out_dir=tmp_path, train=300, valid=40, test=50, seed=1)
    assert counts == {"test": 50, "valid": 40, "train": 300}
    lines = {
        (split, lang): read_lines(tmp_path / f"{split}.{lang}")
        for split in counts
        for lang in ("de", "en")
    }
    for split, n in counts.items():
        assert len(lines[(split, "de")]) == len(lines[(split, "en")]) == n
    train, test = set(lines[("train", "de")]), set(lines[("test", "de")])
    assert not train & test and not train & set(lines[("valid", "de")])
    # the test set does not depend on the size of the training set
    generate_corpus(out_dir=tmp_path / "big", train=600, valid=40, test=50, seed=1)
    assert read_lines(tmp_path / "big" / "test.en") == lines[("test", "en")]


def test_main_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "toy"
    assert main(["--out", str(out), "--train", "20", "--valid", "5", "--test", "5"]) == 0
    assert len(read_lines(out / "train.de")) == 20
    assert main(["--out", str(out), "--train", "-3"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["nmt-toy-corpus: error: --train must be >= 0, got -3"]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["--out", str(blocker / "sub"), "--train", "5", "--valid", "0", "--test", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nmt-toy-corpus: error: ") and str(blocker) in err[0]


def test_module_runs_as_a_script(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "nmt_preln.data_prep.toy_corpus", "--out", str(tmp_path)]
    done = subprocess.run([*cmd, "--train", "10", "--valid", "2", "--test", "2"], check=False)
    assert done.returncode == 0 and len(read_lines(tmp_path / "valid.en")) == 2
