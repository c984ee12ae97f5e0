"""The golden-record rule (custos.identity.golden.GoldenPlan) on loaded rows, by example, and the
one field registry the field lists derive from."""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from custos.consent.taxonomy import DEFAULT_TAXONOMY
from custos.core import fields
from custos.identity.golden import GoldenPlan
from custos.identity.loading import LoadedRow
from custos.ingest import rows
from custos.store import tables as t
from custos.store.golden import decode, encode

OLD, NEW = "2024-01-01T00:00:00.000000Z", "2025-06-01T12:00:00.000000Z"


def row(
    raw_id: int, source: str = "crm", *, when: str = OLD, record: bool = True, **values: Any
) -> LoadedRow:
    extra = values.pop("extra", None)
    person = {name: values.get(name) for name in fields.GOLDEN_ATTRIBUTES}
    return LoadedRow(
        raw_id=raw_id,
        source=source,
        record_id=f"r{raw_id}",
        is_record=record,
        first_name_key=None,
        last_name_key=None,
        full_name=None,
        when=when,
        extra=orjson.dumps(extra).decode() if extra else None,
        street_key=None,
        date_of_birth_candidates=None,
        **person,
    )


def golden(
    members: list[LoadedRow], rule: str = "priority", priority: tuple[str, ...] = ()
) -> dict[str, tuple[str, str]]:
    """attribute → (value, record id it came from)."""
    document = GoldenPlan(rule, priority).document(members)
    return {v.attribute: (v.value, v.record_id) for v in decode(document)}


def test_one_member_gives_its_own_values_and_extras() -> None:
    one = row(
        1, first_name="Ada", email="ada@example.org", city="Berlin", extra={"tier": "gold", "x": ""}
    )
    assert golden([one]) == {
        "first_name": ("Ada", "r1"),
        "email": ("ada@example.org", "r1"),
        "city": ("Berlin", "r1"),
        "tier": ("gold", "r1"),
    }


def test_priority_then_newest_and_records_before_interactions() -> None:
    crm = row(1, "crm", when=OLD, email="old@crm")
    shop = row(2, "shop", when=NEW, email="new@shop")
    call = row(3, "crm", when=NEW, record=False, email="call@crm")
    assert golden([shop, crm, call], priority=("crm",))["email"] == ("old@crm", "r1")
    assert golden([shop, crm, call], rule="recent")["email"] == ("new@shop", "r2")
    assert golden([call], rule="recent")["email"] == ("call@crm", "r3")


def test_a_rectification_wins_every_rule() -> None:
    members = [row(1, email="a@x"), row(2, email="a@x"), row(3, "rectification", email="b@x")]
    for rule in ("priority", "recent", "frequent"):
        assert golden(members, rule, ("crm",))["email"] == ("b@x", "r3")


def test_frequent_takes_the_most_frequent_value_first_in_rank_among_equals() -> None:
    members = [
        row(1, when=NEW, last_name="Roe"),
        row(2, when=OLD, last_name="Doe"),
        row(3, when=OLD, last_name="Doe"),
        row(4, when=NEW, extra={"tier": "gold"}),
        row(5, when=OLD, extra={"tier": "silver"}),
    ]
    chosen = golden(members, "frequent")
    assert chosen["last_name"] == ("Doe", "r2")
    assert chosen["tier"] == ("gold", "r4")  # a tie: the newest


def test_an_address_comes_whole_from_one_member() -> None:
    newer = row(1, when=NEW, city="Hamburg")  # a city only
    older = row(2, when=OLD, street="Main St 1", postcode="10115", city="Berlin", country="DE")
    chosen = golden([older, newer], rule="recent")
    assert chosen == {"city": ("Hamburg", "r1")}
    twice = row(3, when=OLD, street="Main St 1", city="Berlin")
    chosen = golden([newer, older, twice], rule="frequent")
    assert {a: v for a, v in chosen.items()} == {
        "street": ("Main St 1", "r2"),
        "postcode": ("10115", "r2"),
        "city": ("Berlin", "r2"),
        "country": ("DE", "r2"),
    }


def test_extras_of_interactions_are_not_golden() -> None:
    call = row(1, record=False, email="a@x", extra={"tier": "gold"})
    assert "tier" not in golden([call])


def test_the_document_reads_back_and_encodes_the_same() -> None:
    members = [row(1, "crm", first_name="Ada"), row(2, "shop", when=NEW, email="a@x")]
    document = GoldenPlan("priority", ("crm",)).document(members)
    values = decode(document)
    assert {(v.source, v.record_id, v.rule) for v in values} == {
        ("crm", "r1", "priority"),
        ("shop", "r2", "priority"),
    }
    assert encode(sorted(values, key=lambda v: v.record_id), "priority") == document


def test_field_lists_derive_from_the_registry() -> None:
    assert set(fields.GOLDEN_ATTRIBUTES) == {*fields.GOLDEN_SINGLE, *fields.GOLDEN_ADDRESS}
    assert set(fields.KEY_COLUMNS.values()) == set(fields.PERSON_COLUMNS) - set(
        fields.PERSON_FIELDS
    )
    assert set(fields.STRONG_IDENTIFIERS) <= set(fields.GOLDEN_SINGLE)
    assert rows.PERSON_COLUMNS == fields.PERSON_COLUMNS
    assert rows.DROPPABLE[fields.Kind.RECORDS] == fields.DROPPABLE_PERSON_FIELDS
    for table in (t.records, t.interactions):
        assert set(fields.PERSON_COLUMNS) <= set(table.c.keys())
    assert set(fields.MATCH_SOURCE.values()) <= set(LoadedRow._fields)
    assert set(fields.GOLDEN_ATTRIBUTES) <= set(LoadedRow._fields)
    # the shipped taxonomy gives every person field its registered category
    shipped = yaml.safe_load(DEFAULT_TAXONOMY.read_text(encoding="utf-8"))["fields"]
    assert {name: shipped[name] for name in fields.CATEGORIES} == fields.CATEGORIES
