"""The free-text policy travels with each ingestion's row context, not in process-wide state.

Before, every ingestion overwrote ``rows.TEXT_FILTERS``, and the pseudonymising filter's closure
kept the key file of the last caller: two stores in one process (a server, a test run) shared
whichever key came last.
"""

from __future__ import annotations

from pathlib import Path

from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.ingest import rows
from custos.ingest.mapping import ColumnMap, MapFile
from custos.ingest.readers import RawRow
from custos.ingest.rows import RowContext, normalise_batch
from custos.service import Custos
from custos.service import pii as pii_policy
from tests.conftest import write

NOTE = {"record_id": "n1", "timestamp": "2026-05-01T12:00:00Z", "text": "Ring Kim on 0171 2345678."}


def test_a_row_context_carries_its_own_filter() -> None:
    """The context's filter is applied (to the text and the verbatim payload) whatever the
    registry holds."""

    def shout(text: str, language: str | None) -> tuple[str, str | None]:
        return text.upper(), None

    ctx = RowContext(kind=Kind.INTERACTIONS, region=None, pii="redact", text_filter=shout)
    cmap = ColumnMap(MapFile(), Kind.INTERACTIONS, list(NOTE))
    before = dict(rows.TEXT_FILTERS)
    batch = normalise_batch([RawRow(1, dict(NOTE))], cmap, ctx)
    (good,) = batch.good
    text = good.values[rows.COLUMNS[Kind.INTERACTIONS].index("text")]
    assert text == NOTE["text"].upper()
    assert NOTE["text"].upper() in good.payload and NOTE["text"] not in good.payload
    assert before == rows.TEXT_FILTERS


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


def test_an_ingestion_leaves_the_registry_alone(tmp_path: Path) -> None:
    """Ingesting registers nothing process-wide."""
    path = write(tmp_path / "people.csv", "record_id,first_name\n1,Anna\n")
    before = dict(rows.TEXT_FILTERS)
    with Custos.open(str(tmp_path / "c.db"), Settings(db="unused")) as app:
        assert app.ingest(path, "crm", pii="keep").stored == 1
    assert before == rows.TEXT_FILTERS
