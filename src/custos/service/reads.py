"""Guarded reads: every read of personal data goes through the consent guard and the audit log,
in one :class:`GuardSession`."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

import orjson
from sqlalchemy import Connection, select

from custos.consent.guard import Access, Guard, filter_attributes
from custos.core.errors import AccessDenied, CustosError
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
    fields: Iterable[str],
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


class GuardSession:
    """One guarded read, from the purpose named to the audit entry written.

    Opening it names the purpose (a missing or unknown one is refused, and not audited: there
    is no purpose to audit it under). Inside, the read asks the guard (:meth:`access`), records
    what it actually hands out (:meth:`handed`: a profile id and field names, before the data
    leaves) and what the guard refused (:attr:`refused`), or ends in a refusal
    (:meth:`refuse`). Leaving it writes the read's one audit entry, in a ``finally``: a
    stream stopped after one row, a closed pipe, a failed write, an exception mid-stream and
    a refusal all leave an entry naming exactly what was handed out.

        with GuardSession(app, purpose, actor=actor, action="profile.show") as session:
            with app.store.read() as conn:
                access = session.access(conn, [profile_id])
            if not access.allowed(profile_id):
                session.refuse_person()
            ...
            session.handed(profile_id, fields)

    With ``audit_empty=False`` (a check before another read, which audits) the entry is written
    only when something was handed out or refused."""

    def __init__(
        self,
        app: Custos,
        purpose: str | None,
        *,
        actor: str,
        action: str,
        audit_empty: bool = True,
        detail: Mapping[str, object] | None = None,
    ) -> None:
        self.app = app
        self.guard = Guard(app.taxonomy)
        #: the purpose's field rules (no consent read): refuses an unknown purpose
        self.rules = self.guard.field_rules(purpose)
        self.purpose = self.rules.purpose.name
        self.actor = actor
        self.action = action
        self.audit_empty = audit_empty
        #: the caller's own entries in the audit detail (e.g. the rows of an id export)
        self.detail: Mapping[str, object] = detail or {}
        #: the profiles handed out, in order (appended to directly by streaming kernels)
        self.subjects: list[str] = []
        self.fields: set[str] = set()
        #: how many persons the guard refused (left out of the answer, or the whole read)
        self.refused = 0
        #: where the fields handed out are known only at the end (an export): asked then
        self.fields_later: Callable[[], Iterable[str]] | None = None
        self.denied = False
        self.closed = False

    def __enter__(self) -> GuardSession:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def access(
        self,
        conn: Connection,
        profile_ids: Sequence[str] | None = None,
        *,
        as_of: datetime | None = None,
    ) -> Access:
        """The guard's answer for the session's purpose (see :meth:`Guard.access`)."""
        return self.guard.access(conn, self.purpose, profile_ids, as_of=as_of)

    def handed(self, profile_id: str, fields: Iterable[str] = ()) -> None:
        """Record a profile (and the names of its fields) as handed out."""
        self.subjects.append(profile_id)
        self.fields.update(fields)

    def handed_all(
        self,
        profile_ids: Iterable[str],
        fields: Iterable[str] = (),
        *,
        refused: int = 0,
        detail: Mapping[str, object] | None = None,
    ) -> None:
        """Record a whole answer as handed out (a release's persons, before its files are
        written): from here the read is audited however it ends, even where it names no one;
        ``refused`` persons the guard left out, ``detail`` added to the entry's."""
        self.subjects.extend(profile_ids)
        self.fields.update(fields)
        self.refused += refused
        self.detail = {**self.detail, **(detail or {})}
        self.audit_empty = True

    def deny(
        self,
        *,
        refused: int = 1,
        fields: Iterable[str] = (),
        action: str | None = None,
        detail: Mapping[str, object] | None = None,
    ) -> None:
        """Mark the read refused, for a refusal the caller raises itself (a release that would
        not be safe, with its counts): audited as such when the session closes, under
        ``action`` where the refusal has its own (``release_refused``)."""
        self.denied = True
        self.refused += refused
        self.fields.update(fields)
        self.action = action or self.action
        self.detail = {**self.detail, **(detail or {})}

    def refuse(
        self,
        message: str,
        hint: str | None,
        *,
        refused: int = 1,
        fields: Iterable[str] = (),
        error: type[CustosError] = AccessDenied,
    ) -> NoReturn:
        """End the read refused (audited as such when the session closes)."""
        self.deny(refused=refused, fields=fields)
        raise error(message, hint=hint)

    def refuse_person(self) -> NoReturn:
        """Refuse a read of one person the purpose may not see (no lawful basis)."""
        purpose = self.rules.purpose
        self.refuse(
            f"purpose {purpose.name} ({purpose.basis.value}) has no lawful basis to read "
            "this profile",
            "the person has not consented to this purpose, or has objected",
        )

    def close(self) -> None:
        """Write the read's audit entry (once)."""
        if self.closed:
            return
        self.closed = True
        if not (self.audit_empty or self.subjects or self.denied):
            return
        later = self.fields_later() if self.fields_later is not None else ()
        record_access(
            self.app,
            actor=self.actor,
            action=self.action,
            purpose=self.purpose,
            subjects=self.subjects,
            fields=self.fields.union(later),
            refused=self.refused,
            detail=self.detail,
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
    with GuardSession(app, purpose, actor=actor, action="profile.show") as session:
        with app.store.read() as conn:
            access = session.access(conn, [profile_id], as_of=as_of)
            detail = profiles.profile_detail(conn, profile_id) if not access.refused else None
        if detail is None:
            session.refuse_person()
        shown = filter_detail(access, detail)
        session.handed(
            profile_id, [*(g["attribute"] for g in shown["golden"]), *shown["identifiers"]]
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
    audited as one entry (ids of the profiles handed out, fields, how many were refused),
    however it ends: a consumer that takes one row, a closed pipe, a failed write.
    """
    session = GuardSession(app, purpose, actor=actor, action="export.profiles")
    with session, app.store.read() as conn:
        access = session.access(conn)
        explicit: list[bool] = []  # non-empty once a person with explicit consent is out
        session.fields_later = lambda: _export_fields(access, bool(explicit))
        yield from _exported(conn, access, session, explicit)


def _export_fields(access: Access, explicit: bool) -> set[str]:
    """The fields an export could carry: those the purpose may see, with the special ones
    where a person with explicit consent was handed out."""
    return {a for (a, _), r in access.rules.items() if r == "yes" or (explicit and r == "explicit")}


def _exported(
    conn: Connection, access: Access, session: GuardSession, explicit: list[bool]
) -> Iterator[dict[str, Any]]:
    """The rows of :func:`export_profiles`; each profile is recorded in ``session`` as handed
    out before its row is, and ``explicit`` gets an item once a person with explicit consent
    was."""
    identifiers = t.profile_identifiers
    # Every active profile has a golden record (resolve writes one for every cluster and
    # removes those of merged-away ids), so the golden stream drives the export; the
    # identifier stream, in the same order, is merged in.
    golden = golden_store.documents(conn)
    streamed = conn.execution_options(yield_per=20_000).execute(
        select(identifiers.c.profile_id, identifiers.c.kind, identifiers.c.value).order_by(
            identifiers.c.profile_id, identifiers.c.kind, identifiers.c.value
        )
    )
    with streamed, closing(golden):  # closed when the export stops early, too
        yield from _rows(access, golden, _grouped(streamed), session, explicit)


def _rows(
    access: Access,
    golden: Generator[tuple[str, str]],
    identifiers: Iterator[tuple[str, list[Any]]],
    session: GuardSession,
    explicit_seen: list[bool],
) -> Iterator[dict[str, Any]]:
    """The export's rows from the golden stream and the identifier stream (both in profile id
    order), each profile shown as the guard decides (:func:`_export_decisions`)."""
    pending = next(identifiers, None)
    rules, rule_of = access.rules, access.rule
    shown_names, shown_kinds = _export_decisions(access)
    loads = orjson.loads
    by_source = bool(access.source_categories)
    allowed, explicit_of = access.allowed, access.granted.get
    handed = session.subjects.append
    for pid, document in golden:
        idents: list[Any] = []
        while pending is not None and pending[0] < pid:
            pending = next(identifiers, None)
        if pending is not None and pending[0] == pid:
            idents = pending[1]
            pending = next(identifiers, None)
        if not allowed(pid):
            session.refused += 1
            continue
        explicit = explicit_of(pid, False)
        if explicit and not explicit_seen:
            explicit_seen.append(True)
        item: dict[str, Any] = {"profile_id": pid}
        if by_source:
            for name, (value, source) in golden_store.values_with_source(document).items():
                rule = rules.get((name, source)) or rule_of(name, source)
                if rule == "yes" or (explicit and rule == "explicit"):
                    item[name] = value
        else:  # no tagged columns: the attribute alone decides (the common, fast case)
            values = loads(document)["values"]
            for name in shown_names[(tuple(values), explicit)]:
                item[name] = values[name][0]
        shown: dict[str, list[str]] = {}
        kind_shown = shown_kinds[explicit]
        for _, kind, value in idents:
            if kind_shown[kind]:
                shown.setdefault(kind, []).append(value)
        item["identifiers"] = shown
        handed(pid)
        yield item


class _Memo(dict[Any, Any]):
    """Kernel: a decision memoised per key. ``memo[key]`` is ``decide(key)``, worked out on
    first use (``__missing__``) and from then on a plain dict lookup, in C with no Python call:
    an export asks the same few questions once per profile, a million times over."""

    def __init__(self, decide: Callable[[Any], Any]) -> None:
        super().__init__()
        self.decide = decide

    def __missing__(self, key: Any) -> Any:
        value = self[key] = self.decide(key)
        return value


class _ExportDecisions(NamedTuple):
    """Kernel: the guard's decisions an export needs, per attribute rather than per profile
    (where no source column is tagged, the attribute alone decides), memoised (:class:`_Memo`).

    ``names[(attributes, explicit)]``: the attributes of this set (a golden document's, in its
    order) shown to a person with explicit consent or not; most profiles share one set, so
    this is one lookup per profile. ``kinds[explicit][kind]``: are identifiers of this kind
    shown (``kinds`` is indexed by the bool)."""

    names: _Memo
    kinds: tuple[_Memo, _Memo]


def _export_decisions(access: Access) -> _ExportDecisions:
    """The memoised export decisions of ``access`` (see :class:`_ExportDecisions`)."""
    to_all = _Memo(lambda name: access.rule(name) == "yes")
    to_explicit = _Memo(lambda name: to_all[name] or access.rule(name) == "explicit")
    kinds = (to_all, to_explicit)
    names = _Memo(lambda key: tuple(name for name in key[0] if kinds[key[1]][name]))
    return _ExportDecisions(names, kinds)


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
