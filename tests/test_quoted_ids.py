"""A call note that quotes an order number links the call to that order's person, when the
caller said who they are and could be that person: incrementally as in a full run, never for a
spouse calling about the other's order, never on a number two rows carry."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from custos.core.fields import Kind
from custos.identity.loading import quoted_ids
from custos.service import Custos
from custos.store import meta
from custos.store import tables as t
from tests.conftest import write

CRM = """record_id,first_name,last_name,email,date_of_birth
c1,Tomislav,Hermighausen,tomislav.h@example.de,1963-01-04
c2,Hans,Beispiel,hans.beispiel@example.de,1971-05-02
"""
ORDERS = """order_id,buyer,buyer_email
O-500146,Tomislav Hermihausen,tomislav.h@example.de
O-500147,Hans Beispiel,hans.beispiel@example.de
"""
CALLS = """call_id,caller,phone_number,notes
k1,T. Hermighausen,(0163) 633 34 08,"Return label for order O-500146 requested, sent."
k2,Anna Beispiel,0170 1111111,Asked about order O-500147 of her husband.
k3,Herr Beispiel,0170 2222222,Wo bleibt Bestellung O-500147?
k5,Hans Beispiel,0170 3333333,"Status of O-500147; charged 44.00 EUR on 2026-03-10, postcode 10115."
"""


def _xref(app: Custos) -> dict[tuple[str, str], str]:
    return {(s, r): p for s, r, p in app.xref()}


def _ingest(app: Custos, tmp_path: Path, calls: str = CALLS) -> None:
    app.ingest(
        write(tmp_path / "calls.csv", calls),
        "calls",
        kind=Kind.INTERACTIONS,
        map_path=write(
            tmp_path / "calls.yaml",
            "fields:\n  record_id: call_id\n  full_name: caller\n  phone: phone_number\n"
            "  text: notes\n",
        ),
    )


def _orders(app: Custos, tmp_path: Path, source: str = "orders") -> None:
    app.ingest(
        write(tmp_path / f"{source}.csv", ORDERS),
        source,
        kind=Kind.INTERACTIONS,
        map_path=write(
            tmp_path / f"{source}.yaml",
            "fields:\n  record_id: order_id\n  full_name: buyer\n  email: buyer_email\n",
        ),
    )


def test_words_that_can_be_a_record_id() -> None:
    text = (
        "Return label for order O-500146. Kunde C300001, Ticket #A10023, ORD-2024-0042; "
        "charged 44.00 EUR on 2026-03-10, postcode 10115 / SW1A 1AA, mail tina.heath1978@"
        "outlook.com, web shop.example1234.de, <PHONE>, 0170 1234567"
    )
    assert quoted_ids(text) == {"O-500146", "C300001", "A10023", "ORD-2024-0042"}


def test_a_quoted_order_links_the_caller_incrementally_as_in_a_full_run(
    custos: Custos, tmp_path: Path
) -> None:
    custos.ingest(write(tmp_path / "crm.csv", CRM), "crm")
    _orders(custos, tmp_path)
    custos.resolve()
    _ingest(custos, tmp_path)
    summary = custos.resolve()
    assert summary.mode == "incremental"
    x = _xref(custos)
    tomislav, hans = x[("crm", "c1")], x[("crm", "c2")]
    assert x[("orders", "O-500146")] == tomislav and x[("orders", "O-500147")] == hans
    # an initial and a surname one typo away, a number no record holds: the quoted order decides
    assert x[("calls", "k1")] == tomislav
    assert x[("calls", "k5")] == hans
    # a wife asking about her husband's order, a caller who gave no first name: not him
    assert x[("calls", "k2")] != hans and x[("calls", "k3")] != hans
    profile = custos.profile(tomislav, purpose="customer_service")
    assert "exact:reference" in {e["rule"] for e in profile["evidence"]}
    custos.resolve(full=True)
    assert _xref(custos) == x


@pytest.mark.parametrize("indexed", [True, False])
def test_an_older_note_meets_the_order_it_quotes_when_the_order_arrives(
    custos: Custos, tmp_path: Path, indexed: bool
) -> None:
    """The calls come first, the shop's orders a run later: the incremental run finds the old
    notes that quote a new order's number (in the index of the ids notes quote that each run
    keeps; in a store upgraded from before the index, in their texts) and links them as a full
    rebuild does."""
    # k7 gave no number: nothing links the note until its order arrives (it is in no profile)
    _ingest(custos, tmp_path, CALLS + 'k7,Tomislav Hermighausen,,"Refund for O-500146 sent."\n')
    custos.ingest(write(tmp_path / "crm.csv", CRM), "crm")
    custos.resolve()
    x = _xref(custos)
    assert x[("calls", "k1")] != x[("crm", "c1")]  # (no order yet: nothing ties them)
    assert x[("calls", "k7")] == ""  # (in no profile)
    with custos.store.write() as conn:
        word = t.interaction_quotes.c.word
        quotes: dict[str, int] = dict(conn.execute(select(word, func.count()).group_by(word)).all())
        assert quotes == {"O-500146": 2, "O-500147": 3}
        if not indexed:  # as a store that an upgrade gave the index, empty
            conn.execute(delete(t.interaction_quotes))
            conn.execute(delete(t.store_meta).where(t.store_meta.c.key == meta.QUOTES_INDEXED))
    _orders(custos, tmp_path)
    assert custos.resolve().mode == "incremental"
    x = _xref(custos)
    tomislav, hans = x[("crm", "c1")], x[("crm", "c2")]
    assert x[("orders", "O-500146")] == tomislav and x[("calls", "k1")] == tomislav
    assert x[("calls", "k7")] == tomislav
    assert x[("orders", "O-500147")] == hans and x[("calls", "k5")] == hans
    assert x[("calls", "k2")] != hans and x[("calls", "k3")] != hans
    custos.resolve(full=True)
    assert _xref(custos) == x


def test_a_number_two_rows_carry_links_nothing(custos: Custos, tmp_path: Path) -> None:
    custos.ingest(write(tmp_path / "crm.csv", CRM), "crm")
    for source in ("orders", "returns"):  # two systems that number alike
        _orders(custos, tmp_path, source)
    _ingest(custos, tmp_path, CALLS.splitlines()[0] + "\n" + CALLS.splitlines()[1] + "\n")
    custos.resolve()
    x = _xref(custos)
    assert x[("calls", "k1")] != x[("crm", "c1")]


@pytest.mark.parametrize("caller", ["Moritz Hermighausen", "Tomislav Schmidt"])
def test_a_caller_who_is_someone_else_is_not_linked(
    custos: Custos, tmp_path: Path, caller: str
) -> None:
    """Another first name (a brother quoting the order), or another surname altogether."""
    custos.ingest(write(tmp_path / "crm.csv", CRM), "crm")
    _orders(custos, tmp_path)
    calls = f"call_id,caller,phone_number,notes\nk9,{caller},0170 9999999,Order O-500146 late\n"
    _ingest(custos, tmp_path, calls)
    custos.resolve()
    x = _xref(custos)
    assert x[("calls", "k9")] != x[("crm", "c1")]
