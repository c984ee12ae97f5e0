"""The free-text policy travels with each ingestion's row context, not in process-wide state.

Before, every ingestion overwrote a process-wide registry of filters (``rows.TEXT_FILTERS``), and
the pseudonymising filter's closure kept the key file of the last caller: two stores in one
process (a server, a test run) shared whichever key came last. The registry is gone.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.ingest import rows
from custos.ingest.mapping import ColumnMap, MapFile
from custos.ingest.readers import RawRow
from custos.ingest.rows import RowContext, normalise_batch
from custos.service import Custos
from custos.service import pii as pii_policy
from custos.store import tables as t
from tests.conftest import write

NOTE = {"record_id": "n1", "timestamp": "2026-05-01T12:00:00Z", "text": "Ring Kim on 0171 2345678."}


def test_a_row_context_carries_its_own_filter() -> None:
    """The context's filter is applied (to the text and the verbatim payload) whatever the
    registry holds."""

    def shout(text: str, language: str | None) -> tuple[str, str | None]:
        return text.upper(), None

    ctx = RowContext(kind=Kind.INTERACTIONS, region=None, pii="redact", text_filter=shout)
    cmap = ColumnMap(MapFile(), Kind.INTERACTIONS, list(NOTE))
    batch = normalise_batch([RawRow(1, dict(NOTE))], cmap, ctx)
    (good,) = batch.good
    text = good.values[rows.COLUMNS[Kind.INTERACTIONS].index("text")]
    assert text == NOTE["text"].upper()
    assert NOTE["text"].upper() in good.payload and NOTE["text"] not in good.payload


def test_a_policy_without_its_filter_is_refused() -> None:
    """A context that names a policy but carries no filter stores nothing unfiltered."""
    ctx = RowContext(kind=Kind.INTERACTIONS, region=None, pii="redact")
    cmap = ColumnMap(MapFile(), Kind.INTERACTIONS, list(NOTE))
    with pytest.raises(ValueError, match="redact"):
        normalise_batch([RawRow(1, dict(NOTE))], cmap, ctx)


def test_each_settings_pseudonymise_with_their_own_key(tmp_path: Path) -> None:
    """The filter of one settings' policy keeps its key file, whatever another asked for
    later."""
    first = pii_policy.text_filter(
        Settings(db="unused", secret_key_file=str(tmp_path / "a.key")), "pseudonymise"
    )
    pii_policy.text_filter(
        Settings(db="unused", secret_key_file=str(tmp_path / "b.key")), "pseudonymise"
    )
    assert first is not None
    first("Kim", None)
    assert (tmp_path / "a.key").exists() and not (tmp_path / "b.key").exists()
    assert pii_policy.text_filter(Settings(db="unused"), "keep") is None


def test_two_stores_in_one_process_pseudonymise_with_their_own_keys(tmp_path: Path) -> None:
    """Ingesting into one store after another, each with its own key file, gives each store
    its own tokens: nothing of the first ingestion's policy is left for the second."""
    path = write(
        tmp_path / "notes.csv",
        "record_id,timestamp,text\nn1,2026-05-01T12:00:00Z,Ring Kim on 0171 2345678.\n",
    )
    texts = []
    for name in ("a", "b"):
        settings = Settings(db="unused", secret_key_file=str(tmp_path / f"{name}.key"))
        with Custos.open(str(tmp_path / f"{name}.db"), settings) as app:
            summary = app.ingest(path, "calls", kind=Kind.INTERACTIONS, pii="pseudonymise")
            assert summary.stored == 1
            with app.store.read() as conn:
                texts.append(conn.execute(select(t.interactions.c.text)).scalar_one())
        assert (tmp_path / f"{name}.key").exists()
    assert all("0171" not in text and "<PHONE_" in text for text in texts)
    assert texts[0] != texts[1]  # tokens under two keys
