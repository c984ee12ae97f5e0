"""Incremental resolution: attach the records and interactions that belong to no profile yet.

Nothing is re-run over the whole store. Candidates come from indexes: the profiles holding one
of a new record's identifiers (``profile_identifiers``) and the records sharing one of its
blocking keys (names, birth date and surname, postcode and first name, street; see
:data:`~custos.identity.writer.MATCH_INDEXES`). The new rows and every member of those profiles
are planned again through the same plan as a full run
(:func:`~custos.identity.clustering.plan_profiles`: people's decisions, then exact identifiers,
then matches strongest first, refusing incoherent clusters), the saved model scoring their pairs
(Splink's ``predict_within``): a profile made before the evidence that it holds two persons
arrived (the son's shop account that shows the landline to be the family's) is split as a full
run would split it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, func, select, tuple_

from custos.core.phones import digits_key, line_kind, stored_forms
from custos.core.settings import Settings
from custos.identity.clustering import History, ProfilePlan, plan_profiles, scoring_threshold
from custos.identity.exact import exact_edges
from custos.identity.graph import Edge, Node
from custos.identity.loading import (
    arrow_table,
    index_quotes,
    join_phone_forms,
    load,
    quoting,
    stored_anchors,
)
from custos.identity.models import SavedModel
from custos.identity.resolve import ResolveSummary, decisions
from custos.identity.snapshot import SNAPSHOT_ATTEMPTS, SnapshotMark, recheck_marks, unmark
from custos.identity.writer import ProfileWriter, chunks
from custos.store import Store, meta
from custos.store import tables as t


def _blocked_records(conn: Connection, match: dict[str, list[Any]]) -> set[int]:
    """Existing records and interactions sharing a blocking key with one of the new rows
    (index look-ups)."""
    rows = list(
        zip(
            *(match[k] for k in ("first_name", "surname", "dob", "postcode", "street")), strict=True
        )
    )
    found: set[int] = set()
    for table in (t.records, t.interactions):
        column = table.c
        keys: dict[tuple[Any, ...], set[tuple[str, ...]]] = defaultdict(set)
        by_last: set[tuple[str, str]] = set()
        by_first: set[tuple[str, str]] = set()
        for first, last, dob, postcode, street in rows:
            if first and last:
                keys[(column.last_name_key, column.first_name_key)].add((last, first))
                if not dob and not postcode and not street:
                    # a call note or an order: its name with a typo in either part (as the
                    # matcher's blocking rules for rows without birth date or place)
                    by_last.add((last, first[:1]))
                    by_first.add((first, last[:3]))
            if dob and last:
                keys[(column.date_of_birth, column.last_name_key)].add((dob, last))
            if dob and first:
                keys[(column.date_of_birth, column.first_name_key)].add((dob, first))
            if dob and postcode:
                keys[(column.date_of_birth, column.postcode)].add((dob, postcode))
            if postcode and first:
                keys[(column.postcode, column.first_name_key)].add((postcode, first))
            if street:
                keys[(column.street_key,)].add((street,))
        for columns, values in keys.items():
            for chunk in chunks(values):
                if len(columns) == 1:
                    clause = columns[0].in_([v[0] for v in chunk])
                else:
                    clause = tuple_(*columns).in_(chunk)
                query = select(column.raw_id).where(clause)
                if table is t.interactions:  # what its partial indexes cover
                    query = query.where(columns[0].is_not(None))
                found.update(conn.execute(query).scalars())
        # one part of the name exact, the other starting alike: the first name's initial, the
        # surname's first three letters (the index finds the exact part)
        for exact_part, other, size, wanted in (
            (column.last_name_key, column.first_name_key, 1, by_last),
            (column.first_name_key, column.last_name_key, 3, by_first),
        ):
            for chunk in chunks(wanted):
                query = select(column.raw_id).where(
                    exact_part.in_({v for v, _ in chunk}),
                    func.substr(other, 1, size).in_({p for _, p in chunk}),
                )
                found.update(conn.execute(query).scalars())
    return found


def _residents(conn: Connection, new: list[Node], old: list[Node]) -> set[int]:
    """Records on the streets of the ``old`` rows whose landline a ``new`` row without an
    address carries (index look-ups; most runs have none)."""
    calling = {
        value if kind == "phone~" else digits_key(value)
        for node in new
        if not node.address
        for kind, value in node.identifiers
        if kind.startswith("phone")
    }
    if not calling:
        return set()
    streets = {
        n.address.split("|", 1)[0]
        for n in old
        if n.address
        and any(
            kind == "phone" and digits_key(value) in calling and line_kind(value) == "fixed"
            for kind, value in n.identifiers
        )
    }
    found: set[int] = set()
    column = t.records.c
    for chunk in chunks(streets):
        found.update(
            conn.execute(select(column.raw_id).where(column.street_key.in_(chunk))).scalars()
        )
    return found


def _profiles_of(conn: Connection, raw_ids: Iterable[int], nodes: list[Node]) -> set[str]:
    """Profiles holding one of these records, or one of the nodes' identifiers."""
    members, identifier = t.profile_members.c, t.profile_identifiers.c
    found: set[str] = set()
    for chunk in chunks(raw_ids):
        query = select(members.profile_id).where(members.raw_id.in_(chunk))
        found.update(conn.execute(query).scalars())
    identifiers = {ident for node in nodes for ident in node.identifiers if ident[0] != "phone~"}
    # A phone meets the same number stored in another form (with or without its country): a
    # national number any E.164 form, an E.164 number its national forms, when the store holds
    # any (a range of the index: national digits sort after "+").
    national = (
        conn.execute(
            select(identifier.value)
            .where(identifier.kind == "phone", identifier.value >= "0")
            .limit(1)
        )
        .scalars()
        .first()
        is not None
    )
    identifiers |= {
        ("phone", form)
        for kind, value in list(identifiers)
        if kind == "phone" and (national or not value.startswith("+"))
        for form in stored_forms(value)
    }
    for chunk in chunks(identifiers):
        query = select(identifier.profile_id).where(
            tuple_(identifier.kind, identifier.value).in_(chunk)
        )
        found.update(conn.execute(query).scalars())
    return found


def attach(
    store: Store, settings: Settings, saved: SavedModel, *, actor: str = "custos resolve"
) -> ResolveSummary:
    """Attach every record and interaction not yet in a profile (or marked for a recheck);
    returns what changed (its ``touched`` profiles and the graph version before, for the
    consent cache).

    As a full resolution (:func:`~custos.identity.resolve.resolve`): candidates are found,
    scored and clustered from a snapshot, and the write lock is taken only to write the result
    (computed again when the store changed in a way the result cannot absorb)."""
    started = time.perf_counter()
    for attempt in range(SNAPSHOT_ATTEMPTS + 1):
        summary = ResolveSummary(mode="incremental", model_version=saved.version)
        if attempt < SNAPSHOT_ATTEMPTS:
            with store.read(snapshot=True) as conn:
                work = _compute(conn, settings, saved, summary)
            if not work.nodes and not work.rechecked:
                break  # nothing to attach: no write at all
            locked = time.perf_counter()
            with store.write() as conn:
                if SnapshotMark.read(conn, work.mark.highest) != work.mark:
                    continue
                _write(store, conn, settings, work, summary, actor)
        else:
            locked = time.perf_counter()
            with store.write() as conn:
                work = _compute(conn, settings, saved, summary)
                _write(store, conn, settings, work, summary, actor)
        summary.phases["locked"] = time.perf_counter() - locked
        break
    summary.seconds = time.perf_counter() - started
    return summary


@dataclass
class _Work:
    """An incremental resolution computed from one snapshot (no nodes: nothing to attach)."""

    mark: SnapshotMark
    rechecked: dict[int, Any]
    nodes: list[Node] = field(default_factory=list)
    new_ids: set[int] = field(default_factory=set)
    history: History = field(default_factory=History)
    rows: dict[int, Any] = field(default_factory=dict)
    planned: ProfilePlan | None = None


def _compute(
    conn: Connection, settings: Settings, saved: SavedModel, summary: ResolveSummary
) -> _Work:
    """Load the new rows and their candidates, score, link and cluster them (reads only)."""
    clock = time.perf_counter()
    mark = SnapshotMark.read(conn)
    new_nodes, new_rows, new_match = load(conn, new_only=True)
    # (loaded now, whatever becomes of them: unmarked when the result is written)
    rechecked = recheck_marks(conn)
    if not new_nodes:
        return _Work(mark, rechecked)
    new_ids = {n.raw_id for n in new_nodes}
    # The older notes that quote a new row (the calls about an order that arrives only now):
    # the profile of one in a profile is touched below; one in none (nothing linked it while
    # its order was missing) is planned as a new row, as a full run plans it.
    about = quoting(conn, new_ids)
    if unplaced := about - _placed(conn, about):
        more_nodes, more_rows, more_match = load(conn, raw_ids=sorted(unplaced))
        new_nodes += more_nodes
        new_rows |= more_rows
        for name, values in more_match.items():
            new_match[name].extend(values)
        new_ids.update(n.raw_id for n in more_nodes)
    summary.records = len(new_match["unique_id"])
    summary.interactions = sum(1 for n in new_nodes if not n.is_record)
    # (a record re-ingested with other values is loaded as new, and its own profile is
    # touched: it stays there, and its golden record is rebuilt from the new values)
    # (and the profiles of the rows a new note quotes, the order a call is about, and of the
    # older notes that quote a new row)
    quoted = {target for node in new_nodes for target in node.refers} | about
    touched = _profiles_of(conn, _blocked_records(conn, new_match) | new_ids | quoted, new_nodes)
    history = _history(conn, touched)
    old_nodes, old_rows, old_match = load(conn, raw_ids=list(history.previous.keys() - new_ids))
    # A new row without an address that carries a phone (a call) is judged among those who live
    # where that phone's records do (who else could have called from the family's line), as in
    # a full run: their profiles are candidates too.
    if more := _profiles_of(conn, _residents(conn, new_nodes, old_nodes), []) - touched:
        touched |= more
        history = _history(conn, touched)
        old_nodes, old_rows, old_match = load(conn, raw_ids=list(history.previous.keys() - new_ids))
    summary.phases["candidates"] = time.perf_counter() - clock
    clock = time.perf_counter()
    nodes = join_phone_forms(old_nodes + new_nodes)
    exact = exact_edges(
        nodes,
        max_persons=settings.max_persons_per_identifier,
        max_records=settings.max_records_per_identifier,
    )
    probable: list[Edge] = []
    if settings.probabilistic_matching:
        # every pair of the new rows and the touched profiles' members, old pairs too: the
        # plan decides their profiles again, as a full run would, and new evidence may show
        # that a profile holds two persons
        rows_match = {name: old_match[name] + new_match[name] for name in new_match}
        probable = saved.scorer.predict_within(
            arrow_table(rows_match, exact), threshold=scoring_threshold(settings)
        )
    summary.phases["predict"] = time.perf_counter() - clock
    clock = time.perf_counter()
    rows = old_rows | new_rows
    decided = decisions(conn)
    while True:
        planned = plan_profiles(
            nodes,
            exact,
            probable,
            decided,
            settings,
            history,
            partial(stored_anchors, conn),
            new=new_ids,
        )
        # a new id derived from a record that once anchored a profile outside this run's (one
        # merged away long ago): derived again, past it
        taken = _taken(conn, planned.assigned.created)
        if not taken:
            break
        history.taken.update(taken)
    summary.count_links(exact, planned)
    summary.phases["cluster"] = time.perf_counter() - clock
    return _Work(mark, rechecked, nodes, new_ids, history, rows, planned)


def _placed(conn: Connection, raw_ids: Iterable[int]) -> set[int]:
    """Those of ``raw_ids`` that are members of a profile."""
    members = t.profile_members.c
    found: set[int] = set()
    for chunk in chunks(raw_ids):
        found.update(
            conn.execute(select(members.raw_id).where(members.raw_id.in_(chunk))).scalars()
        )
    return found


def _taken(conn: Connection, ids: Iterable[str]) -> set[str]:
    """Those of ``ids`` that the store already gave a profile."""
    profiles = t.profiles.c
    found: set[str] = set()
    for chunk in chunks(ids):
        found.update(conn.execute(select(profiles.id).where(profiles.id.in_(chunk))).scalars())
    return found


def _history(conn: Connection, touched: set[str]) -> History:
    """The members of the ``touched`` profiles and when those were created (the profiles an
    incremental run may add to or merge)."""
    members, profiles = t.profile_members.c, t.profiles.c
    previous: dict[int, str] = {}
    for chunk in chunks(touched):
        query = select(members.raw_id, members.profile_id).where(members.profile_id.in_(chunk))
        previous.update(conn.execute(query).all())
    created_at: dict[str, datetime] = {}
    for chunk in chunks(touched):
        query = select(profiles.id, profiles.created_at).where(profiles.id.in_(chunk))
        created_at.update(conn.execute(query).all())
    return History(previous, created_at, set(created_at))


def _write(
    store: Store,
    conn: Connection,
    settings: Settings,
    work: _Work,
    summary: ResolveSummary,
    actor: str,
) -> None:
    """Write an incremental resolution (inside the write transaction)."""
    unmark(conn, work.rechecked)
    index_quotes(conn, work.new_ids)
    if work.planned is None:
        return
    summary.previous_graph = meta.get(conn, meta.GRAPH_VERSION) or "0"
    writer = ProfileWriter(store, conn, settings, actor, summary.phases)
    writer.attach(work.planned, work.history, work.rows, nodes=work.nodes, new_ids=work.new_ids)
    summary.linked_interactions = summary.interactions
    summary.count_profiles(work.planned)
    assigned = work.planned.assigned
    summary.touched = set(assigned.cluster_ids) | set(assigned.merged) | assigned.retired
