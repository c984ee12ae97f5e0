"""Given names compared as a person-level fact: the same name, a variant of it, or a conflict.

A false merge is a privacy incident (DESIGN.md, invariant 9), and the first name is the fact
that keeps apart the people who share everything else: twins Max and Moritz Lehmann share
surname, birth date, address and landline. So two given names that are not variants of one
another are a *conflict*, which refuses a link at any weight; yet one person written as Hans
and Johannes, Bill and William, Liz and Elizabeth, Jon and John (a typo), J. and John (an
initial) or Anna Maria and Anna (a middle name) must not be held apart.

Inputs are comparison keys as ``custos.ingest.normalise.name_key`` makes them (lower case,
ASCII, ``ae``/``oe``/``ue`` folded to ``a``/``o``/``u``, runs of non-letters → one space). This
module does not fold raw names: identity must not import ingest (layering), and a second copy
of the fold here would drift from the first. The data files are folded at build time with
``name_key`` itself (``scripts/build_name_data.py``), so they meet the keys exactly.

The rules, for two single names (:func:`relation`):

1. an initial agrees with every name it begins (``j``/``john``);
2. a formal name and its diminutive agree (``johannes``/``hans``, ``josef``/``sepp``,
   ``william``/``bill``), as do two spellings of one formal name (``stefan``/``stephan``);
   two diminutives of one name do not (brothers Jack and Johnny). This wins over gender;
3. two names of different genders conflict, however close their spelling (``paul``/``paula``,
   ``jan``/``jana``, ``christian``/``christiane``): a gender counts when Faker's name lists
   give the name that gender only, in at least :data:`MIN_GENDER_LISTS` locales; names of
   both genders (``andrea``, ``kim``) and unknown strings give no gender evidence;
4. a prefix of at least :data:`MIN_PREFIX` letters agrees (``max``/``maximilian``, a
   truncated ``chri``/``christine``);
5. two *known* given names (in the data files) agree only as spellings of one name: equal
   under :func:`spelling_key` (``karl``/``carl``, ``jon``/``john``, ``linda``/``lynda``), one
   adjacent transposition (``micheal``/``michael``), Jaro–Winkler of at least
   :data:`KNOWN_JARO_WINKLER` (``kathryn``/``katherine``), or a prefix of less than two
   thirds of the other (``ali``/``alice``); one edit between two real names is two names
   (``lena``/``lina``, ``justin``/``dustin``, ``sara``/``tara``), and so is a name and itself
   with an ending of a third (``jean``/``jeanne``, ``pierre``/``pierrette``);
6. when at least one of them is no known name, it is most likely a corrupted one (a typo,
   a cut-off field), and they agree on one edit (longer name of :data:`MIN_TYPO` letters or
   more), two edits (both of :data:`MIN_TYPO2` letters or more), Jaro–Winkler of at least
   :data:`JARO_WINKLER`, or when the unknown one is a prefix with one typo
   (``mih``/``michael``) — except when the unknown one is a single edit from known names that
   all conflict with the other: ``mariia`` is Maria mistyped, not Mario; ``smon`` is Simon,
   not Simone (twins Mario and Maria, Simon and Simone); and an unknown name one edit from a
   variant of the other agrees (``jseph`` is Joseph, so it agrees with Joey).

Everything else conflicts. A name of several words agrees when each word of the shorter one
agrees with its own word of the longer one, in any order (``maria``/``anna maria``,
``h p``/``hans peter``; not ``hans peter``/``hans jurgen``, who are brothers), a full word
only with a full word (``jennifer`` is no variant of ``hans j``), or when the words run
together agree (``hanspeter``/``hans peter``, ``hanspter``/``hans peter``).

Generational suffixes (Jr/Sr, II/III, German *d. J.*/*d. Ä.*) are a separate fact: see
:func:`generation`, :func:`generation_conflict` and :func:`strip_generation`.

Data (``custos/identity/data``): ``nicknames.tsv`` (names.csv of the ``nicknames`` package by
Carlton Northern and Nick Crews, Apache-2.0, plus custos's own German, Dutch, French, Italian,
Spanish, Polish, Czech, Scandinavian and Hungarian groups) and ``given_names.tsv`` (genders
from Faker's locale name lists, MIT). Both are read once, on first use.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from importlib.resources import files
from itertools import permutations

from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from custos.core.fields import (
    AMBIGUOUS_GENERATION_SUFFIXES,
    GENERATION_SUFFIX_PAIRS,
    GENERATION_SUFFIXES,
)

SAME = "same"
VARIANT = "variant"
CONFLICT = "conflict"

#: Locale lists that must give a name one gender before the gender counts as evidence: one
#: list alone is too often an odd entry (a short name of one list is a truncation elsewhere).
MIN_GENDER_LISTS = 2
#: Shortest prefix that counts as a truncation (``max``/``maximilian``, not ``jo``/``john``).
MIN_PREFIX = 3
#: Jaro–Winkler similarity from which two known names are spellings of one.
KNOWN_JARO_WINKLER = 0.9
#: When one of the names is unknown (likely corrupted): the shortest longer name in which one
#: edit is a typo (``jot``/``jon``; ``ay``/``jay``), the shortest names in which two edits are
#: (``zfur``/``zufer``), and the Jaro–Winkler similarity that agrees. Tuned on gen_people and
#: FEBRL 3 (``scripts/build_name_data.py evaluate``): 0.8 would win back 0.07 % of the true
#: pairs for 0.02 % more false variants, mostly garbage; 0.9 loses 0.06 % more.
MIN_TYPO = 3
MIN_TYPO2 = 4
JARO_WINKLER = 0.85
#: Most words of a name aligned pairwise; beyond them the names conflict unless equal.
_MAX_TOKENS = 5

#: Spelling differences that do not make another name: ph/f, th/t, ck/k, c/k, y/i, a doubled
#: letter, an h after a vowel or consonant (``jon``/``john``, ``sara``/``sarah``).
_SPELLING = (
    (re.compile(r"ph"), "f"),
    (re.compile(r"th"), "t"),
    (re.compile(r"ck"), "k"),
    (re.compile(r"c"), "k"),
    (re.compile(r"y"), "i"),
    (re.compile(r"(?<=.)h"), ""),
    (re.compile(r"(.)\1+"), r"\1"),
)


@cache
def _nicknames() -> frozenset[tuple[str, str]]:
    """Every nickname pair of ``nicknames.tsv``, each as a sorted tuple.

    A group's formal names pair with each other and with each member; members of one group
    do not pair with each other (the module docstring, rule 2).
    """
    pairs: set[tuple[str, str]] = set()
    text = files("custos.identity").joinpath("data/nicknames.tsv").read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        _source, formal_names, member_names = line.split("\t")
        formals = formal_names.split(",")
        for i, formal in enumerate(formals):
            for other in (*formals[i + 1 :], *filter(None, member_names.split(","))):
                if other != formal:
                    pairs.add((formal, other) if formal < other else (other, formal))
    return frozenset(pairs)


@cache
def _lexicon() -> tuple[dict[str, str], frozenset[str]]:
    """(name → ``m``/``f`` where the gender is evidence, every known given name).

    Known names are the keys of both data files; a gender counts when at least
    :data:`MIN_GENDER_LISTS` locale lists give it (``given_names.tsv``).
    """
    text = files("custos.identity").joinpath("data/given_names.tsv").read_text(encoding="utf-8")
    genders = {}
    known = {name for pair in _nicknames() for name in pair}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, gender_code, lists = line.split("\t")
        known.add(name)
        if gender_code in ("m", "f") and int(lists) >= MIN_GENDER_LISTS:
            genders[name] = gender_code
    return genders, frozenset(known)


@lru_cache(maxsize=1 << 14)
def gender(key: str) -> str | None:
    """``"m"`` or ``"f"`` when the given-name key is evidence of one gender, else ``None``. A
    key that is no known name (a typo) has the gender of the known names one edit from it
    when they all have that one: "Patrocia" is Patricia's; "Julin" could be Julian or Julia."""
    genders, known_names = _lexicon()
    if key in known_names or len(key) < MIN_TYPO2 or " " in key:
        return genders.get(key)
    found = {genders.get(name) for name in _one_edit(key)}
    return found.pop() if len(found) == 1 else None


def genders_differ(a: str, b: str) -> bool:
    """Whether two given-name keys are each evidence of a gender, and not the same one (Paul
    and Paula, Jan and Jana)."""
    ga, gb = gender(a), gender(b)
    return ga is not None and gb is not None and ga != gb


def known(key: str) -> bool:
    """Whether the key is a given name of the data files (not a typo or truncation of one)."""
    return key in _lexicon()[1]


def given_name_like(key: str) -> bool:
    """Whether every word of a name key is a known given name or one typo from one
    (``mcihael``, ``karl juregn``): how a caller's one-word name that is no surname reads."""
    words = key.split()
    return bool(words) and all(
        known(word) or (len(word) >= MIN_TYPO2 and bool(_one_edit(word))) for word in words
    )


def nicknames_related(a: str, b: str) -> bool:
    """Whether one key is a formal name of a nickname group of the other.

    ``hans``/``johannes``, ``bob``/``robert``, ``stefan``/``stephan`` (two formal spellings);
    not ``jack``/``johnny``, two diminutives of John.
    """
    return ((a, b) if a < b else (b, a)) in _nicknames()


@lru_cache(maxsize=1 << 16)
@cache
def _partners() -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for a, b in _nicknames():
        out.setdefault(a, set()).add(b)
        out.setdefault(b, set()).add(a)
    return {k: frozenset(v) for k, v in out.items()}


def nickname_partners(key: str) -> frozenset[str]:
    """The keys a name is a nickname pair with (see :func:`nicknames_related`): for
    ``becky``, ``rebecca``; for ``rebecca``, its diminutives."""
    return _partners().get(key, frozenset())


def spelling_key(key: str) -> str:
    """A name key with spelling differences that keep the name folded away (rule 5)."""
    for pattern, replacement in _SPELLING:
        key = pattern.sub(replacement, key)
    return key


def relation(a: str, b: str) -> str:
    """How two given-name keys relate: ``"same"``, ``"variant"`` or ``"conflict"``.

    ``a`` and ``b`` are ``name_key`` keys of given names (strip a generational suffix first:
    :func:`strip_generation`). Equal keys are ``"same"``; an empty key has nothing to compare
    and is no conflict (``"variant"``). The rules are those of the module docstring; the
    answer does not depend on the order of the arguments. Cached: resolution asks about the
    same common pairs again and again.
    """
    if a == b:
        return SAME
    if not a or not b:
        return VARIANT
    if a > b:
        a, b = b, a
    if " " in a or " " in b:
        return _relation(a, b)
    return _word_relation(a, b)


@lru_cache(maxsize=1 << 16)
def near(a: str, b: str) -> bool:
    """Whether two different given names are close enough to be one name mistyped or cut
    short: a typo or two apart, similar by Jaro–Winkler, or one begins the other (Linda and
    Lina, Andrea and Andreas, Paul and Paula). Max and Moritz, Lena and Jonas are not."""
    if not a or not b:
        return True
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    if len(short) == 1:
        return long[0] == short  # an initial is near only the names it begins
    return (
        long.startswith(short)
        or DamerauLevenshtein.distance(a, b, score_cutoff=2) <= 2
        or JaroWinkler.similarity(a, b, score_cutoff=0.8) >= 0.8
    )


def variants(a: str, b: str) -> bool:
    """Whether two given-name keys may name one person (:func:`relation` is no conflict)."""
    return relation(a, b) != CONFLICT


@lru_cache(maxsize=1 << 15)
def _relation(a: str, b: str) -> str:
    """Two names of which one has several words (the module docstring, last paragraph)."""
    if (a, b) in _nicknames():  # whole keys: "maria jose" / "majo"
        return VARIANT
    ta, tb = a.split(), b.split()
    joined_a, joined_b = "".join(ta), "".join(tb)
    if joined_a == joined_b:  # "hans peter" / "hanspeter"
        return VARIANT
    short, long = (ta, tb) if len(ta) <= len(tb) else (tb, ta)
    if len(long) > _MAX_TOKENS:
        return CONFLICT
    either = len(short) == len(long)
    for chosen in permutations(long, len(short)):
        if all(_aligned(x, y, either) for x, y in zip(short, chosen, strict=True)):
            return VARIANT
    if not either and _word_relation(joined_a, joined_b) != CONFLICT:
        return VARIANT  # "hans peter" / "hanspter": words run together, and a typo
    return CONFLICT


def _aligned(x: str, y: str, either: bool) -> bool:
    """Whether word ``x`` of the shorter name may stand for word ``y`` of the longer one.

    An initial stands for a word it begins; a full word of the shorter name only for a full
    word (``jennifer`` does not stand for the ``j`` of ``hans j``), unless both names have as
    many words (``anna m`` / ``a maria``).
    """
    if len(x) == 1:
        return y[0] == x
    if len(y) == 1:
        return either and x[0] == y
    return _word_relation(x, y) != CONFLICT


@lru_cache(maxsize=1 << 17)  # about 25 MB when full
def _word_relation(x: str, y: str) -> str:
    """Two single words: same, variant or conflict (rules 1–6 of the module docstring)."""
    if x == y:
        return SAME
    if len(x) == 1 or len(y) == 1:
        return VARIANT if x[0] == y[0] else CONFLICT
    if ((x, y) if x < y else (y, x)) in _nicknames():
        return VARIANT
    genders, names = _lexicon()
    gx, gy = genders.get(x), genders.get(y)
    if gx is not None and gy is not None and gx != gy:
        return CONFLICT
    short, long = (x, y) if len(x) <= len(y) else (y, x)
    if x in names and y in names:
        # Two given names people are really called: only a spelling of one another (Karl and
        # Carl, Jon and John, Micheal and Michael) or a nickname pair (above) is one name.
        # Andrea and Andreas, Leo and Leon, Lena and Lina are two, twins often among them.
        # A name cut short to less than two thirds is a truncation (Ali for Alice, Mal for
        # Malwina), not a second name a letter longer. At two thirds it is as often a name
        # with an ending of its own, mostly a feminine one (Jean and Jeanne, Joan and Joanne,
        # Dean and Deanna, Pierre and Pierrette), siblings and spouses among them.
        if (
            spelling_key(x) == spelling_key(y)
            or (
                len(x) == len(y)
                and DamerauLevenshtein.distance(x, y, score_cutoff=1) <= 1
                and sorted(x) == sorted(y)
            )
            or (
                len(short) >= MIN_PREFIX
                and 3 * len(short) < 2 * len(long)
                and long.startswith(short)
            )
            # one letter more or less inside the name (Micheal and Michal, Heidi and Hedi), not
            # at its ends, where names change (Paul and Paula, Julia and Julian, Andrea and
            # Andreas, Anna and Hanna); one letter changed is another name (Tim and Tom)
            or (
                len(short) >= MIN_TYPO
                and len(long) == len(short) + 1
                and x[0] == y[0]
                and x[-1] == y[-1]
                and DamerauLevenshtein.distance(x, y, score_cutoff=1) <= 1
            )
        ):
            return VARIANT
        return CONFLICT
    if len(short) >= MIN_PREFIX and long.startswith(short):
        return VARIANT
    if len(long) >= MIN_TYPO and DamerauLevenshtein.distance(x, y, score_cutoff=1) <= 1:
        return VARIANT
    if (
        len(short) >= MIN_TYPO2 and DamerauLevenshtein.distance(x, y, score_cutoff=2) <= 2
    ) or JaroWinkler.similarity(x, y, score_cutoff=JARO_WINKLER) >= JARO_WINKLER:
        # Farther than one edit: a misspelt name is first of all a known name one edit away
        # ("mariia" is Maria mistyped, so not Mario; "smon" is Simon, so not Simone).
        unknown, other = (x, y) if x not in names else (y, x)
        close = _one_edit(unknown) if len(unknown) >= MIN_TYPO2 else ()  # "mih": cut short
        if close and all(_word_relation(c, other) == CONFLICT for c in close):
            return CONFLICT
        return VARIANT
    if (
        short not in names
        and len(short) >= MIN_PREFIX
        and any(
            DamerauLevenshtein.distance(short, long[:size], score_cutoff=1) <= 1
            for size in (len(short) - 1, len(short), len(short) + 1)
        )
    ):
        return VARIANT  # a cut-off name with a typo in what is left ("exrb…" of "erbil")
    for unknown, other in ((x, y), (y, x)):
        # a misspelt nickname or formal name: "jseph" is Joseph, and so Joey's
        if (
            unknown not in names
            and len(unknown) >= MIN_TYPO2
            and any(_word_relation(c, other) != CONFLICT for c in _one_edit(unknown))
        ):
            return VARIANT
    return CONFLICT


def _one_edit(key: str) -> tuple[str, ...]:
    """The known given names one edit (insert, delete, substitute, swap) from a key that is
    none (see :func:`_word_relation`, rule 6)."""
    found = []
    for candidate in _deletion_index().get(key, ()):
        if DamerauLevenshtein.distance(key, candidate, score_cutoff=1) <= 1:
            found.append(candidate)
    for i in range(len(key)):
        for candidate in _deletion_index().get(key[:i] + key[i + 1 :], ()):
            if DamerauLevenshtein.distance(key, candidate, score_cutoff=1) <= 1:
                found.append(candidate)
    return tuple(sorted(set(found) - {key}))


@cache
def _deletion_index() -> dict[str, tuple[str, ...]]:
    """Every known given name and each of its one-letter deletions → the known names it comes
    from (symmetric deletion: two keys one edit apart share an entry)."""
    index: dict[str, set[str]] = {}
    for name in _lexicon()[1]:
        if " " in name:
            continue
        index.setdefault(name, set()).add(name)
        for i in range(len(name)):
            index.setdefault(name[:i] + name[i + 1 :], set()).add(name)
    return {k: tuple(sorted(v)) for k, v in index.items()}


# -- generations ---------------------------------------------------------------------------------


def _suffix(tokens: list[str]) -> tuple[str | None, int]:
    """The generation a name's trailing words state, and how many words state it.

    Only trailing words after at least one other count: a lone ``junior`` is a given name
    (Brazilian Júnior), not a suffix. ``jun`` and ``sen`` are names too (Korean Min-jun,
    Indian Sen): they count only after a word of four letters or more that is no given name
    (``lehmann jun``, not ``min jun`` or ``kim jun``).
    """
    if len(tokens) >= 3 and (pair := GENERATION_SUFFIX_PAIRS.get((tokens[-2], tokens[-1]))):
        return pair, 2
    if len(tokens) >= 2 and (single := GENERATION_SUFFIXES.get(tokens[-1])):
        if tokens[-1] in AMBIGUOUS_GENERATION_SUFFIXES and (
            len(tokens[-2]) < 4 or known(tokens[-2])
        ):
            return None, 0
        return single, 1
    return None, 0


def generation(*name_parts: str | None) -> str | None:
    """The generational suffix stated in any of the name keys given, or ``None``.

    Pass the surname, full-name and first-name keys of one record (in any order, ``None`` for
    missing ones); the first part that ends in a suffix decides. ``jr``, ``junior``, ``jun``
    and German ``d j``, ``der jungere`` give ``"jr"``; ``sr``, ``senior``, ``sen``, ``d a``,
    ``der altere`` give ``"sr"``; ``ii``, ``iii`` and ``iv`` give themselves. A suffix counts
    only after another word (``lehmann jr``); ``jun`` and ``sen`` only after a surname-like
    word (``lehmann jun``, not the Korean given name ``min jun``).
    """
    for part in name_parts:
        if part:
            found, _ = _suffix(part.split())
            if found:
                return found
    return None


def generation_conflict(x: str | None, y: str | None) -> bool:
    """Whether two generations (from :func:`generation`) are both known and differ (Jr/Sr)."""
    return x is not None and y is not None and x != y


def strip_generation(key: str) -> str:
    """A name key without its generational suffix: ``lehmann jr`` → ``lehmann``.

    Never strips a key to nothing: a lone ``jr`` stays.
    """
    tokens = key.split()
    _, count = _suffix(tokens)
    return " ".join(tokens[:-count]) if count else key
