"""Data-subject requests: access (Art. 15), portability (Art. 20), rectification (Art. 16),
restriction (Art. 18) and erasure (Art. 17, with the Art. 19 receipt).

Each request is tracked (:mod:`custos.privacy.dsr.requests`): its steps are marked done as they
succeed, so ``resume`` runs a failed request again from the step that failed. Requests are made
under the legal obligation to answer them (purpose ``legal_compliance`` in the audit log); the
guard's purpose filter does not apply, since the person is owed all of their data.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, select

from custos.consent import cache, ledger
from custos.consent.guard import permits, restricted_profiles, source_categories
from custos.consent.taxonomy import LawfulBasis
from custos.core.errors import CustosError, InputError, NotFoundError
from custos.core.fields import STRONG_IDENTIFIERS, Kind
from custos.identity import spark
from custos.ingest import normalise
from custos.ingest.normalise import FieldError
from custos.ingest.pipeline import default_region, ensure_source
from custos.ingest.rows import PERSON_COLUMNS, RowContext, person_values
from custos.privacy.dsr import erasure, forms, html, report, requests, suppression
from custos.privacy.dsr import rectify as rectification
from custos.privacy.dsr.collect import recipients
from custos.privacy.dsr.erasure import Subject
from custos.privacy.dsr.requests import DONE, FAILED, Request
from custos.privacy.keys import load_or_create_key
from custos.store import audit, meta
from custos.store import tables as t

if TYPE_CHECKING:
    from custos.service.app import Custos

#: The purpose data-subject requests are made under (GDPR Art. 12-23: a legal obligation).
DSR_PURPOSE = "legal_compliance"


class RequestFailed(CustosError):
    """A step of a data-subject request failed; the request can be resumed."""


def secret_key(app: Custos) -> bytes:
    """The secret key of ``CUSTOS_SECRET_KEY_FILE`` (created on first use)."""
    return load_or_create_key(app.settings.secret_key_file)


# -- ingestion ------------------------------------------------------------------------------------
def suppression_check(app: Custos) -> suppression.Suppressor | None:
    """The check ingestion runs while erased persons are suppressed (None while none are: then
    the secret key is not even read)."""
    with app.store.read() as conn:
        if suppression.count(conn) == 0:
            return None
        key = secret_key(app)
        suppression.check_key(conn, key)
        entries = suppression.load(conn)
    found = functools.partial(forms.identifier_forms, normalisers=normalisers(app))
    return suppression.Suppressor(key, entries, found)


def normalisers(app: Custos) -> forms.Normalisers:
    """Ingestion's normalisers of identifiers, for finding them in text."""
    return {
        "customer_id": normalise.customer_id,
        "email": normalise.email,
        "social_handle": normalise.social_handle,
        "phone": functools.partial(normalise.phone, region=default_region(app.settings)),
    }


# -- running requests ----------------------------------------------------------------------------
Handler = Callable[[Request], None]


def _run(app: Custos, request: Request, handlers: dict[str, Handler]) -> Request:
    """Run the steps not done yet, in order; a failure is recorded and ends the run."""
    for step in request.steps:
        if step.state == DONE:
            continue
        try:
            handlers[step.name](request)
        except Exception as exc:
            message = exc.message if isinstance(exc, CustosError) else type(exc).__name__
            requests.mark(step, FAILED, {"error": type(exc).__name__, "message": message})
            with app.store.write() as conn:
                requests.save(conn, request)
            raise RequestFailed(
                f"step {step.name} of request {request.ref} failed: {message}",
                hint=f"fix the cause, then run `custos dsr resume {request.ref}`",
            ) from exc
    return request


def _finish(conn: Connection, request: Request, name: str, detail: dict[str, Any]) -> None:
    requests.mark(request.step(name), DONE, detail)
    requests.save(conn, request)


def _new(
    app: Custos, kind: str, key: str, steps: list[str], actor: str, output: Path | None = None
) -> Request:
    profile_id = app.find_profile(key)
    with app.store.write() as conn:
        result: dict[str, Any] = {"found_by": found_by(app, conn, key, profile_id)}
        if output:
            result["output"] = str(output.resolve())
        request = requests.create(conn, kind, profile_id, steps, actor=actor, result=result)
        audit.append(
            conn,
            actor=actor,
            action=f"dsr.{kind}.received",
            purpose=DSR_PURPOSE,
            subjects=[profile_id],
            detail={"request": request.ref, "found_by": result["found_by"]},
        )
    return request


def found_by(app: Custos, conn: Connection, key: str, profile_id: str) -> dict[str, Any]:
    """How a request's key found the person: ``{"by": "profile_id"}``, or the kind of
    identifier and the sources whose records (or verified calls) carry it. Only trusted
    sources can: what a collection call merely claims is never an identifier (see
    :mod:`custos.service.collect`). Kinds and source names only, never the value."""
    named = app.lookup_identifier(key)
    if named is None or key == profile_id:
        return {"by": "profile_id"}
    kind, value = named
    values = {value} | (set(normalise.phone_digits_forms(value)) if kind == "phone" else set())
    sources: set[str] = set()
    for table in (t.records, t.interactions):
        sources.update(
            conn.execute(
                select(t.sources.c.name)
                .join(table, table.c.source_id == t.sources.c.id)
                .join(t.profile_members, t.profile_members.c.raw_id == table.c.raw_id)
                .where(
                    t.profile_members.c.profile_id == profile_id, table.c[kind].in_(sorted(values))
                )
                .distinct()
            ).scalars()
        )
    return {"by": kind, "sources": sorted(sources)}


def _subject(conn: Connection, profile_id: str) -> Subject:
    row = conn.execute(select(t.profiles.c.status).where(t.profiles.c.id == profile_id)).first()
    if row is None or row[0] != "active":
        raise NotFoundError(f"profile {profile_id} is no longer in the store")
    return erasure.locate(conn, profile_id)


def _audit(conn: Connection, request: Request, action: str, detail: dict[str, Any]) -> None:
    audit.append(
        conn,
        actor=request.actor,
        action=f"dsr.{action}",
        purpose=DSR_PURPOSE,
        subjects=[request.profile_id],
        detail={"request": request.ref, **detail},
    )


# -- access and portability -------------------------------------------------------------------
def access(app: Custos, key: str, *, output: Path, actor: str = "cli") -> Request:
    """Art. 15: write the person's report as JSON and HTML into ``output``."""
    request = _new(app, "access", key, ["report"], actor, output)
    return _run(app, request, {"report": lambda r: _access_step(app, r, output)})


def access_report(app: Custos, request: Request) -> dict[str, Any]:
    """The complete access report of the request's subject (every section)."""
    with app.store.read() as conn:
        subject = _subject(conn, request.profile_id)
        terms = forms.search_terms(subject, normalisers(app))
        found = erasure.quarantined(conn, subject, terms)
        body = report.access_report(
            conn,
            subject,
            request=request.ref,
            retention_policy=app.settings.retention_policy,
            quarantine_ids=sorted(found),
        )
        body["consent"] = _consent(app, conn, request.profile_id)
        restricted = request.profile_id in restricted_profiles(conn)
        tagged = source_categories(conn)
    body["purposes"] = _purposes(app, body, restricted, tagged)
    return body


def _access_step(app: Custos, request: Request, output: Path) -> None:
    body = access_report(app, request)
    stem = output / f"{request.ref}-access"
    files = [
        report.write_private(stem.with_suffix(".json"), report.dumps(body)),
        report.write_private(stem.with_suffix(".html"), html.render(body)),
    ]
    counts = {name: len(body[name]) for name in ("attributes", "interactions", "recipients")}
    _handed_over(app, request, files, "report", counts, sections=sorted(body))


def access_in_memory(app: Custos, key: str, *, actor: str) -> tuple[Request, dict[str, Any]]:
    """Art. 15 for the API: the request is tracked and audited like :func:`access`, but the
    report is returned (never written to a file, never stored with the request)."""
    request = _new(app, "access", key, ["report"], actor)
    found: dict[str, Any] = {}

    def step(r: Request) -> None:
        body = access_report(app, r)
        counts = {name: len(body[name]) for name in ("attributes", "interactions", "recipients")}
        with app.store.write() as conn:
            _audit(conn, r, "access", {"sections": sorted(body), "counts": counts})
            _finish(conn, r, "report", {"delivered": "in memory", "counts": counts})
        found.update(body)

    _run(app, request, {"report": step})
    return request, found


def access_html(app: Custos, ref: str, *, actor: str) -> str:
    """The access report of a done access request as standalone HTML, made again from the store
    (audited: the person's data is shown once more)."""
    with app.store.read() as conn:
        request = requests.load(conn, requests.parse_ref(ref))
    if request.kind != "access" or request.state != DONE:
        raise NotFoundError(
            f"request {request.ref} is not a completed access request",
            hint="make one with custos dsr access (or POST /v1/dsr/access)",
        )
    body = access_report(app, request)
    page = html.render(body)
    audit.record(
        app.store,
        actor,
        "dsr.access.html",
        purpose=DSR_PURPOSE,
        subjects=[request.profile_id],
        detail={"request": request.ref},
    )
    return page


def export_in_memory(app: Custos, key: str, *, actor: str) -> tuple[Request, dict[str, Any]]:
    """Art. 20 for the API: like :func:`export`, with the data returned instead of written."""
    request = _new(app, "export", key, ["export"], actor)
    found: dict[str, Any] = {}

    def step(r: Request) -> None:
        with app.store.read() as conn:
            subject = _subject(conn, r.profile_id)
            body = report.portable(conn, subject, request=r.ref)
            body["consents"] = _consent(app, conn, r.profile_id)["ledger"]
        counts = {k: len(body[k]) for k in ("records", "interactions", "consents")}
        with app.store.write() as conn:
            _audit(conn, r, "export", {"counts": counts})
            _finish(conn, r, "export", {"delivered": "in memory", "counts": counts})
        found.update(body)

    _run(app, request, {"export": step})
    return request, found


def _consent(app: Custos, conn: Connection, profile_id: str) -> dict[str, Any]:
    events = ledger.events_by_profile(conn, None, [profile_id]).get(profile_id, [])
    rows = ledger.ledger_rows(conn, [e.id for e in events])
    states = {}
    for name, purpose in sorted(app.taxonomy.purposes.items()):
        state = ledger.derive_state([e for e in events if e.purpose == name])
        states[name] = {
            "status": state.status,
            "explicit": state.explicit,
            "since": state.since.isoformat() if state.since else None,
            "basis": purpose.basis.value,
            "allowed": permits(purpose, state),
        }
    return {
        "states": states,
        "ledger": [
            {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()}
            for r in rows
        ],
    }


def _purposes(
    app: Custos, body: dict[str, Any], restricted: bool, tagged: dict[str, dict[str, str]]
) -> list[dict[str, Any]]:
    taxonomy = app.taxonomy
    held = {(a["attribute"], a["source"]) for a in body["attributes"]}
    if body["interactions"]:
        held |= {(f, "") for f in ("timestamp", "channel", "text", "language")}
    out = []
    for name, purpose in sorted(taxonomy.purposes.items()):
        fields = sorted(
            {
                attribute
                for attribute, source in held
                if taxonomy.category(attribute, tagged.get(source, {})) in purpose.categories
            }
        )
        legal = purpose.basis is LawfulBasis.LEGAL_OBLIGATION
        allowed = body["consent"]["states"][name]["allowed"] and (legal or not restricted)
        out.append(
            {
                "purpose": name,
                "description": purpose.description,
                "lawful_basis": purpose.basis.value,
                "categories": sorted(purpose.categories),
                "uses_your_data_now": allowed,
                "your_fields_it_may_use": fields,
            }
        )
    return out


def export(app: Custos, key: str, *, output: Path, actor: str = "cli") -> Request:
    """Art. 20: write the data the person provided as JSON and CSV into ``output``."""
    request = _new(app, "export", key, ["export"], actor, output)
    return _run(app, request, {"export": lambda r: _export_step(app, r, output)})


def _export_step(app: Custos, request: Request, output: Path) -> None:
    with app.store.read() as conn:
        subject = _subject(conn, request.profile_id)
        body = report.portable(conn, subject, request=request.ref)
        body["consents"] = _consent(app, conn, request.profile_id)["ledger"]
    stem = output / f"{request.ref}-export"
    files = [
        report.write_private(stem.with_suffix(".json"), report.dumps(body)),
        report.write_private(stem.with_suffix(".csv"), report.portable_csv(body)),
    ]
    counts = {k: len(body[k]) for k in ("records", "interactions", "consents")}
    _handed_over(app, request, files, "export", counts)


def _handed_over(
    app: Custos,
    request: Request,
    files: list[Path],
    step: str,
    counts: dict[str, int],
    **detail: Any,
) -> None:
    """The ``files`` of an access or export request are written: keep them on the request,
    audit what they hold (``detail`` and ``counts``) and finish its ``step``."""
    request.result["files"] = [str(f) for f in files]
    with app.store.write() as conn:
        _audit(conn, request, request.kind, {**detail, "counts": counts})
        _finish(conn, request, step, {"files": [f.name for f in files], "counts": counts})


# -- rectification and restriction --------------------------------------------------------------
def rectify(
    app: Custos, key: str, *, attribute: str, value: str, reason: str = "", actor: str = "cli"
) -> Request:
    """Art. 16: correct one attribute; the correction is a new record (source
    ``rectification``) that becomes the attribute's provenance in the golden record."""
    request = _new(app, "rectify", key, ["rectify"], actor)

    def step(r: Request) -> None:
        with app.store.write() as conn:
            was = meta.get(conn, meta.GRAPH_VERSION) or "0"
            detail = rectification.apply(
                conn,
                app.store,
                r,
                attribute=attribute,
                value=value,
                reason=reason,
                source_id=ensure_source(conn, rectification.SOURCE, Kind.RECORDS),
                normalise=functools.partial(_normalised, region=default_region(app.settings)),
            )
            if detail["identifier"]:  # consent events may attach through the new identifier
                meta.put(conn, meta.GRAPH_VERSION, uuid.uuid4().hex)
                cache.refresh_profiles(app.store, conn, {r.profile_id}, was=was)
            _audit(conn, r, "rectify", {"attribute": attribute})
            _finish(conn, r, "rectify", detail)

    return _run(app, request, {"rectify": step})


def _normalised(values: dict[str, str], region: str | None) -> dict[str, Any]:
    """Person fields normalised as ingestion does (refused, without the value, when invalid)."""
    try:
        row = person_values(values, RowContext(kind=Kind.RECORDS, region=region))
    except FieldError as exc:
        raise InputError(
            f"the corrected {exc.field} is not valid: {exc.reason}", hint=exc.fix
        ) from None
    return dict(zip(PERSON_COLUMNS, row, strict=True))


def restrict(
    app: Custos, key: str, *, reason: str = "", lift: bool = False, actor: str = "cli"
) -> Request:
    """Art. 18: restrict processing (the guard then refuses every purpose except legal
    obligation), or lift the restriction."""
    request = _new(app, "restrict", key, ["lift" if lift else "restrict"], actor)

    def step(r: Request) -> None:
        now = datetime.now(UTC)
        with app.store.write() as conn:
            family = erasure.profile_family(conn, r.profile_id)
            conn.execute(delete(t.restrictions).where(t.restrictions.c.profile_id.in_(family)))
            if not lift:
                conn.execute(
                    t.restrictions.insert().values(
                        profile_id=r.profile_id,
                        since=now,
                        reason=reason or "restriction requested",
                        request_id=r.id,
                    )
                )
            action = "unrestrict" if lift else "restrict"
            conn.execute(
                t.profile_events.insert().values(
                    at=now,
                    actor=r.actor,
                    action=action,
                    profile_id=r.profile_id,
                    other_profile_id=None,
                    reason=f"{r.ref}: {reason or 'no reason given'}",
                )
            )
            _audit(conn, r, action, {})
            _finish(conn, r, r.steps[0].name, {"restricted": not lift})

    return _run(app, request, {"restrict": step, "lift": step})


# -- erasure -----------------------------------------------------------------------------------
ERASE_STEPS = ["erase", "purge", "receipt"]


def erase(app: Custos, key: str, *, actor: str = "cli") -> Request:
    """Art. 17: delete the person everywhere, suppress their identifiers, purge the bytes, and
    list who must be told (Art. 19)."""
    erasure.check_coverage()
    secret = secret_key(app)  # before anything is deleted: no key, no erasure
    request = _new(app, "erase", key, ERASE_STEPS, actor)
    return _run(app, request, _erase_handlers(app, secret))


def _erase_handlers(app: Custos, secret: bytes) -> dict[str, Handler]:
    finders = normalisers(app)

    def erase_step(r: Request) -> None:
        with app.store.write() as conn:
            subject = _subject(conn, r.profile_id)
            # Interactions that may be the person's (possible matches, name-only notes) go too,
            # and their records are suppressed like the person's own.
            maybe = erasure.possible_interactions(conn, subject)
            subject.raw_ids |= set(maybe)
            subject.record_keys |= set(maybe.values())
            names = dict(conn.execute(select(t.sources.c.id, t.sources.c.name)).all())
            maybe_refs = sorted(f"{names[sid]}:{rid}" for sid, rid in maybe.values())
            found = erasure.quarantined(conn, subject, forms.search_terms(subject, finders))
            forms.add_name_candidates(subject, normalise.name_key, normalise.display_name)
            possible = _possible_match_values(conn, subject)
            suppressed = suppression.add(
                conn, secret, _suppression_values(conn, subject) + possible, request_id=r.id
            )
            removed = erasure.delete_subject(conn, subject, found)
            shared = {k: len(v) for k, v in subject.shared.items() if v}
            audit.append(
                conn,
                actor=r.actor,
                action="dsr.erase",
                purpose=DSR_PURPOSE,
                subjects=subject.profile_ids,
                detail={"request": r.ref, "removed": removed},
            )
            _finish(
                conn,
                r,
                "erase",
                {
                    "profile_ids": subject.profile_ids,
                    "removed": removed,
                    "suppressed": suppressed,
                    "possible_match_identifiers_suppressed": len(possible),
                    "possible_interactions_erased": maybe_refs,
                    "shared_identifiers_kept": shared,
                },
            )

    def purge_step(r: Request) -> None:
        tables = sorted(r.step("erase").detail["removed"])
        done = erasure.purge(app.store, tables)
        app.memos.clear()  # normal forms this instance remembers of the person's values
        # A failed Spark run's work folder holds a snapshot of everyone's names and contacts.
        removed, unreachable = spark.discard_work(app.settings.engine_location)
        done = {**done, "engine_work_folders_removed": removed}
        if unreachable:
            done["engine_location_not_reached"] = unreachable
        with app.store.write() as conn:
            _finish(conn, r, "purge", done)

    def receipt_step(r: Request) -> None:
        erased = r.step("erase").detail
        with app.store.read() as conn:
            readers = recipients(conn, erased["profile_ids"])
        r.result = {
            **r.result,
            "receipt": {
                "request": r.ref,
                "profile_ids": erased["profile_ids"],
                "erased_at": r.step("erase").at,
                "removed": erased["removed"],
                "suppressed": erased["suppressed"],
                # interactions in no profile that may be the person's (possible matches,
                # name-only notes): erased too, listed by reference
                "possible_interactions_erased": erased.get("possible_interactions_erased", []),
                "purged": r.step("purge").detail,
                "kept": {
                    **erasure.KEPT,
                    "shared identifiers": erased["shared_identifiers_kept"],
                },
                "recipients_to_notify": readers,
            },
        }
        with app.store.write() as conn:
            _finish(conn, r, "receipt", {"recipients": len(readers)})

    return {"erase": erase_step, "purge": purge_step, "receipt": receipt_step}


def _possible_match_values(conn: Connection, subject: Subject) -> list[tuple[str, str]]:
    """The identifiers of records that identity resolution scored as possible matches of the
    person without linking them (``identity_candidates``): where identity is uncertain,
    erasure is conservative and keeps them from bringing the person back too. The records
    themselves stay: they may be someone else's (their next rows wait in the quarantine)."""
    others = erasure.possible_partners(conn, subject)
    values: set[tuple[str, str]] = set()
    for table in (t.records, t.interactions):
        columns = [table.c[kind] for kind in STRONG_IDENTIFIERS]
        for chunk in _chunked(others):
            for row in conn.execute(select(*columns).where(table.c.raw_id.in_(chunk))):
                values.update((k, v) for k, v in zip(STRONG_IDENTIFIERS, row, strict=True) if v)
    shared = {(k, v) for k, vs in subject.shared.items() for v in vs}
    return sorted(values - shared)


def _chunked(values: set[int], size: int = 500) -> Iterator[list[int]]:
    ordered = sorted(values)
    for i in range(0, len(ordered), size):
        yield ordered[i : i + size]


def _suppression_values(conn: Connection, subject: Subject) -> list[tuple[str, str]]:
    values = [(kind, v) for kind in STRONG_IDENTIFIERS for v in subject.identifiers[kind]]
    # a phone also by its digits, so that it comes back in its other form neither (a national
    # number of unknown country, an E.164 one): see normalise.phone_erasure_probes
    values += [("phone", normalise.phone_erasure_term(v)) for v in subject.identifiers["phone"]]
    # a customer id also upper-cased, as a map file's normalise: upper stores it (and as a new
    # row's id is probed too): see ingest.pipeline.suppression_key
    values += [
        ("customer_id", upper)
        for v in subject.identifiers["customer_id"]
        if (upper := normalise.customer_id_upper(v))
    ]
    names = dict(conn.execute(select(t.sources.c.id, t.sources.c.name)).all())
    values += [
        (suppression.RECORD, suppression.record_value(names[source_id], record_id))
        for source_id, record_id in subject.record_keys
    ]
    for first, last, born in subject.persons:
        others = conn.execute(
            select(t.records.c.raw_id)
            .where(
                t.records.c.first_name_key == first,
                t.records.c.last_name_key == last,
                t.records.c.date_of_birth == born,
            )
            .where(t.records.c.raw_id.not_in(sorted(subject.raw_ids)))
            .limit(1)
        ).first()
        if others is None:  # a namesake born the same day would be suppressed too: then not
            values.append((suppression.PERSON, suppression.person_value(first, last, born)))
    return values


# -- requests --------------------------------------------------------------------------------------
def resume(app: Custos, ref: str, *, output: Path | None = None) -> Request:
    """Run a request again from the step that failed (or was never run)."""
    with app.store.read() as conn:
        request = requests.load(conn, requests.parse_ref(ref))
    if request.state == DONE:
        return request
    if request.kind == "erase":
        return _run(app, request, _erase_handlers(app, secret_key(app)))
    if output is None and "output" not in request.result and request.kind in ("access", "export"):
        raise CustosError(
            f"request {request.ref} was answered in memory (through the API): nothing to resume",
            hint=f"make the request again: custos dsr {request.kind} … (or give --output)",
        )
    folder = output or Path(request.result.get("output", "."))
    if request.kind == "access":
        return _run(app, request, {"report": lambda r: _access_step(app, r, folder)})
    if request.kind == "export":
        return _run(app, request, {"export": lambda r: _export_step(app, r, folder)})
    raise CustosError(
        f"request {request.ref} ({request.kind}) holds no values to resume with",
        hint=f"make the request again: custos dsr {request.kind} …",
    )


def show(app: Custos, ref: str) -> dict[str, Any]:
    """A request with its steps and result."""
    with app.store.read() as conn:
        return requests.load(conn, requests.parse_ref(ref)).as_dict()


def listing(app: Custos, *, key: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Requests, newest first; with ``key``, those about that person."""
    with app.store.read() as conn:
        ids = erasure.profile_family(conn, app.find_profile(key)) if key else None
        return [r.as_dict() for r in requests.listing(conn, profile_ids=ids, limit=limit)]
