"""Customer insight workflows: score interaction texts, moods, trends, event impact, segments.

Scores are derived data stored next to the interaction (engine name and version with each, so a
model change re-scores; a company head trained by :func:`train` is part of the version). A
record's ``language`` field wins over detection. Trends, impact, moods and segments leave out
texts whose sentiment is ``uncertain`` (confidence below ``CUSTOS_SENTIMENT_MIN_CONFIDENCE``):
:func:`counted` is that rule. Every read that leaves the store goes through the consent guard
for a purpose (``analytics`` unless told otherwise): only profiles the purpose may use count, and
a segment attribute must be one the purpose may see.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, and_, delete, exists, func, select

from custos.consent.guard import Guard
from custos.consent.taxonomy import UNCLASSIFIED
from custos.core.errors import AccessDenied, CustosError, InputError, NotFoundError
from custos.core.fields import years_old
from custos.ingest.readers import reader_for
from custos.ingest.rows import dumps
from custos.insight import stats
from custos.insight.segments import Segment, parse
from custos.insight.sentiment import (
    DEFAULT_ENGINE,
    LABELS,
    Label,
    SentimentEngine,
    abstain,
    company,
    from_probabilities,
    get_engine,
    is_uncertain,
)
from custos.insight.sentiment.language import resolve_language
from custos.service import reads
from custos.store import golden as golden_store
from custos.store import tables as t

if TYPE_CHECKING:
    from custos.service.app import Custos

Progress = Callable[[int, int], None]
Phase = Callable[[str], None]
#: Insight fields a segment rule or a trend can use besides the golden attributes.
DERIVED = ("age", "age_band", "mood", "interactions_30d", "customer_since_days")
#: Half-life of a score's weight in the current mood (days).
MOOD_HALF_LIFE_DAYS = 30.0
LABELLED_BATCH = 10_000  # rows a labelled file is read in at a time


@dataclass
class ScoreSummary:
    """What a scoring run did."""

    engine: str
    version: str
    scored: int = 0
    unknown_language: int = 0
    uncertain: int = 0  # below CUSTOS_SENTIMENT_MIN_CONFIDENCE
    seconds: float = 0.0


def _done(name: str, version: str, missing_only: bool) -> Any:
    """Interactions already scored: by this engine version, or (``missing_only``) by any."""
    interactions, sentiment = t.interactions, t.interaction_sentiment
    scored = sentiment.c.raw_id == interactions.c.raw_id
    if missing_only:
        return exists().where(scored)
    return exists().where(
        and_(scored, sentiment.c.engine == name, sentiment.c.engine_version == version)
    )


def _pending(
    conn: Any,
    name: str,
    version: str,
    after: int,
    limit: int,
    missing_only: bool = False,
    only: Sequence[int] | None = None,
) -> list[Any]:
    interactions = t.interactions
    done = _done(name, version, missing_only)
    query = (
        select(interactions.c.raw_id, interactions.c.text, interactions.c.language)
        .where(
            interactions.c.raw_id > after,
            interactions.c.text.is_not(None),
            interactions.c.text != "",
            ~done,
        )
        .order_by(interactions.c.raw_id)
        .limit(limit)
    )
    if only is not None:
        query = query.where(interactions.c.raw_id.in_(list(only)))
    return list(conn.execute(query))


def score(
    app: Custos,
    *,
    engine: str | None = None,
    batch: int = 256,
    progress: Progress | None = None,
    missing_only: bool = False,
    only: Sequence[int] | None = None,
) -> ScoreSummary:
    """Score every interaction text not yet scored by this engine version, in batches (memory
    stays bounded; a re-run scores nothing twice; a new engine version re-scores).
    ``missing_only`` scores just the texts no engine has scored yet (what analyses need);
    ``only`` limits the run to these interactions (one profile's)."""
    model = engine_for(app, engine)
    default = app.settings.sentiment_language or "unknown"
    summary = ScoreSummary(model.name, model.version)
    started = time.perf_counter()
    interactions, sentiment = t.interactions, t.interaction_sentiment
    with app.store.read() as conn:
        done = _done(model.name, model.version, missing_only)
        pending = (
            select(func.count())
            .select_from(interactions)
            .where(interactions.c.text.is_not(None), interactions.c.text != "", ~done)
        )
        if only is not None:
            pending = pending.where(interactions.c.raw_id.in_(list(only)))
        total = int(conn.execute(pending).scalar_one())
    last = 0
    while True:
        with app.store.read() as conn:
            rows = _pending(conn, model.name, model.version, last, batch, missing_only, only)
        if not rows:
            break
        languages = [resolve_language(r.text, r.language, default) for r in rows]
        results = model.score_batch([r.text for r in rows], languages)
        now = datetime.now(UTC)
        with app.store.write() as conn:
            ids = [r.raw_id for r in rows]
            conn.execute(delete(sentiment).where(sentiment.c.raw_id.in_(ids)))
            app.store.insert_many(
                conn,
                sentiment,
                [
                    (
                        r.raw_id,
                        model.name,
                        model.version,
                        out.label,
                        out.p_negative,
                        out.p_neutral,
                        out.p_positive,
                        out.score,
                        out.language,
                        now,
                        out.confidence,
                    )
                    for r, out in zip(rows, results, strict=True)
                ],
                names=(
                    "raw_id",
                    "engine",
                    "engine_version",
                    "label",
                    "p_negative",
                    "p_neutral",
                    "p_positive",
                    "score",
                    "language",
                    "scored_at",
                    "confidence",
                ),
            )
        summary.scored += len(rows)
        summary.unknown_language += sum(1 for out in results if out.label == "unknown")
        summary.uncertain += sum(not counted(app, out.confidence) for out in results)
        last = rows[-1].raw_id
        if progress:
            progress(summary.scored, total)
    summary.seconds = time.perf_counter() - started
    return summary


def engine_for(app: Custos, engine: str | None = None) -> SentimentEngine:
    """The engine ``engine`` (default: the setting); the default engine with the company's
    active head (``custos insight train``) where the store has one, else the shipped head."""
    name = engine or app.settings.sentiment_engine or DEFAULT_ENGINE
    if name == DEFAULT_ENGINE:
        with app.store.read() as conn:
            head = company.active(conn)
        if head is not None:
            from custos.insight.sentiment.e5_head import E5HeadEngine

            return E5HeadEngine(head)
    return get_engine(name)


def counted(app: Custos, confidence: float | None) -> bool:
    """Does a score count in trends, impact, moods and segments? Not when it is uncertain."""
    return not is_uncertain(confidence, app.settings.sentiment_min_confidence)


def shown_label(app: Custos, label: str, confidence: float | None) -> str:
    """The label a reader sees: ``uncertain`` below the confidence threshold, else as stored."""
    return label if counted(app, confidence) else "uncertain"


def _band(age: int | None) -> str | None:
    if age is None:
        return None
    low = min(age // 10 * 10, 70)
    return f"{low}+" if low == 70 else f"{low}-{low + 9}"


def _scores(app: Custos) -> Iterator[tuple[str, datetime, str | None, float, bool]]:
    """(profile id, when, channel, score, whether it counts: see :func:`counted`) of every
    scored interaction linked to a profile."""
    sentiment = t.interaction_sentiment
    with app.store.read() as conn:
        query = _with_sentiment(
            t.profile_members.c.profile_id, *_WHEN, sentiment.c.score, sentiment.c.confidence
        ).where(sentiment.c.score.is_not(None))
        for pid, when, observed, channel, value, confidence in conn.execution_options(
            yield_per=20_000
        ).execute(query):
            yield pid, when or observed, channel, float(value), counted(app, confidence)


#: When and where an interaction happened: its time, the time it was observed, its channel.
_WHEN = (t.interactions.c.timestamp, t.interactions.c.observed_at, t.interactions.c.channel)


def _with_sentiment(*columns: Any) -> Select[Any]:
    """``columns`` of every interaction with a sentiment, joined to the profile it belongs to."""
    sentiment, members = t.interaction_sentiment, t.profile_members
    return (
        select(*columns)
        .select_from(sentiment)
        .join(t.interactions, t.interactions.c.raw_id == sentiment.c.raw_id)
        .join(members, members.c.raw_id == sentiment.c.raw_id)
    )


def _mood(scores: list[tuple[datetime, float]], now: datetime) -> float | None:
    if not scores:
        return None
    weights = [
        0.5 ** (max((now - when).total_seconds(), 0) / 86400 / MOOD_HALF_LIFE_DAYS)
        for when, _ in scores
    ]
    total = sum(weights)
    return sum(w * v for w, (_, v) in zip(weights, scores, strict=True)) / total if total else None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def profile_rows(
    app: Custos, purpose: str, *, actor: str, fields: frozenset[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Every profile the purpose may use, with the golden attributes it may see and the insight
    fields it may see: age (needs the birth date visible), age band (derived from the birth date
    without showing it), mood, interactions in the last 30 days, days since the first record."""
    now = datetime.now(UTC)
    rows = {item["profile_id"]: item for item in app.export_profiles(purpose, actor=actor)}
    rules = Guard(app.taxonomy).field_rules(purpose)
    visible = {name for name in DERIVED if rules.rule(name) != "no"}
    wanted = visible if fields is None else visible & fields
    with app.store.read() as conn:
        if wanted & {"age", "age_band"}:
            for pid, document in golden_store.documents(conn):
                item = rows.get(pid)
                dob = golden_store.values(document).get("date_of_birth") if item else None
                if item is not None and dob:
                    age = years_old(dob, now.date())
                    if "age" in wanted:
                        item["age"] = age
                    if "age_band" in wanted:
                        item["age_band"] = _band(age)
        if "customer_since_days" in wanted:
            members, records = t.profile_members, t.records
            query = (
                select(members.c.profile_id, func.min(records.c.observed_at))
                .join(records, records.c.raw_id == members.c.raw_id)
                .group_by(members.c.profile_id)
            )
            for pid, first in conn.execution_options(yield_per=20_000).execute(query):
                if pid in rows and first is not None:
                    rows[pid]["customer_since_days"] = (now - _aware(first)).days
    if wanted & {"mood", "interactions_30d"}:
        per: dict[str, list[tuple[datetime, float, bool]]] = defaultdict(list)
        for pid, when, _channel, value, counts in _scores(app):
            if pid in rows:
                per[pid].append((_aware(when), value, counts))
        for pid, item in rows.items():
            scored = per.get(pid, [])
            scores = [(when, value) for when, value, counts in scored if counts]
            if "mood" in wanted:
                item["mood"] = _mood(scores, now)
            if "interactions_30d" in wanted:
                item["interactions_30d"] = sum(1 for when, *_ in scored if (now - when).days < 30)
    return rows


def _check_by(app: Custos, by: str, purpose: str, *, actor: str, action: str) -> None:
    """Refuse a segment attribute the purpose may not see (fail closed, with the reason):
    audited as a refused ``action``, naming the attribute."""
    with reads.GuardSession(app, purpose, actor=actor, action=action, audit_empty=False) as session:
        rules = session.rules
        if rules.category(by) == UNCLASSIFIED:
            refusal = _unclassified(by, AccessDenied)
            session.refuse(refusal.message, refusal.hint, fields=[by])
        if rules.rule(by) == "no":
            session.refuse(
                f"purpose {purpose!r} may not use {by!r} "
                f"(category {rules.category(by)!r}), so it cannot group or select by it",
                "use an attribute the purpose may see, or name another --purpose",
                fields=[by],
            )


def observations(
    app: Custos,
    by: str,
    purpose: str,
    *,
    actor: str,
    channel: str | None = None,
    progress: Progress | None = None,
    phase: Phase | None = None,
    read: str = "observations",
) -> tuple[list[stats.Observation], int]:
    """Scored interactions of the profiles ``purpose`` may use (of one ``channel`` if given),
    each with its segment (the value of ``by``); and how many scores were left out (profiles
    the purpose may not use). ``phase`` hears each step's name as it starts; ``read`` names
    the read in the audit log (``insight.READ``) where ``by`` is refused."""
    _check_by(app, by, purpose, actor=actor, action=f"insight.{read}")
    if phase:
        phase("scoring texts not scored yet")
    score(app, missing_only=True, progress=progress)  # texts ingested since the last scoring
    if phase:
        phase(f"reading the profiles {purpose} may use")
    rows = profile_rows(app, purpose, actor=actor, fields=frozenset({by}))
    out: list[stats.Observation] = []
    left_out = 0
    for pid, when, via, value, counts in _scores(app):
        if (channel is not None and via != channel) or not counts:
            continue
        row = rows.get(pid)
        if row is None:
            left_out += 1
            continue
        segment = via if by == "channel" else row.get(by)
        out.append(stats.Observation(str(segment or "unknown"), pid, _aware(when), value))
    return out, left_out


def trend(
    app: Custos,
    by: str,
    *,
    interval: str = "week",
    purpose: str = "analytics",
    chart: Path | None = None,
    channel: str | None = None,
    actor: str = "cli",
    progress: Progress | None = None,
    phase: Phase | None = None,
) -> list[stats.TrendPoint]:
    """Sentiment per segment and period (guarded); optionally drawn to ``chart`` (PNG or SVG).
    Texts not scored yet are scored first (``progress`` reports it, ``phase`` each step)."""
    obs, _ = observations(
        app, by, purpose, actor=actor, channel=channel, progress=progress, phase=phase, read="trend"
    )
    if phase:
        phase(f"sentiment per {by} and {interval}, with bootstrap intervals")
    points = stats.trend(obs, interval=interval)
    if chart is not None:
        if phase:
            phase(f"drawing {chart.name}")
        draw_trend(points, chart, title=f"Sentiment by {by} per {interval} ({purpose})")
    return points


def impact(
    app: Custos,
    event: date,
    *,
    window_days: int | None = None,
    by: str = "country",
    purpose: str = "analytics",
    channel: str | None = None,
    actor: str = "cli",
    progress: Progress | None = None,
    phase: Phase | None = None,
) -> list[stats.SegmentImpact]:
    """Per segment, sentiment before vs after ``event`` (see :func:`custos.insight.stats.impact`;
    ``window_days`` defaults to the longest equal window the data allows, up to 180 days).
    Texts not scored yet are scored first (``progress`` reports it, ``phase`` each step)."""
    obs, _ = observations(
        app,
        by,
        purpose,
        actor=actor,
        channel=channel,
        progress=progress,
        phase=phase,
        read="impact",
    )
    if phase:
        phase(f"comparing each {by} before and after {event} (bootstrap, permutation tests)")
    return stats.impact(obs, event, window_days=window_days)


def draw_trend(points: list[stats.TrendPoint], path: Path, *, title: str) -> None:
    """A line per segment with its 95% band; PNG or SVG by the file's suffix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if path.suffix.lower() not in (".png", ".svg"):
        raise InputError(f"cannot draw a chart as {path.suffix!r}", hint="use .png or .svg")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    by_segment: dict[str, list[stats.TrendPoint]] = defaultdict(list)
    for p in points:
        by_segment[p.segment].append(p)
    biggest = sorted(by_segment, key=lambda s: -sum(p.persons for p in by_segment[s]))[:8]
    for seg in biggest:
        series = by_segment[seg]
        x: Any = [p.period for p in series]
        ax.plot(x, [p.mean for p in series], marker="o", markersize=3, label=seg)
        ax.fill_between(x, [p.ci_low for p in series], [p.ci_high for p in series], alpha=0.15)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_ylim(-1, 1)
    ax.set_ylabel("mean sentiment (persons)")
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8, ncol=4)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def mood(
    app: Custos, key: str, *, purpose: str = "analytics", actor: str = "cli"
) -> dict[str, Any]:
    """A profile's sentiment timeline and current mood, if the purpose may use the profile."""
    profile_id = app.find_profile(key)
    with reads.GuardSession(app, purpose, actor=actor, action="insight.mood") as session:
        with app.store.read() as conn:
            access = session.access(conn, [profile_id])
            if not access.allowed(profile_id) or access.rule("sentiment") == "no":
                session.refuse(
                    f"purpose {purpose} may not use the sentiment of this profile",
                    "no lawful basis on record for this purpose, or it may not see sentiment",
                )
            members = list(
                conn.execute(
                    select(t.profile_members.c.raw_id).where(
                        t.profile_members.c.profile_id == profile_id
                    )
                ).scalars()
            )
        score(app, missing_only=True, only=members)  # just this person's texts not scored yet
        with app.store.read() as conn:
            sentiment = t.interaction_sentiment
            rows = conn.execute(
                _with_sentiment(
                    *_WHEN, sentiment.c.label, sentiment.c.score, sentiment.c.confidence
                )
                .where(t.profile_members.c.profile_id == profile_id)
                .order_by(t.interactions.c.timestamp)
            ).all()
        session.handed(profile_id, ["sentiment"])
    timeline = [
        {
            "at": _aware(r.timestamp or r.observed_at).isoformat(),
            "channel": r.channel,
            "label": shown_label(app, r.label, r.confidence),
            "score": None if r.score is None else round(float(r.score), 3),
            "confidence": None if r.confidence is None else round(float(r.confidence), 3),
        }
        for r in rows
    ]
    scored = [
        (_aware(r.timestamp or r.observed_at), float(r.score))
        for r in rows
        if r.score is not None and counted(app, r.confidence)
    ]
    current = _mood(scored, datetime.now(UTC))
    return {
        "profile_id": profile_id,
        "mood": None if current is None or math.isnan(current) else round(current, 3),
        "timeline": timeline,
    }


# -- segments --------------------------------------------------------------------------------
def known_fields(app: Custos) -> frozenset[str]:
    """Fields a segment rule may name: golden attributes of the taxonomy and insight fields."""
    return frozenset(app.taxonomy.fields) | frozenset(DERIVED)


def _unclassified(name: str, error: type[CustosError]) -> CustosError:
    """The refusal to use an attribute nobody has classified, with how to classify it."""
    return error(
        f"{name!r} is unclassified (an extra column of a source that the taxonomy does not "
        "classify): no purpose may use it",
        hint=f"classify it in your taxonomy file (the CUSTOS_TAXONOMY setting): fields: "
        f"{{{name}: CATEGORY}}, e.g. behaviour; see the README, 'A custom taxonomy'",
    )


def _parse_rule(app: Custos, name: str, where: str) -> Segment:
    """Parse a segment rule against the fields it may name; an extra attribute stored
    unclassified is refused as such (with how to classify it), not as an unknown field."""
    known = known_fields(app)
    try:
        return parse(name, where, known)
    except InputError:
        for field in sorted(parse(name, where).fields - known):
            key = dumps({field: 0})[1:-2]  # '"name":' as it stands in the stored JSON
            with app.store.read() as conn:
                stored = any(
                    conn.execute(
                        select(table.c.raw_id).where(table.c.extra.contains(key)).limit(1)
                    ).first()
                    for table in (t.records, t.interactions)
                )
            if stored:
                raise _unclassified(field, InputError) from None
        raise


def create_segment(app: Custos, name: str, where: str, *, actor: str = "cli") -> Segment:
    """Save a named rule (checked now: syntax and field names)."""
    segment = _parse_rule(app, name, where)
    with app.store.write() as conn:
        if conn.execute(select(t.segments.c.name).where(t.segments.c.name == name)).first():
            raise InputError(f"a segment named {name!r} exists", hint="pick another name")
        conn.execute(
            t.segments.insert().values(
                name=name, rule=where, created_at=datetime.now(UTC), created_by=actor
            )
        )
    return segment


def segments(app: Custos) -> list[dict[str, Any]]:
    """The saved segments."""
    with app.store.read() as conn:
        return [
            {"name": r.name, "where": r.rule, "created_at": r.created_at.isoformat()}
            for r in conn.execute(select(t.segments).order_by(t.segments.c.name))
        ]


def segment_members(
    app: Custos, name: str, *, purpose: str, actor: str = "cli"
) -> list[dict[str, Any]]:
    """The profiles in a segment, as ``purpose`` may see them (guarded and audited)."""
    with app.store.read() as conn:
        rule = conn.execute(select(t.segments.c.rule).where(t.segments.c.name == name)).scalar()
    if rule is None:
        raise NotFoundError(f"no segment named {name!r}", hint="see `custos segment list`")
    segment = _parse_rule(app, name, rule)
    for field in segment.fields:
        _check_by(app, field, purpose, actor=actor, action="insight.segment")
    if segment.fields & {"mood", "interactions_30d"}:
        score(app, missing_only=True)
    rows = profile_rows(app, purpose, actor=actor, fields=segment.fields)
    return [row for row in rows.values() if segment.test(row)]


# -- a company's own labels ------------------------------------------------------------------
def read_labelled(
    path: Path,
    text_column: str,
    label_column: str,
    language_column: str | None = None,
    label_map: str | None = None,
) -> company.Labelled:
    """A labelled file's texts, labels and languages (:func:`company.labelled`), the file read
    as ``custos ingest`` reads a source: CSV separated by commas or semicolons, TSV, JSON Lines
    or Parquet, UTF-8 or Windows-1252. A row that cannot be read is refused with its line and
    the fix; ``label_map`` is ``--label-map``'s text."""
    reader = reader_for(path, LABELLED_BATCH)
    rows: list[tuple[int, dict[str, Any]]] = []
    for batch in reader.batches():
        for row in batch:
            if row.error:
                raise InputError(
                    f"{path.name} line {row.line_no}: {row.error}",
                    hint=row.fix or "repair the line (quote a text that holds the separator)",
                )
            if row.values is not None:
                rows.append((row.line_no, row.values))
    mapping = company.parse_label_map(label_map) if label_map else None
    return company.labelled(rows, path.name, text_column, label_column, language_column, mapping)


def evaluate(
    app: Custos,
    path: Path,
    *,
    text_column: str,
    label_column: str,
    language_column: str | None = None,
    label_map: str | None = None,
) -> dict[str, Any]:
    """Measure the current engine (the company's head where one is active) on a labelled file:
    accuracy, macro-F1, confusion matrix, the confident-share curve (see
    :func:`custos.insight.sentiment.company.measure`), and how the labels were read."""
    data = read_labelled(path, text_column, label_column, language_column, label_map)
    model = engine_for(app)
    threshold = app.settings.sentiment_min_confidence
    languages = data.languages(app.settings.sentiment_language or "unknown")
    results = [abstain(r, threshold) for r in model.score_batch(data.texts, languages)]
    return {
        "engine": model.name,
        "version": model.version,
        "min_confidence": threshold,
        **company.measure(data.labels, results),
        "labels": data.report(),
    }


def train(
    app: Custos,
    path: Path,
    *,
    text_column: str,
    label_column: str,
    language_column: str | None = None,
    label_map: str | None = None,
    phase: Phase | None = None,
) -> dict[str, Any]:
    """Fit a sentiment head on a company's labelled texts (English and German ones), compare it
    by cross-validation with the shipped head on the same texts, and store it as the next
    version, used by the default engine from now on (see
    :func:`custos.insight.sentiment.company.fit_head`)."""
    from custos.insight.sentiment.e5_head import E5HeadEngine

    data = read_labelled(path, text_column, label_column, language_column, label_map)
    every = data.languages(app.settings.sentiment_language or "unknown")
    kept = [n for n, language in enumerate(every) if language != "unknown"]
    texts = [data.texts[n] for n in kept]
    labels: list[Label] = [data.labels[n] for n in kept]
    languages = [every[n] for n in kept]
    counts = company.check_trainable(labels)
    if phase:
        phase(f"embedding {len(texts)} texts")
    base = E5HeadEngine()  # the shipped embedding (all layers) and head
    embeddings = base.embed(texts)
    if phase:
        phase("fitting the head (5-fold cross-validation) and its temperature")
    fitted = company.fit_head(embeddings, labels, base.head.meta)
    held_out = [
        from_probabilities(float(row[0]), float(row[1]), float(row[2]), language)
        for row, language in zip(fitted.held_out, languages, strict=True)
    ]
    if phase:
        phase("scoring the same texts with the shipped head")
    shipped = get_engine(DEFAULT_ENGINE)
    metrics = {
        "company": company.measure(labels, held_out),
        "shipped": company.measure(labels, shipped.score_batch(texts, languages)),
        "shipped_version": shipped.version,
        "C": fitted.c,
        "temperature": fitted.temperature,
    }
    trained_on = {
        "file": path.name,
        "texts": len(texts),
        "classes": {label: counts[label] for label in LABELS},
        "languages": dict(sorted(Counter(languages).items())),
        "other_languages_left_out": len(data.texts) - len(texts),
        "labels": data.report(),
    }
    with app.store.write() as conn:
        version = company.save(conn, fitted.head, trained_on, metrics)
    return {"version": version, "trained_on": trained_on, "metrics": metrics}


def heads(app: Custos) -> list[dict[str, Any]]:
    """The company's sentiment heads, newest first (the active one scores)."""
    with app.store.read() as conn:
        return company.history(conn)


def deactivate_head(app: Custos) -> int:
    """Score with the shipped head again; returns how many heads were active (0 or 1)."""
    with app.store.write() as conn:
        return company.deactivate(conn)


# -- export ----------------------------------------------------------------------------------
#: The columns of ``custos export interactions``, in order.
INTERACTION_COLUMNS = (
    "source",
    "record_id",
    "profile_id",
    "channel",
    "timestamp",
    "language",
    "sentiment_label",
    "sentiment_score",
    "sentiment_confidence",
)


def export_interactions(app: Custos, purpose: str, *, actor: str) -> Iterator[dict[str, Any]]:
    """Every interaction of a profile ``purpose`` may use, with its sentiment (label as a reader
    sees it, score, confidence): one row per interaction, columns :data:`INTERACTION_COLUMNS`.
    A column the purpose may not see is empty; an interaction of a source the purpose may not
    know of is left out (:func:`custos.service.reads.source_shown`: a source that holds health
    data, say); a note naming a health matter carries the sentiment of its redacted text, like
    every score. Refused when the purpose may not see sentiment at all. Audited as one entry."""
    session = reads.GuardSession(app, purpose, actor=actor, action="export.interactions")
    if session.rules.rule("sentiment") == "no":
        with session:
            session.refuse(
                f"purpose {purpose!r} may not see sentiment, so it cannot export it",
                "name a purpose whose categories include free_text (e.g. analytics)",
            )
    return _interaction_rows(app, session)


def _interaction_rows(app: Custos, session: reads.GuardSession) -> Iterator[dict[str, Any]]:
    """The rows of :func:`export_interactions`, audited however the export ends."""
    interaction, sentiment, membership = t.interactions, t.interaction_sentiment, t.profile_members
    raw, sources = t.raw_records, t.sources
    query = (
        select(
            membership.c.profile_id,
            sources.c.name,
            raw.c.record_id,
            interaction.c.channel,
            interaction.c.timestamp,
            interaction.c.language,
            sentiment.c.label,
            sentiment.c.score,
            sentiment.c.confidence,
            sentiment.c.language.label("detected"),
        )
        .select_from(interaction)
        .join(membership, membership.c.raw_id == interaction.c.raw_id)
        .join(raw, raw.c.id == interaction.c.raw_id)
        .join(sources, sources.c.id == interaction.c.source_id)
        .outerjoin(sentiment, sentiment.c.raw_id == interaction.c.raw_id)
        .order_by(membership.c.profile_id, interaction.c.raw_id)
    )
    refused: set[str] = set()
    shown = session.fields
    with session, app.store.read() as conn:
        access = session.access(conn)
        for row in conn.execution_options(yield_per=20_000).execute(query):
            pid, source = row.profile_id, row.name
            if not access.allowed(pid):
                if pid not in refused:
                    refused.add(pid)
                    session.refused += 1
                continue
            if not reads.source_shown(access, pid, source):
                continue
            item = dict.fromkeys(INTERACTION_COLUMNS)
            item |= {"source": source, "record_id": row.record_id, "profile_id": pid}
            allowed = access.field_allowed
            if allowed(pid, "channel", source):
                item["channel"] = row.channel
            if allowed(pid, "timestamp", source) and row.timestamp is not None:
                item["timestamp"] = _aware(row.timestamp).isoformat()
            if allowed(pid, "language", source):
                item["language"] = row.language or (
                    row.detected if row.detected != "unknown" else None
                )
            if row.label is not None and allowed(pid, "sentiment", source):
                item["sentiment_label"] = shown_label(app, row.label, row.confidence)
                item["sentiment_score"] = None if row.score is None else round(row.score, 4)
                item["sentiment_confidence"] = (
                    None if row.confidence is None else round(row.confidence, 4)
                )
            shown.update(k for k in ("channel", "timestamp", "language") if item[k])
            if item["sentiment_label"]:
                shown.add("sentiment")
            if not session.subjects or session.subjects[-1] != pid:
                session.handed(pid)
            yield item
