"""``custos.audit``: the tamper-evident audit log, read and checked."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select

from custos.core.errors import StoreError
from custos.service import reads
from custos.service.facades.base import Facade, Result
from custos.store import audit
from custos.store import tables as t

#: an entry naming more profiles than this lists them as a count
SUBJECTS_LISTED = 20


@dataclass(frozen=True, slots=True)
class AuditEntry(Result):
    """One entry of the audit log (who did what, for which purpose, to whom, when)."""

    id: int
    at: str
    actor: str
    action: str
    purpose: str | None
    #: the profile ids it touched, or "N profiles" past :data:`SUBJECTS_LISTED`
    subjects: list[str] | str
    detail: Mapping[str, Any]


class AuditFacade(Facade):
    """The audit log: ``custos.audit.entries()``, ``.verify()``, ``.checkpoint()``."""

    def verify(self, checkpoints: Iterable[Path] = ()) -> audit.Finding | None:
        """What shows the audit log was changed, truncated or rewritten (checked against its
        key, its checkpoint file and any exported ``checkpoints``), or None when intact."""
        anchor = self._app.store.audit_anchor
        assert anchor is not None
        extra = [audit.Checkpoint.load(path, anchor.key) for path in checkpoints]
        with self._app.store.read() as conn:
            return audit.verify(conn, anchor, extra)

    def checkpoint(self) -> bytes:
        """The signed head of the verified audit log (JSON), also recorded in the checkpoint
        file; refused when the log does not verify."""
        anchor = self._app.store.audit_anchor
        assert anchor is not None
        with self._app.store.read() as conn:
            finding = audit.verify(conn, anchor)
            if finding is not None:
                raise StoreError(finding.reason, hint="see custos audit verify")
            head = audit.head(conn)
        anchor.advance(head)
        return head.signed(anchor.key)

    def entries(self, *, profile: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Audit entries, newest first, optionally those that touched one profile."""
        wanted = self._app.find_profile(profile) if profile else None
        out: list[AuditEntry] = []
        with self._app.store.read() as conn:
            query = select(t.audit_log).order_by(t.audit_log.c.id.desc())
            result = conn.execution_options(yield_per=500).execute(query)
            for row in result:
                detail = orjson.loads(row.detail or "{}")
                subjects = reads.entry_subjects(row.subjects, detail)
                if wanted and wanted not in subjects:
                    continue
                detail.pop("subjects_z", None)
                out.append(
                    AuditEntry(
                        id=row.id,
                        at=row.at.isoformat(),
                        actor=row.actor,
                        action=row.action,
                        purpose=row.purpose,
                        subjects=subjects
                        if len(subjects) <= SUBJECTS_LISTED
                        else f"{len(subjects)} profiles",
                        detail=detail,
                    )
                )
                if len(out) >= limit:
                    break
            result.close()  # leaving early: release the server-side cursor (PostgreSQL)
        return out
