"""Free-text policy at ingestion (redact | pseudonymise | keep) and ``pii scan``.

Ingestion does not know how personal data is found: this module gives each ingestion the
filter of its policy (:func:`text_filter`, carried in the row context; the key of a key file is
held by its :class:`TextFilters`) and builds the PII engine
lazily, once per process (the ingestion workers are forked with the row context, so each builds
its own on first use). The
pseudonymisation key lives outside the store (``secret_key_file``), like the erasure key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import select

from custos.consent.guard import source_categories
from custos.core.errors import InputError
from custos.core.fields import reads_as_prose
from custos.core.settings import Settings
from custos.ingest.rows import FilteredText, TextFilter
from custos.privacy.keys import load_or_create_key
from custos.store import tables as t

if TYPE_CHECKING:
    from custos.privacy.pii import Mode, PiiEngine
    from custos.service.app import Custos

#: The policies a source may have for its free text; redact is the default (privacy by default).
POLICIES = ("redact", "pseudonymise", "keep")


@cache
def engine() -> PiiEngine:
    """This process's PII engine (built on first use: loading the models takes a moment).

    One per process, since it is a function of constants only: the default configuration, the
    models and word lists that ship with custos. Nothing of a store or a key is in it."""
    from custos.privacy.pii import PiiEngine

    return PiiEngine()


def _language(language: str | None) -> str:
    lang = (language or "").lower()[:2]
    return lang if lang in ("en", "de") else "auto"


def filter_text(
    text: str, language: str | None, mode: Mode = "redact", key: bytes | None = None
) -> FilteredText:
    """``text`` with every finding replaced by its type (``<PHONE>``, ``<HEALTH>``; identifiers
    pseudonymised in mode ``pseudonymise``), and, when it names a health matter, the text with
    only the identifiers replaced (``health_text``, category ``health``)."""
    from custos.privacy.pii.findings import HEALTH

    pii = engine()
    lang = _language(language)
    found = pii.analyze(text, lang)
    hidden = pii.redact(text, lang, mode, key, {HEALTH: "redact"}, findings=found)
    if not any(f.entity_type == HEALTH for f in found):
        return hidden, None
    return hidden, pii.redact(text, lang, mode, key, {HEALTH: "keep"}, findings=found)


class TextFilters:
    """The free-text filters of one pseudonymisation key file, by policy name (``redact``,
    ``pseudonymise``): what ingestion applies to free text. The key is read on first use and
    kept by this object, not by the process."""

    def __init__(self, key_file: str | Path) -> None:
        self.key_file = str(Path(key_file).expanduser())
        self._key: bytes | None = None

    @classmethod
    def of(cls, settings: Settings) -> TextFilters:
        """The filters of the settings' ``secret_key_file``."""
        return cls(settings.secret_key_file)

    def by_policy(self) -> dict[str, Callable[[str, str | None], FilteredText]]:
        """Each filter under the name of its policy."""
        return {"redact": self.redact, "pseudonymise": self.pseudonymise}

    def redact(self, text: str, language: str | None) -> FilteredText:
        """Every finding replaced by its type (see :func:`filter_text`)."""
        return filter_text(text, language)

    def pseudonymise(self, text: str, language: str | None) -> FilteredText:
        """Identifiers pseudonymised under this key, other findings replaced by their type."""
        if self._key is None:
            self._key = load_or_create_key(self.key_file)
        return filter_text(text, language, "pseudonymise", self._key)


def text_filter(settings: Settings, policy: str) -> TextFilter | None:
    """The filter of a free-text policy, for an ingestion's row context (None for ``keep``);
    ``pseudonymise`` with the key of ``settings.secret_key_file``."""
    return TextFilters.of(settings).by_policy().get(policy)


def check_policy(policy: str) -> str:
    """The policy, or a clear error naming the choices."""
    if policy not in POLICIES:
        raise InputError(
            f"unknown free-text policy {policy!r}",
            hint="use --pii redact (default), pseudonymise or keep",
        )
    return policy


@dataclass
class ScanReport:
    """What a scan found: texts read, texts with findings, findings per entity type."""

    texts: int = 0
    with_findings: int = 0
    findings: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return {
            "texts": self.texts,
            "with_findings": self.with_findings,
            "findings": dict(sorted(self.findings.items())),
        }


def _scan(texts: Any) -> ScanReport:
    report = ScanReport()
    pii = engine()
    for text, language in texts:
        if not isinstance(text, str) or not text.strip():
            continue
        report.texts += 1
        found = pii.scan(text, _language(language))
        if found:
            report.with_findings += 1
            report.findings.update(found)
    return report


def scan_file(path: Path, *, text_column: str | None = None) -> ScanReport:
    """Findings per entity type in a file's free text (nothing is changed or stored)."""
    from custos.ingest.readers import FILE_TYPES, reader_for

    if not path.exists():
        raise InputError(f"no file {path}", hint=f"give the path of a {FILE_TYPES} file")
    reader = reader_for(path, 10_000)
    found: list[tuple[Any, Any]] = []
    columns = [text_column] if text_column else ["text", "notes", "comment", "message", "body"]
    for batch in reader.batches():
        for row in batch:
            if row.values is None:
                continue
            column = next((c for c in columns if row.values.get(c)), None)
            if column:
                language = row.values.get("language") or row.values.get("lang")
                found.append((row.values[column], language))
    return _scan(found)


def scan_source(app: Custos, source: str) -> ScanReport:
    """Findings per entity type in the stored free text of a source (e.g. kept as is): the
    interactions' text and the free-text extra columns of its records and interactions (tagged
    ``free_text`` by the map file, or reading as prose), as ingestion filters them."""
    with app.store.read() as conn:
        source_id = conn.execute(select(t.sources.c.id).where(t.sources.c.name == source)).scalar()
        if source_id is None:
            raise InputError(f"no source named {source!r}", hint="see `custos stats`")
        texts: list[tuple[Any, Any]] = [
            tuple(row)
            for row in conn.execute(
                select(t.interactions.c.text, t.interactions.c.language).where(
                    t.interactions.c.source_id == source_id
                )
            )
        ]
        tagged = {
            column
            for column, category in source_categories(conn).get(source, {}).items()
            if category == "free_text"
        }
        for table in (t.records, t.interactions):
            query = select(table.c.extra).where(
                table.c.source_id == source_id, table.c.extra.is_not(None)
            )
            for (extra,) in conn.execute(query):
                for column, value in orjson.loads(extra).items():
                    if column in tagged or reads_as_prose(value):
                        texts.append((value, None))
    return _scan(texts)
