"""Guarded reads: every read of personal data goes through the consent guard and the audit log."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import closing
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, select

from custos.consent.guard import Access, Guard, filter_attributes
from custos.consent.taxonomy import LawfulBasis
from custos.core.errors import AccessDenied
from custos.identity import profiles
from custos.store import audit
from custos.store import golden as golden_store
from custos.store import tables as t

if TYPE_CHECKING:
    from custos.service.app import Custos

#: Subject lists longer than this are stored compressed in the audit entry.
INLINE_SUBJECTS = 1000


def record_access(
    app: Custos,
    *,
    actor: str,
    action: str,
    purpose: str,
    subjects: Sequence[str],
    fields: Sequence[str],
    refused: int,
    detail: Mapping[str, object] | None = None,
) -> None:
    """Append one audit entry for a guarded read (ids, field names and counts only, never
    values); ``detail`` adds the caller's own (e.g. a release's k, l and override reason)."""
    entry: dict[str, object] = {
        **(detail or {}),
        "fields": sorted(set(fields)),
        "refused": refused,
        "count": len(subjects),
    }
    listed: Sequence[str] = subjects
    if len(subjects) > INLINE_SUBJECTS:
        # Exports list profiles in id order already; level 1 keeps a million ids to a second.
        packed = zlib.compress("\n".join(subjects).encode(), 1)
        entry["subjects_z"] = base64.b64encode(packed).decode()
        listed = ()
    with app.store.write() as conn:
        audit.append(
            conn, actor=actor, action=action, purpose=purpose, subjects=listed, detail=entry
        )


def entry_subjects(subjects: str | None, detail: dict[str, Any]) -> list[str]:
    """The profile ids an audit entry names (inline or compressed)."""
    if detail.get("subjects_z"):
        return zlib.decompress(base64.b64decode(detail["subjects_z"])).decode().split("\n")
    return [s for s in (subjects or "").split(",") if s]


def guarded_profile(
    app: Custos, profile_id: str, purpose: str | None, *, actor: str, as_of: datetime | None = None
) -> dict[str, Any]:
    """One profile as ``purpose`` may see it; refused (and audited) when it may not."""
    guard = Guard(app.taxonomy)
    with app.store.read() as conn:
        access = guard.access(conn, purpose, [profile_id], as_of=as_of)
        detail = profiles.profile_detail(conn, profile_id) if not access.refused else None
    if detail is None:
        record_access(
            app,
            actor=actor,
            action="profile.show",
            purpose=access.purpose.name,
            subjects=[],
            fields=[],
            refused=1,
        )
        raise AccessDenied(
            f"purpose {access.purpose.name} ({access.purpose.basis.value}) has no lawful basis to read "
            "this profile",
            hint="the person has not consented to this purpose, or has objected",
        )
    shown = filter_detail(access, detail)
    fields = [g["attribute"] for g in shown["golden"]] + list(shown["identifiers"])
    record_access(
        app,
        actor=actor,
        action="profile.show",
        purpose=access.purpose.name,
        subjects=[profile_id],
        fields=fields,
        refused=0,
    )
    return shown


def filter_detail(access: Access, detail: dict[str, Any]) -> dict[str, Any]:
    """Remove from a profile detail every field the purpose may not see, and every mention of a
    source it may not know of (see :func:`source_shown`): that source's records, interactions
    and merge evidence go, and a golden value from it keeps no provenance."""
    pid = detail["profile_id"]
    allowed = access.field_allowed

    def shown(source: object) -> bool:
        return source_shown(access, pid, str(source or ""))

    out = dict(detail)
    out["purpose"] = access.purpose.name
    out["golden"] = [
        g
        if shown(g.get("source"))
        else g | {"source": None, "record_id": None, "observed_at": None}
        for g in filter_attributes(access, pid, detail["golden"])
    ]
    out["identifiers"] = {k: v for k, v in detail["identifiers"].items() if allowed(pid, k)}
    keep = ("source", "record_id")
    out["records"] = [
        {k: v for k, v in r.items() if k in keep or allowed(pid, k, r.get("source"))}
        for r in detail["records"]
        if shown(r.get("source"))
    ]
    if allowed(pid, "timestamp") or allowed(pid, "text"):
        out["interactions"] = [
            _interaction_shown(access, pid, e)
            for e in detail["interactions"]
            if shown(e.get("source"))
        ]
        if any(not shown(source) for source in access.source_categories):
            # the total would count the hidden source's interactions beyond those listed
            out["interaction_count"] = len(out["interactions"])
    else:
        out["interactions"], out["interaction_count"] = [], 0
    out["evidence"] = [
        e
        for e in detail.get("evidence", [])
        if all(shown(str(e.get(side, "")).partition(":")[0]) for side in ("left", "right"))
    ]
    return out


def _interaction_shown(access: Access, pid: str, item: dict[str, Any]) -> dict[str, Any]:
    """An interaction as the purpose may see it: its allowed fields, and the text it may see
    (:meth:`~custos.consent.guard.Access.text_shown`)."""
    source = item.get("source")
    out = {
        k: v
        for k, v in item.items()
        if k not in ("text", "health_text")
        and (k in ("source", "record_id") or access.field_allowed(pid, k, source))
    }
    _, text = access.text_shown(pid, item.get("text"), item.get("health_text"), source)
    if text is not None:
        out["text"] = text
    return out


def source_shown(access: Access, profile_id: str, source: str) -> bool:
    """May the purpose learn that this person has a record in ``source``? Only when it may see
    every column the source's map tags with a category: the name of a source that holds, say,
    health data (``clinic``) tells a purpose that may not see health that the person is a
    patient."""
    tagged = access.source_categories.get(source, {})
    return all(access.field_allowed(profile_id, column, source) for column in tagged)


def export_profiles(app: Custos, purpose: str | None, *, actor: str) -> Iterator[dict[str, Any]]:
    """Every profile ``purpose`` may see, with the golden attributes and identifiers it may see.

    One profile per item: ``profile_id``, the allowed attributes, ``identifiers``. The export is
    audited as one entry (ids of the profiles exported, fields, how many were refused).
    """
    guard = Guard(app.taxonomy)
    exported: list[str] = []
    counts = {"refused": 0, "explicit": 0}
    access: Access | None = None
    try:
        with app.store.read() as conn:
            access = guard.access(conn, purpose)
            yield from _exported(conn, access, exported, counts)
    finally:
        # Audited in a finally: an export stopped early (a consumer that takes one row, a
        # closed pipe, a failed write) is audited with the profiles it handed out.
        if access is not None:
            _audit_export(app, access, actor, exported, counts)


def _audit_export(
    app: Custos, access: Access, actor: str, exported: list[str], counts: dict[str, int]
) -> None:
    """The audit entry of an export: the profiles handed out, the fields it could carry."""
    decided = [(a, r) for (a, _), r in access.rules.items()]
    explicit = bool(counts["explicit"])
    fields = {a for a, r in decided if r == "yes" or (explicit and r == "explicit")}
    record_access(
        app,
        actor=actor,
        action="export.profiles",
        purpose=access.purpose.name,
        subjects=exported,
        fields=sorted(fields),
        refused=counts["refused"],
    )


def _exported(
    conn: Connection, access: Access, exported: list[str], counts: dict[str, int]
) -> Iterator[dict[str, Any]]:
    """The rows of :func:`export_profiles`; each profile's id is in ``exported`` before its row
    is handed out, and ``counts`` has the refused and whether any had explicit consent."""
    pi = t.profile_identifiers
    # Every active profile has a golden record (resolve writes one for every cluster and
    # removes those of merged-away ids), so the golden stream drives the export; the
    # identifier stream, in the same order, is merged in.
    golden = golden_store.documents(conn)
    streamed = conn.execution_options(yield_per=20_000).execute(
        select(pi.c.profile_id, pi.c.kind, pi.c.value).order_by(
            pi.c.profile_id, pi.c.kind, pi.c.value
        )
    )
    with streamed, closing(golden):  # closed when the export stops early, too
        yield from _rows(access, golden, _grouped(streamed), exported, counts)


def _rows(
    access: Access,
    golden: Generator[tuple[str, str]],
    identifiers: Iterator[tuple[str, list[Any]]],
    exported: list[str],
    counts: dict[str, int],
) -> Iterator[dict[str, Any]]:
    """The export's rows from the golden stream and the identifier stream (both in profile id
    order)."""
    pending = next(identifiers, None)
    rules, rule_of = access.rules, access.rule
    # attribute → may everyone allowed see it / only persons with explicit consent?
    shown_to_all = _Decided(lambda name: rule_of(name) == "yes")
    shown_to_explicit = _Decided(lambda name: rule_of(name) == "explicit")
    shown_to_either = _Decided(lambda name: shown_to_all[name] or shown_to_explicit[name])
    visible = _Decided(
        lambda key: tuple(a for a in key[0] if (shown_to_either if key[1] else shown_to_all)[a])
    )
    loads = orjson.loads
    by_source = bool(access.source_categories)
    granted = access.granted
    basis = access.purpose.basis
    # pid → _REFUSED, or whether the person gave explicit consent: one look-up per profile
    get = granted.get
    # (consent, the common basis, is looked up inline: fail closed, no grant, no row)
    decide: Callable[[str], Any] | None = None
    if basis is LawfulBasis.LEGITIMATE_INTEREST:
        objected = access.objected
        decide = lambda pid: _REFUSED if pid in objected else get(pid, False)  # noqa: E731
    elif basis is not LawfulBasis.CONSENT:
        allowed = access.allowed
        decide = lambda pid: get(pid, False) if allowed(pid) else _REFUSED  # noqa: E731
    for pid, document in golden:
        idents: list[Any] = []
        while pending is not None and pending[0] < pid:
            pending = next(identifiers, None)
        if pending is not None and pending[0] == pid:
            idents = pending[1]
            pending = next(identifiers, None)
        explicit = get(pid, _REFUSED) if decide is None else decide(pid)
        if explicit is _REFUSED:
            counts["refused"] += 1
            continue
        if explicit:
            counts["explicit"] = 1
        item: dict[str, Any] = {"profile_id": pid}
        if by_source:
            for name, (value, source) in golden_store.values_with_source(document).items():
                rule = rules.get((name, source)) or rule_of(name, source)
                if rule == "yes" or (explicit and rule == "explicit"):
                    item[name] = value
        else:  # no tagged columns: the attribute alone decides (the common, fast case)
            values = loads(document)["values"]
            # the visible names of this set of attributes: most profiles share one set
            for name in visible[(tuple(values), explicit)]:
                item[name] = values[name][0]
        shown: dict[str, list[str]] = {}
        kind_shown = shown_to_either if explicit else shown_to_all
        for _, kind, value in idents:
            if kind_shown[kind]:
                shown.setdefault(kind, []).append(value)
        item["identifiers"] = shown
        exported.append(pid)
        yield item


_REFUSED = object()  # a person the purpose may not see (see export_profiles)


class _Decided(dict[Any, Any]):
    """A memo of a decision (per attribute, per set of attributes), filled on first use
    (lookups stay in C)."""

    def __init__(self, decide: Callable[[Any], Any]) -> None:
        super().__init__()
        self.decide = decide

    def __missing__(self, key: Any) -> Any:
        value = self[key] = self.decide(key)
        return value


def _grouped(rows: Any) -> Iterator[tuple[str, list[Any]]]:
    """Consecutive rows with the same first column, as (key, rows)."""
    key: str | None = None
    group: list[Any] = []
    for row in rows:
        if row[0] != key:
            if key is not None:
                yield key, group
            key, group = row[0], []
        group.append(row)
    if key is not None:
        yield key, group
