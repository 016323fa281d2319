"""The lexicon of the toy German->English corpus: words, inflection tables and selection classes.

Entries are compact whitespace-separated strings parsed once at import; ``_`` stands for a space
inside a multi-word form ("police_officer", "look_for"). :mod:`toy_corpus` holds the grammar.

Noun entry: ``gender de_sg de_pl en_sg en_pl tag...``. Gender ``m f n``; ``mw`` is a weak masculine
noun whose accusative and dative singular equal its plural (``den Jungen``); ``-`` as plural marks a
mass noun used only in the singular with a definite-like determiner. Tags are semantic classes
(``person animal food drink read thing clothes open vehicle place``) used by verbs and adjectives,
``loc:P,..`` (prepositions it takes for a location, ``auf=at`` overrides the English preposition),
``dir:P,..`` (``in`` or ``zu``: it can be a destination). A noun without a class is used in
prepositional phrases only: that is how ``Bank`` is bench after ``auf/unter`` and bank after
``in/vor/bei/zu``.

Verb entry: ``infinitive stem23 participle aux | base 3sg past | subject frame...``. ``an|rufen``
marks a separable prefix; ``stem23`` is the 2nd/3rd person singular stem when it changes
(``sieh`` -> ``siehst, sieht``), ``-`` when regular; aux ``h`` (haben) or ``s`` (sein). Subject
``P`` person or ``A`` animate (person or animal). Frames: ``acc:CLASSES`` and ``dat:CLASSES``
objects, ``loc`` (an optional place; ``loc!`` a required one), ``dir`` (a destination), ``that``
(takes a dass-clause).
"""

from __future__ import annotations

from nmt_preln.data_prep.toy_morphology import Adjective, Noun, Verb

LOC_PREPS = {"in": "in", "auf": "on", "unter": "under", "neben": "next_to", "hinter": "behind",
             "vor": "in_front_of", "bei": "at", "an": "at"}  # fmt: skip
DIR_PREPS = {"in": ("in", "acc", "into"), "zu": ("zu", "dat", "to")}

PRONOUNS = "ich:I du:you er:he sie:she es:it wir:we ihr:you sie:they"
PRONOUN_PERSON = (0, 1, 2, 2, 2, 3, 4, 5)  # 1sg 2sg 3sg 1pl 2pl 3pl
POSSESSIVES = "mein:my dein:your unser:our"
NUMBERS = (
    "zwei:two drei:three vier:four fünf:five sechs:six sieben:seven acht:eight neun:nine zehn:ten"
)
CITIES = (
    "Berlin:Berlin Hamburg:Hamburg München:Munich Wien:Vienna Köln:Cologne Rom:Rome Paris:Paris"
)
# Time adverbs with the tenses they fit (p present, f perfect, m modal); English puts them last.
TIME_ADVERBS = ("heute:today:pfm gestern:yesterday:f jetzt:now:pm abends:in_the_evening:pfm "
                "morgens:in_the_morning:pfm am_Wochenende:at_the_weekend:pfm")  # fmt: skip
# Frequency adverbs stand before the English main verb: "Der Hund schläft oft" -> "often sleeps".
FREQ_ADVERBS = "oft:often immer:always manchmal:sometimes selten:rarely"
CONJUNCTIONS = {"weil": "because", "wenn": "when", "dass": "that"}

# "können" is an English modal auxiliary; "müssen" and "wollen" become verbs that take do-support
# ("does not have to", since "muss nicht" is not "must not").
MODAL_AUX = {"können": ("can", "cannot")}  # (affirmative, negated)
MODAL_VERBS = {"müssen": ("have to", "has to"), "wollen": ("want to", "wants to")}  # (plain, 3sg)

NOUNS = """
m Mann Männer man men person
f Frau Frauen woman women person
n Kind Kinder child children person
mw Junge Jungen boy boys person
n Mädchen Mädchen girl girls person
m Lehrer Lehrer teacher teachers person
f Lehrerin Lehrerinnen teacher teachers person
m Arzt Ärzte doctor doctors person
f Ärztin Ärztinnen doctor doctors person
mw Student Studenten student students person
f Studentin Studentinnen student students person
m Koch Köche cook cooks person
mw Bauer Bauern farmer farmers person
mw Nachbar Nachbarn neighbour neighbours person
m Freund Freunde friend friends person
f Freundin Freundinnen friend friends person
mw Polizist Polizisten police_officer police_officers person
m Künstler Künstler artist artists person
m Großvater Großväter grandfather grandfathers person
f Großmutter Großmütter grandmother grandmothers person
m Bruder Brüder brother brothers person
f Schwester Schwestern sister sisters person
m König Könige king kings person
f Königin Königinnen queen queens person
m Fahrer Fahrer driver drivers person
f Sängerin Sängerinnen singer singers person
m Hund Hunde dog dogs animal
f Katze Katzen cat cats animal
n Pferd Pferde horse horses animal
m Vogel Vögel bird birds animal
f Maus Mäuse mouse mice animal
f Kuh Kühe cow cows animal
m Fisch Fische fish fish animal
mw Löwe Löwen lion lions animal
mw Affe Affen monkey monkeys animal
mw Bär Bären bear bears animal
mw Elefant Elefanten elephant elephants animal
n Schaf Schafe sheep sheep animal
f Ente Enten duck ducks animal
n Kaninchen Kaninchen rabbit rabbits animal
m Fuchs Füchse fox foxes animal
n Schwein Schweine pig pigs animal
m Apfel Äpfel apple apples food
f Birne Birnen pear pears food
f Banane Bananen banana bananas food
m Kuchen Kuchen cake cakes food
n Ei Eier egg eggs food
f Tomate Tomaten tomato tomatoes food
f Kartoffel Kartoffeln potato potatoes food
f Wurst Würste sausage sausages food
f Suppe Suppen soup soups food
f Pizza Pizzen pizza pizzas food
m Keks Kekse cookie cookies food
f Orange Orangen orange oranges food
n Brötchen Brötchen roll rolls food
f Karotte Karotten carrot carrots food
m Kaffee Kaffees coffee coffees drink
m Tee Tees tea teas drink
m Saft Säfte juice juices drink
n Bier Biere beer beers drink
m Wein Weine wine wines drink
f Milch - milk - drink
n Wasser - water - drink
n Buch Bücher book books read thing open
f Zeitung Zeitungen newspaper newspapers read thing
m Brief Briefe letter letters read thing open
f Zeitschrift Zeitschriften magazine magazines read thing
f Geschichte Geschichten story stories read
n Gedicht Gedichte poem poems read
f Nachricht Nachrichten message messages read
m Schlüssel Schlüssel key keys thing
f Tasche Taschen bag bags thing open
m Ball Bälle ball balls thing
m Stuhl Stühle chair chairs thing loc:auf,unter,neben
m Tisch Tische table tables thing loc:auf,unter,neben
f Lampe Lampen lamp lamps thing
f Uhr Uhren clock clocks thing
f Blume Blumen flower flowers thing
n Geschenk Geschenke gift gifts thing open
f Kamera Kameras camera cameras thing
n Telefon Telefone phone phones thing
n Fahrrad Fahrräder bicycle bicycles thing
n Bild Bilder picture pictures thing
f Flasche Flaschen bottle bottles thing open
f Tasse Tassen cup cups thing
n Messer Messer knife knives thing
m Löffel Löffel spoon spoons thing
m Teller Teller plate plates thing
f Kiste Kisten box boxes thing open
f Leiter Leitern ladder ladders thing
m Schirm Schirme umbrella umbrellas thing open
m Koffer Koffer suitcase suitcases thing open
m Computer Computer computer computers thing
m Hut Hüte hat hats clothes
f Jacke Jacken jacket jackets clothes
m Mantel Mäntel coat coats clothes
n Kleid Kleider dress dresses clothes
m Schal Schals scarf scarves clothes
f Mütze Mützen cap caps clothes
m Schuh Schuhe shoe shoes clothes
f Tür Türen door doors open loc:vor,hinter,neben
n Fenster Fenster window windows open loc:vor,neben
n Auto Autos car cars vehicle loc:in,neben,hinter
m Bus Busse bus buses vehicle loc:in
m Zug Züge train trains vehicle loc:in
n Boot Boote boat boats vehicle loc:in
m Park Parks park parks place loc:in,vor dir:in,zu
m Garten Gärten garden gardens place loc:in,hinter dir:in
n Haus Häuser house houses place loc:in,vor,hinter dir:in,zu
f Küche Küchen kitchen kitchens place loc:in dir:in
f Schule Schulen school schools place loc:in,vor,hinter dir:zu
f Stadt Städte town towns place loc:in dir:in
m Wald Wälder forest forests place loc:in dir:in
m Bahnhof Bahnhöfe station stations place loc:in,vor dir:zu
m Markt Märkte market markets place loc:auf=at dir:zu
n Büro Büros office offices place loc:in dir:in,zu
f Kirche Kirchen church churches place loc:in,vor,neben dir:zu
n Hotel Hotels hotel hotels place loc:in,vor dir:in,zu
n Restaurant Restaurants restaurant restaurants place loc:in,vor dir:in,zu
f Bibliothek Bibliotheken library libraries place loc:in dir:in,zu
n Museum Museen museum museums place loc:in,vor dir:in,zu
m Strand Strände beach beaches place loc:an=on dir:zu
m See Seen lake lakes place loc:in,an dir:zu
f See - sea - place loc:an=by dir:
m Fluss Flüsse river rivers place loc:an=by dir:zu
m Berg Berge mountain mountains place loc:auf
f Brücke Brücken bridge bridges place loc:auf,unter dir:zu
f Straße Straßen street streets place loc:auf
m Baum Bäume tree trees place loc:unter,neben,hinter
f Bank Bänke bench benches loc:auf,unter
f Bank Banken bank banks loc:in,vor,bei dir:zu
"""

# Adjective entry: predicative, attributive stem, English, classes it fits ("any" = every class).
ADJECTIVES = """
klein klein small any
groß groß big any
alt alt old any
neu neu new thing,clothes,vehicle,place,read
schön schön beautiful any
hässlich hässlich ugly any
rot rot red thing,clothes,vehicle,food
blau blau blue thing,clothes,vehicle
grün grün green thing,clothes,vehicle,food
gelb gelb yellow thing,clothes,vehicle,food
schwarz schwarz black animal,thing,clothes,vehicle
weiß weiß white animal,thing,clothes,vehicle
braun braun brown animal,thing,clothes
laut laut loud person,animal,vehicle,place
leise leis quiet person,animal,vehicle,place
schnell schnell fast person,animal,vehicle
langsam langsam slow person,animal,vehicle
müde müd tired person,animal
hungrig hungrig hungry person,animal
glücklich glücklich happy person,animal
traurig traurig sad person,animal,read
freundlich freundlich friendly person,animal
klug klug clever person,animal
stark stark strong person,animal,drink
wild wild wild animal
lustig lustig funny person,animal,read
teuer teur expensive thing,clothes,vehicle,food,drink
billig billig cheap thing,clothes,vehicle,food,drink
schwer schwer heavy thing,animal
leicht leicht light thing,clothes
warm warm warm food,drink,clothes,place
kalt kalt cold food,drink,place
frisch frisch fresh food,drink
lecker lecker tasty food,drink
süß süß sweet food,drink,animal
leer leer empty open,place
sauber sauber clean thing,clothes,vehicle,place
schmutzig schmutzig dirty thing,clothes,vehicle,place,animal
interessant interessant interesting read,person,place
lang lang long read,clothes
kurz kurz short read,clothes
ruhig ruhig calm person,animal,place
"""

_CONCRETE = "person,animal,thing,food,vehicle,read,clothes,open"
VERBS = f"""
sehen sieh gesehen h | see sees saw | A acc:{_CONCRETE} loc
finden - gefunden h | find finds found | A acc:person,animal,thing,food,read,clothes
suchen - gesucht h | look_for looks_for looked_for | A acc:person,animal,thing,food,clothes
kaufen - gekauft h | buy buys bought | P acc:thing,food,drink,read,vehicle,clothes loc
verkaufen - verkauft h | sell sells sold | P acc:thing,food,drink,vehicle,clothes loc
essen iss gegessen h | eat eats ate | A acc:food loc
trinken - getrunken h | drink drinks drank | A acc:drink loc
lesen lies gelesen h | read reads read | P acc:read loc
schreiben - geschrieben h | write writes wrote | P acc:read loc
nehmen nimm genommen h | take takes took | P acc:thing,food,drink,read,clothes
brauchen - gebraucht h | need needs needed | A acc:thing,food,drink,read,clothes,vehicle
lieben - geliebt h | love loves loved | A acc:person,animal
mögen - gemocht h | like likes liked | A acc:person,animal,food,drink,read
tragen träg getragen h | carry carries carried | A acc:thing,person,animal
tragen träg getragen h | wear wears wore | P acc:clothes
fahren fähr gefahren h | drive drives drove | P acc:vehicle
öffnen - geöffnet h | open opens opened | P acc:open
schließen - geschlossen h | close closes closed | P acc:open
auf|machen - aufgemacht h | open opens opened | P acc:open
zu|machen - zugemacht h | close closes closed | P acc:open
an|rufen - angerufen h | call calls called | P acc:person
ab|holen - abgeholt h | pick_up picks_up picked_up | P acc:person,animal,thing
ein|laden läd eingeladen h | invite invites invited | P acc:person
mit|bringen - mitgebracht h | bring_along brings_along brought_along | P acc:thing,food,drink
kochen - gekocht h | cook cooks cooked | P acc:food loc
malen - gemalt h | paint paints painted | P acc:person,animal,thing,place
helfen hilf geholfen h | help helps helped | A dat:person,animal
danken - gedankt h | thank thanks thanked | P dat:person
folgen - gefolgt s | follow follows followed | A dat:person,animal
antworten - geantwortet h | answer answers answered | P dat:person
geben gib gegeben h | give gives gave | P dat:person,animal acc:thing,food,drink,read
zeigen - gezeigt h | show shows showed | P dat:person acc:thing,read,animal
schicken - geschickt h | send sends sent | P dat:person acc:read,thing
schlafen schläf geschlafen h | sleep sleeps slept | A loc
arbeiten - gearbeitet h | work works worked | P loc
lachen - gelacht h | laugh laughs laughed | A loc
singen - gesungen h | sing sings sang | A loc
tanzen - getanzt h | dance dances danced | P loc
spielen - gespielt h | play plays played | A loc
warten - gewartet h | wait waits waited | A loc
sitzen - gesessen h | sit sits sat | A loc
liegen - gelegen h | lie lies lay | A loc
weinen - geweint h | cry cries cried | P loc
wohnen - gewohnt h | live lives lived | A loc!
fern|sehen sieh ferngesehen h | watch_TV watches_TV watched_TV | P loc
ein|kaufen - eingekauft h | go_shopping goes_shopping went_shopping | P loc
schwimmen - geschwommen s | swim swims swam | A loc
gehen - gegangen s | go goes went | A dir
laufen läuf gelaufen s | run runs ran | A dir
fahren fähr gefahren s | drive drives drove | P dir
kommen - gekommen s | come comes came | A dir
fliegen - geflogen s | fly flies flew | A dir
reisen - gereist s | travel travels travelled | P dir
glauben - geglaubt h | think thinks thought | P that
sagen - gesagt h | say says said | P that
wissen - gewusst h | know knows knew | P that
hoffen - gehofft h | hope hopes hoped | P that
hören - gehört h | hear hears heard | P that
"""


def _words(text: str) -> str:
    return text.replace("_", " ")


def _parse_noun(line: str) -> Noun:
    gender, de_sg, de_pl, en_sg, en_pl, *tags = line.split()
    loc: list[tuple[str, str]] = []
    dirs: tuple[str, ...] = ()
    classes = set()
    for tag in tags:
        if tag.startswith("loc:"):
            for prep in tag[4:].split(","):
                de, _, en = prep.partition("=")
                loc.append((de, _words(en or LOC_PREPS[de])))
        elif tag.startswith("dir:"):
            dirs = tuple(p for p in tag[4:].split(",") if p)
        else:
            classes.add(tag)
    mass = de_pl == "-"
    return Noun(
        gender=gender,
        de_sg=de_sg,
        de_pl=None if mass else de_pl,
        en_sg=_words(en_sg),
        en_pl=None if mass else _words(en_pl),
        classes=frozenset(classes),
        loc=tuple(loc),
        dirs=dirs,
    )


def _parse_verb(line: str) -> Verb:
    german, english, rest = line.split(" | ")
    infinitive, stem23, participle, aux = german.split()
    prefix, _, base = infinitive.rpartition("|")
    subject, *frames = rest.split()
    acc = dat = frozenset[str]()
    for item in frames:
        if item.startswith("acc:"):
            acc = frozenset(item[4:].split(","))
        elif item.startswith("dat:"):
            dat = frozenset(item[4:].split(","))
    base_en, third, past = (_words(w) for w in english.split())
    return Verb(
        prefix=prefix,
        base=base,
        stem23=None if stem23 == "-" else stem23,
        participle=participle,
        aux="haben" if aux == "h" else "sein",
        en=(base_en, third, past),
        subject=subject,
        acc=acc,
        dat=dat,
        frame=frozenset(f for f in frames if ":" not in f),
    )


def _parse_adjective(line: str) -> Adjective:
    predicative, stem, en, classes = line.split()
    return Adjective(predicative, stem, en, frozenset(classes.split(",")))


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((_words(de), _words(en)) for de, en in (w.split(":")[:2] for w in text.split()))


ALL_NOUNS = tuple(_parse_noun(line) for line in NOUNS.strip().splitlines())
ALL_ADJECTIVES = tuple(_parse_adjective(line) for line in ADJECTIVES.strip().splitlines())
ALL_VERBS = tuple(_parse_verb(line) for line in VERBS.strip().splitlines())
PRONOUN_PAIRS = _pairs(PRONOUNS)
POSSESSIVE_PAIRS = _pairs(POSSESSIVES)
NUMBER_PAIRS = _pairs(NUMBERS)
CITY_PAIRS = _pairs(CITIES)
FREQ_PAIRS = _pairs(FREQ_ADVERBS)
TIME_TRIPLES = tuple(
    (_words(de), _words(en), tenses)
    for de, en, tenses in (item.split(":") for item in TIME_ADVERBS.split())
)


def lexicon_size() -> int:
    """Number of distinct German lemmas (nouns, adjectives, verbs, function words)."""
    lemmas = {n.de_sg for n in ALL_NOUNS} | {a.predicative for a in ALL_ADJECTIVES}
    lemmas |= {v.prefix + v.base for v in ALL_VERBS}
    for pairs in (PRONOUN_PAIRS, POSSESSIVE_PAIRS, NUMBER_PAIRS, CITY_PAIRS, FREQ_PAIRS):
        lemmas |= {de for de, _ in pairs}
    lemmas |= {de for de, _, _ in TIME_TRIPLES} | set(CONJUNCTIONS) | set(LOC_PREPS)
    return len(lemmas | {"der", "ein", "kein", "dieser", "nicht", "und", "aber", "nach"})
