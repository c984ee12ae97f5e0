"""A materialised copy of the consent states, so that bulk reads need not replay the ledger.

It is derived data, never the truth: each purpose's copy records the last ledger event and the
identity-graph version it was computed from. A reader checks both against its own snapshot:
a newer graph means the copy is ignored; newer events, and states whose recheck time (an
expiry, a future-dated event) has passed, are recomputed from the ledger for the persons they
concern. So a withdrawal acts on the next read even before the copy is refreshed; refreshing
(after resolution and after consent is recorded) only keeps reads fast.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, delete, func, select, update

from custos.consent import ledger
from custos.consent.ledger import ConsentState
from custos.store import Store, meta
from custos.store import tables as t


def _mark(conn: Connection, purpose: str) -> tuple[int, str] | None:
    row = conn.execute(
        select(t.consent_state_marks.c.last_event_id, t.consent_state_marks.c.graph_version).where(
            t.consent_state_marks.c.purpose == purpose
        )
    ).first()
    return (int(row[0]), str(row[1])) if row else None


def _last_event(conn: Connection, purpose: str) -> int:
    return int(
        conn.execute(
            select(func.coalesce(func.max(t.consent_events.c.id), 0)).where(
                t.consent_events.c.purpose == purpose
            )
        ).scalar_one()
    )


def _graph(conn: Connection) -> str:
    return meta.get(conn, meta.GRAPH_VERSION) or "0"


def refresh(store: Store, conn: Connection, purpose: str, *, full: bool = False) -> int:
    """Bring the copy for ``purpose`` up to date (inside a write transaction); returns how many
    persons were recomputed."""
    now = datetime.now(UTC)
    mark, graph, last = _mark(conn, purpose), _graph(conn), _last_event(conn, purpose)
    if full or mark is None or mark[1] != graph:
        computed = ledger.bulk_states(conn, purpose, None, now)
        _rewrite(store, conn, purpose, None, computed)
        touched = len(computed)
    else:
        owners = ledger.owners_of_events(conn, mark[0], purpose) if last > mark[0] else set()
        owners |= set(
            conn.execute(
                select(t.consent_states.c.profile_id).where(
                    t.consent_states.c.purpose == purpose, t.consent_states.c.recheck_at <= now
                )
            ).scalars()
        )
        if owners:
            computed = (
                ledger.bulk_states(conn, purpose, owners, now)
                if len(owners) > 500
                else _few(conn, purpose, owners, now)
            )
            _rewrite(store, conn, purpose, owners, computed)
        touched = len(owners)
    conn.execute(delete(t.consent_state_marks).where(t.consent_state_marks.c.purpose == purpose))
    conn.execute(
        t.consent_state_marks.insert().values(
            purpose=purpose, last_event_id=last, graph_version=graph, computed_at=now
        )
    )
    return touched


def refresh_profiles(store: Store, conn: Connection, profile_ids: set[str], *, was: str) -> int:
    """After an incremental change of the identity graph (from version ``was``): recompute just
    these profiles' states in every copy that was current; other copies stay stale and are
    rebuilt whole by :func:`refresh`. Returns how many copies were patched."""
    now, graph = datetime.now(UTC), _graph(conn)
    patched = 0
    for purpose, mark_graph in conn.execute(
        select(t.consent_state_marks.c.purpose, t.consent_state_marks.c.graph_version)
    ).all():
        if mark_graph != was:
            continue
        active = set(
            conn.execute(
                select(t.profiles.c.id).where(
                    t.profiles.c.id.in_(sorted(profile_ids)), t.profiles.c.status == "active"
                )
            ).scalars()
        )
        computed = _few(conn, purpose, active, now) if active else {}
        _rewrite(store, conn, purpose, profile_ids, computed)
        conn.execute(
            update(t.consent_state_marks)
            .where(t.consent_state_marks.c.purpose == purpose)
            .values(graph_version=graph)
        )
        patched += 1
    return patched


def _rewrite(
    store: Store,
    conn: Connection,
    purpose: str,
    profile_ids: set[str] | None,
    computed: dict[str, tuple[ConsentState, datetime | None]],
) -> None:
    """Replace the copy's rows of ``profile_ids`` (None: every one of ``purpose``) by the
    ``computed`` states."""
    states = t.consent_states
    if profile_ids is None:
        conn.execute(delete(states).where(states.c.purpose == purpose))
    else:
        for chunk in store.chunks(sorted(profile_ids)):
            conn.execute(
                delete(states).where(states.c.purpose == purpose, states.c.profile_id.in_(chunk))
            )
    rows = [(pid, s.status, s.explicit, s.since, recheck) for pid, (s, recheck) in computed.items()]
    names = ("profile_id", "status", "explicit", "since", "recheck_at")
    for i in range(0, len(rows), 50_000):
        batch = rows[i : i + 50_000]
        store.insert_many(conn, states, batch, names=names, const={"purpose": purpose})


def _few(
    conn: Connection, purpose: str, owners: set[str], now: datetime
) -> dict[str, tuple[ConsentState, datetime | None]]:
    events = ledger.events_by_profile(conn, purpose, sorted(owners))
    return {
        pid: (ledger.derive_state(found, now), ledger.recheck_time(found, now))
        for pid, found in events.items()
    }


def cached_decisions(
    conn: Connection, purpose: str, *, all_grants: bool = True, objections: bool = True
) -> tuple[dict[str, bool], set[str]] | None:
    """(granted person → explicit?, persons who objected) from the copy, completed from the
    ledger where this snapshot has newer events or due rechecks; None when the copy does not
    match the identity graph (the caller then derives everything from the ledger).

    A purpose that does not rest on consent needs only the explicit grants (special categories)
    and, on legitimate interest, the objections: ``all_grants``/``objections`` skip the rest.
    """
    mark = _mark(conn, purpose)
    if mark is None or mark[1] != _graph(conn):
        return None
    now = datetime.now(UTC)
    states = t.consent_states

    def ids(*where: object) -> list[str]:
        # A million one-column rows: read them on the driver's cursor, in this transaction,
        # without SQLAlchemy's per-row machinery (the values are our own constants, inlined).
        query = select(states.c.profile_id).where(states.c.purpose == purpose, *where)  # type: ignore[arg-type]
        return [row[0] for row in Store.of(conn).fetch_tuples(conn, query)]

    # Single-column reads: a million states load in about a second.
    granted: dict[str, bool] = {}
    if all_grants:
        granted = dict.fromkeys(
            ids(states.c.status == ledger.GRANTED, states.c.explicit.is_(False)), False
        )
    granted.update(
        dict.fromkeys(ids(states.c.status == ledger.GRANTED, states.c.explicit.is_(True)), True)
    )
    objected = (
        set(ids(states.c.status.in_((ledger.DENIED, ledger.WITHDRAWN)))) if objections else set()
    )
    due = set(
        conn.execute(
            select(states.c.profile_id).where(
                states.c.purpose == purpose, states.c.recheck_at <= now
            )
        ).scalars()
    )
    if _last_event(conn, purpose) > mark[0]:
        due |= ledger.owners_of_events(conn, mark[0], purpose)
    if due:
        fresh = (
            _few(conn, purpose, due, now)
            if len(due) <= 500
            else ledger.bulk_states(conn, purpose, due, now)
        )
        for pid in due:
            granted.pop(pid, None)
            objected.discard(pid)
            state = fresh[pid][0] if pid in fresh else ledger.NO_RECORD
            if state.granted and (all_grants or state.explicit):
                granted[pid] = state.explicit
            elif state.objected and objections:
                objected.add(pid)
    return granted, objected
