"""Given-name comparison (custos.identity.names): a false merge is a privacy incident."""

from __future__ import annotations

from importlib.resources import files

import pytest

from custos.identity import names
from custos.identity.names import (
    CONFLICT,
    SAME,
    VARIANT,
    generation,
    generation_conflict,
    relation,
    strip_generation,
    variants,
)
from custos.ingest.normalise import name_key


def rel(a: str, b: str) -> str:
    """The relation of two raw names, keyed as ingestion keys them; checked both ways round."""
    forward, backward = relation(name_key(a), name_key(b)), relation(name_key(b), name_key(a))
    assert forward == backward
    return forward


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Max", "Moritz"),  # the twins: same surname, birth date, address, landline
        ("Paul", "Paula"),
        ("Jan", "Jana"),
        ("Christian", "Christiane"),
        ("Daniel", "Daniela"),
        ("Michael", "Michaela"),
        ("Alexander", "Alexandra"),
        ("Martin", "Martina"),
        ("Christian", "Christina"),  # both are "Chris", yet two people
        ("Jack", "Johnny"),  # two diminutives of John: brothers
        ("Lena", "Lina"),  # one letter apart, two real names
        ("Tim", "Tom"),
        ("Hans-Peter", "Hans-Jürgen"),  # brothers sharing a first word
        ("Max Peter", "Moritz Peter"),  # twins sharing a middle name
        ("Jennifer", "Hans J."),  # a full name does not stand for a middle initial
        ("J.", "Peter"),
        ("Jean", "Jeanne"),  # a name and itself with an ending of a third: siblings
        ("Joan", "Joanne"),
        ("Pierre", "Pierrette"),
    ],
)
def test_different_people_conflict(a: str, b: str) -> None:
    assert rel(a, b) == CONFLICT
    assert not variants(name_key(a), name_key(b))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Hans", "Johannes"),
        ("Bill", "William"),
        ("Bob", "Robert"),
        ("Sepp", "Josef"),
        ("Jupp", "Joseph"),
        ("Liz", "Elizabeth"),
        ("Liesl", "Elisabeth"),
        ("Fritz", "Friedrich"),
        ("Jörg", "Georg"),
        ("Käthe", "Katharina"),
        ("Chris", "Christina"),
        ("Chris", "Christian"),
        ("Alex", "Alexandra"),  # a nickname pair wins over gender
        ("Stefan", "Stephan"),  # two spellings of one formal name
        ("Jon", "John"),  # typo / spelling
        ("Micheal", "Michael"),  # transposition
        ("Karl", "Carl"),
        ("J.", "John"),  # initial
        ("Anna Maria", "Anna"),  # middle name
        ("Anna Maria", "Maria"),
        ("Rainer Maria", "Rainer"),  # Maria as a male middle name: no gender evidence
        ("H. P.", "Hans Peter"),
        ("Anna M.", "Anna Maria"),
        ("Hans-Peter", "Hanspeter"),
        ("Max", "Maximilian"),  # truncation
        ("Ben", "Benjamin"),  # truncation of two known names: less than two thirds
        ("Kim", "Kimberly"),  # Kim: both genders
        ("Kathrin", "Kathrn"),  # typo in a name
        ("Christophr", "Christopher"),
        ("Mih", "Michael"),  # a cut-off field with a typo: no name, so no conflict
    ],
)
def test_one_person_written_two_ways_is_a_variant(a: str, b: str) -> None:
    assert rel(a, b) == VARIANT
    assert variants(name_key(a), name_key(b))


def test_same_and_empty() -> None:
    assert rel("Jürgen", "Juergen") == SAME
    assert relation("", "max") == VARIANT  # nothing to compare: no conflict
    assert relation("max", "") == VARIANT


def test_gender_lexicon() -> None:
    assert names.gender("paul") == "m"
    assert names.gender(name_key("Paula")) == "f"
    assert names.gender(name_key("Michaela")) == "f"  # folded like the keys: "michala"
    assert names.gender("andrea") is None  # both genders
    assert names.gender("kim") is None
    assert names.known("moritz")
    assert not names.known("xqzv")
    # a typo has the gender of the names one edit from it, when they all have one
    assert names.gender("patrocia") == "f"
    assert names.gender("julin") is None  # Julian or Julia


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("lehmann jr",), "jr"),
        (("lehmann junior",), "jr"),
        (("lehmann jun",), "jr"),
        ((None, "max lehmann junior"), "jr"),
        (("lehmann der jungere",), "jr"),
        (("lehmann d j",), "jr"),
        (("lehmann sr",), "sr"),
        (("lehmann senior",), "sr"),
        ((name_key("Lehmann der Ältere"),), "sr"),
        ((name_key("Lehmann d. Ä."),), "sr"),
        (("smith iii",), "iii"),
        (("lehmann", "max lehmann"), None),
        (("junior",), None),  # a given name alone, not a suffix
        (("min jun",), None),  # Korean given name Min-jun
        ((None, None), None),
    ],
)
def test_generation(parts: tuple[str | None, ...], expected: str | None) -> None:
    assert generation(*parts) == expected


def test_generation_conflict_and_strip() -> None:
    assert generation_conflict("jr", "sr")
    assert generation_conflict(generation("lehmann jr"), generation("lehmann der altere"))
    assert not generation_conflict("jr", "jr")
    assert not generation_conflict("jr", None)  # one side silent: no evidence
    assert strip_generation("lehmann jr") == "lehmann"
    assert strip_generation("lehmann der altere") == "lehmann"
    assert strip_generation("lehmann") == "lehmann"
    assert strip_generation("jr") == "jr"  # never to nothing


def test_data_files_carry_licences_and_folded_keys() -> None:
    data = files("custos.identity").joinpath("data")
    given = data.joinpath("given_names.tsv").read_text(encoding="utf-8")
    nicks = data.joinpath("nicknames.tsv").read_text(encoding="utf-8")
    assert "Faker" in given and "MIT" in given
    assert "carltonnorthern/nicknames" in nicks and "Apache License 2.0" in nicks
    assert "Apache-2.0" in nicks  # custos's own groups
    keys = [line.split("\t")[0] for line in given.splitlines() if not line.startswith("#")]
    assert len(keys) > 5000 and keys == sorted(keys)
    for line in nicks.splitlines():
        if line.startswith("#"):
            continue
        source, formals, members = line.split("\t")
        assert source in ("northern", "custos")
        for key in (*formals.split(","), *filter(None, members.split(","))):
            assert name_key(key) == key, key  # the keys meet ingestion's keys exactly
    for key in keys[::50]:
        assert name_key(key) == key, key


def test_a_callers_one_word_reads_as_a_given_name_when_it_is_one_or_one_typo_from_one() -> None:
    from custos.identity.names import given_name_like

    for key in ("philip", "mcihal", "karl juregn", "araon"):  # keys: "Mcihael" folds to mcihal
        assert given_name_like(key), key
    for key in ("lehmann", "velasquez", "ackermann", ""):
        assert not given_name_like(key), key
