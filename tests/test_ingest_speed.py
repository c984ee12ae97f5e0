"""Ingestion's shortcuts give exactly the plain result: memos of normal forms, canonical rows
used as they are, the street-word pre-check, raw duplicate look-ups, and no reference cycles."""

from __future__ import annotations

import gc
import pickle
from pathlib import Path
from typing import Any

import pytest
from anyascii import anyascii
from hypothesis import given, settings
from hypothesis import strategies as st

from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.ingest import normalise as n
from custos.ingest import pipeline, rows
from custos.ingest.mapping import ColumnMap, MapFile
from custos.ingest.readers import RawRow
from custos.ingest.rows import RowContext, normalise_batch, person_values
from custos.service import Custos
from custos.store import Store
from tests.conftest import write


def reference_person_values(values: dict[str, Any], ctx: RowContext) -> tuple[Any, ...]:
    """person_values as written before the memos: each normaliser called on each value."""
    get = values.get
    field_name = "country"
    try:
        country = n.country(v) if (v := get("country")) else None
        field_name = "email"
        email = n.email(v) if (v := get("email")) else None
        field_name = "phone"
        phone = n.phone(v, country or ctx.region) if (v := get("phone")) else None
        field_name = "date_of_birth"
        born = n.date_of_birth(v, ctx.date_format) if (v := get("date_of_birth")) else None
        field_name = "social_handle"
        handle = n.social_handle(v) if (v := get("social_handle")) else None
    except n.FieldError as exc:
        exc.field = field_name
        raise
    first = n.clean(v) if (v := get("first_name")) else None
    last = n.clean(v) if (v := get("last_name")) else None
    full = n.clean(v) if (v := get("full_name")) else None
    if full and not (first or last):
        first, last = n.split_full_name(full)
    if first:
        first = n.display_name(first)
    if last:
        last = n.display_name(last)
    if not full and (first or last):
        full = f"{first} {last}" if first and last else first or last
    street = n.clean(v) if (v := get("street")) else None
    city = n.clean(v) if (v := get("city")) else None
    return (
        first,
        last,
        full,
        n.name_key(first) if first else None,
        n.name_key(last) if last else None,
        email,
        phone,
        born,
        street,
        n.street_key(street) if street else None,
        n.postcode(v) if (v := get("postcode")) else None,
        n.display_name(city) if city else None,
        country,
        handle,
        n.customer_id(v) if (v := get("customer_id")) else None,
    )


def outcome(fn: Any, values: dict[str, Any], ctx: RowContext) -> Any:
    """The normalised tuple, or (field, reason, fix, implausible) of the error."""
    try:
        return fn(values, ctx)
    except n.FieldError as exc:
        return (exc.field, exc.reason, exc.fix, exc.implausible)


NAMES = ["anna", "ANNA", " Anna  ", "jean-luc", "Émile", "e\u0301mile", "", "null", "N/A", "ß"]
NAMES += ["MÜLLER", "Mueller", "von Trapp", "O'NEIL", "li\tna", "123", "-", "Zoë", "x  y"]
FULL = ["", "Frau Müller", "Dr. Hans von der Heide", "Smith, John", "MR JOHN SMITH", "Herr", "a"]
PHONES = ["030 1234567", "+49 30 1234567", "(030) 123 45-67", "0049301234567", "2015550123"]
PHONES += ["+1 201 555 0123", "123", "abc", "020 7946 0958", "+999 123", "+49 (0) 30 1234567"]
DATES = ["1980-01-02", "02.01.1980", "2/13/1980", "3/4/1980", "1 Jan 1980", "1899-12-31"]
DATES += ["2999-01-01", "19800102", "32.01.1980", "xx", "January 2, 1980", "2. März 1980"]
STREETS = ["Hauptstraße 5", "Hauptstr. 5", "1 Main St.", "Baker Rd.", "Elm Ave.", "Marktplatz 3"]
STREETS += ["  Gänseweg   12 ", "691 victoria highway", "Strasse", "st. st"]
COUNTRIES = ["", "DE", "de", "Germany", "Deutschland", "US", "GB", "Narnia", "fr"]
OTHER = [None, "", "null", 1234, 1234.0, 0, "  ", "12345", "sw1a 1aa"]


def field(pool: list[Any]) -> st.SearchStrategy[Any]:
    """A value from ``pool``, of the other pool, or any short text."""
    return st.one_of(st.sampled_from(pool), st.sampled_from(OTHER), st.text(max_size=12))


PERSON = st.fixed_dictionaries(
    {
        "first_name": field(NAMES),
        "last_name": field(NAMES),
        "full_name": field(FULL),
        "email": field(["a@b.de", "A.B@Example.COM ", "not-an-email", "mailto:x@y.org"]),
        "phone": field(PHONES),
        "date_of_birth": field(DATES),
        "street": field(STREETS),
        "city": field(["berlin", "BERLIN", "münchen", "new york", "-", "Frankfurt am Main"]),
        "postcode": field(["10115", "sw1a 1aa", "SW1A  1AA", "n/a", 10115]),
        "country": field(COUNTRIES),
        "customer_id": field(["c-001", " C 002 ", "12"]),
    }
)


@settings(max_examples=400, deadline=None)
@given(people=st.lists(PERSON, min_size=1, max_size=8), region=st.sampled_from(["DE", "US"]))
def test_memos_give_the_normalisers_result(people: list[dict[str, Any]], region: str) -> None:
    ctx = RowContext(kind=Kind.RECORDS, region=region)
    for values in people * 2:  # the second round answers from the memos
        expected = outcome(reference_person_values, values, ctx)
        assert outcome(person_values, values, ctx) == expected


def test_a_value_that_fails_is_not_remembered_and_fails_again() -> None:
    ctx = RowContext(kind=Kind.RECORDS, region="DE")
    for _ in range(2):
        with pytest.raises(n.FieldError) as caught:
            person_values({"phone": "+999 123"}, ctx)
        assert caught.value.field == "phone"
    assert "+999 123" not in ctx.memos.phones("DE")


def test_numbers_bypass_the_memos() -> None:
    ctx = RowContext(kind=Kind.RECORDS, region="DE")
    postcodes = [person_values({"postcode": v}, ctx)[10] for v in ("1234", 1234, 1234.0)]
    assert postcodes == ["1234", "1234", "1234.0"]
    assert list(ctx.memos.postcodes) == ["1234"]


def test_memos_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rows, "MEMO_SIZE", 10)
    ctx = RowContext(kind=Kind.RECORDS, region="DE")
    for i in range(100):
        name = f"name{'x' * i}"
        assert person_values({"first_name": name}, ctx)[0] == name.title()
    assert 0 < len(ctx.memos.names) <= 10
    ctx.memos.clear()
    assert len(ctx.memos) == 0


def test_memos_belong_to_their_instance(tmp_path: Path) -> None:
    """Two instances in one process remember nothing for each other, and a copy of a context
    sent to a worker process starts with empty memos."""
    first = Custos.open(str(tmp_path / "a.db"), Settings(db="unused"))
    second = Custos.open(str(tmp_path / "b.db"), Settings(db="unused"))
    try:
        path = write(tmp_path / "people.csv", "record_id,first_name,city\n1,anna,berlin\n")
        assert first.ingest(path, "crm").stored == 1
        assert first.memos.names["anna"] == ("Anna", "anna")
        assert len(first.memos) > 0 and len(second.memos) == 0
        ctx = first.read_rules(None).row_context(
            Kind.RECORDS, ColumnMap(MapFile(), Kind.RECORDS, [])
        )
        assert ctx.memos is first.memos
        assert len(pickle.loads(pickle.dumps(ctx)).memos) == 0
    finally:
        first.close()
        second.close()


STREET_TEXT = st.lists(
    st.sampled_from(["straße", "strasse", "str.", "street", "st.", "st", "road", "rd.", "Rd"])
    | st.sampled_from(["avenue", "ave.", "platz", "STRASSE", "ß", "ü", "-", "5", " ", ".", "x"])
    | st.sampled_from(["Ln", "lane", "Ct.", "Blvd", "bd", "pl", "C/", "streets"])
    | st.text(max_size=4),
    max_size=6,
).map("".join)


@settings(max_examples=500, deadline=None)
@given(street=STREET_TEXT)
def test_street_key_precheck_changes_nothing(street: str) -> None:
    key = n._STREET_WORDS.sub(n._street_word, street.lower())
    key = n._fold_digraphs(key if key.isascii() else anyascii(key))
    tokens = n._KEY_TOKENS.findall(key)
    assert n.street_key(street) == " ".join(n.STREET_TYPES.get(w, w) for w in tokens)


CANONICAL = ["record_id", "first_name", "last_name", "email", "phone", "date_of_birth", "city"]
VALUES = [
    ["1", "anna", "MÜLLER", "Anna@Example.com", "030 1234567", "07.03.1985", "berlin"],
    ["2", "", "", "", "+999 123", "", ""],  # phonenumbers cannot parse it
    ["3", "ben", "smith", "", "", "1899-12-31", "münchen"],  # stored without the birth date
    ["4", "", "", "bad-address", "", "", ""],
    ["", "cara", "jones", "", "", "", ""],
    ["5", "dora", "weber", "", "call me", "", "köln"],
]


def batch(columns: list[str]) -> list[RawRow]:
    return [RawRow(i + 2, dict(zip(columns, row, strict=True))) for i, row in enumerate(VALUES)]


def test_canonical_rows_are_used_as_they_are_with_the_same_result() -> None:
    ctx = RowContext(kind=Kind.RECORDS, region="DE", bad_fields="implausible")
    plain = ColumnMap(MapFile(), Kind.RECORDS, CANONICAL)
    renamed_columns = [f"src_{c}" for c in CANONICAL]
    renamed = ColumnMap(
        MapFile(fields={c: f"src_{c}" for c in CANONICAL}), Kind.RECORDS, renamed_columns
    )
    row = batch(CANONICAL)[0].values
    assert row is not None and plain.split(row)[0] is row
    one, other = (
        normalise_batch(batch(CANONICAL), plain, ctx),
        normalise_batch(batch(renamed_columns), renamed, ctx),
    )
    assert [(g.line_no, g.record_id, g.values) for g in one.good] == [
        (g.line_no, g.record_id, g.values) for g in other.good
    ]
    assert [(b.line_no, b.reason) for b in one.bad] == [(b.line_no, b.reason) for b in other.bad]
    assert [b.line_no for b in one.dropped] == [b.line_no for b in other.dropped] == [4]
    assert row == dict(zip(CANONICAL, VALUES[0], strict=True))  # the row was not changed


def test_a_batch_leaves_no_reference_cycles() -> None:
    """Refcounting frees a batch at once: a cycle (e.g. through an error's traceback, as
    phonenumbers' parse errors have) would keep every row alive until the cyclic collector."""
    ctx = RowContext(kind=Kind.RECORDS, region="DE", bad_fields="implausible")
    cmap = ColumnMap(MapFile(), Kind.RECORDS, CANONICAL)
    enabled, flags = gc.isenabled(), gc.get_debug()
    gc.collect()
    gc.disable()
    try:
        result = normalise_batch(batch(CANONICAL), cmap, ctx)
        assert result.dropped and result.bad  # the error paths ran
        assert any(b.field == "phone" and b.reason == "not a phone number" for b in result.bad)
        del result
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        kinds = {type(o).__name__ for o in gc.garbage}
        assert not kinds & {"RawRow", "Good", "Bad", "NormalisedBatch"}
    finally:
        gc.set_debug(flags)
        gc.garbage.clear()
        if enabled:
            gc.enable()


def test_duplicates_are_found_across_lookup_chunks(custos: Custos, tmp_path: Path) -> None:
    size = Store.in_chunk * 2 + 7  # three chunks of ids, and of quarantine keys
    lines = ["record_id,first_name,email"]
    lines += [f"{i},Anna,anna{i}@example.com" for i in range(size)]
    lines += [f"x{i},Ben,not-an-address-{i}" for i in range(size)]
    path = write(tmp_path / "many.csv", "\n".join(lines) + "\n")
    custos.settings = custos.settings.model_copy(update={"bad_fields": "quarantine"})
    first = custos.ingest(path, "crm")
    assert (first.stored, first.quarantined_new) == (size, size)
    again = custos.ingest(path, "crm")
    assert (again.stored, again.duplicates, again.quarantined_new) == (0, size, 0)


def test_the_cyclic_collector_waits_for_the_whole_unit(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    write_batch = pipeline.BatchWriter.write

    def recording(self: pipeline.BatchWriter, batch: rows.NormalisedBatch) -> pipeline.Counts:
        seen.append(gc.isenabled())
        return write_batch(self, batch)

    monkeypatch.setattr(pipeline.BatchWriter, "write", recording)
    path = write(tmp_path / "crm.csv", "record_id,first_name\n1,Anna\n2,Ben\n")
    with Custos.open(str(tmp_path / "c.db"), settings) as app:
        assert gc.isenabled()
        assert app.ingest(path, "crm").stored == 2
        assert gc.isenabled()
    assert seen == [False]
