"""``custos demo``: a synthetic company, ingested and resolved into a fresh embedded store."""

from __future__ import annotations

import csv
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.identity.metrics import PairScores, pairwise_scores
from custos.identity.resolve import ResolveSummary
from custos.ingest.pipeline import IngestSummary
from custos.service import insight
from custos.service.app import Custos, audit_files
from custos.store import normalise_url
from custos.synthetic import generate_company
from custos.synthetic.interactions import PLANTED_EVENT

STORE_NAME = "custos.db"
DEMO_PURPOSES = ("marketing_email", "personalization", "third_party_sharing", "analytics")


@dataclass
class DemoReport:
    """What the demo did, for printing."""

    folder: Path
    store: Path
    ingested: list[IngestSummary] = field(default_factory=list)
    resolved: ResolveSummary | None = None
    scores: PairScores | None = None
    stats: dict[str, int] = field(default_factory=dict)
    example: dict[str, Any] | None = None
    allowed: dict[str, int] = field(default_factory=dict)
    scored: int = 0
    impact: list[Any] = field(default_factory=list)
    seconds: float = 0.0


def run_demo(
    folder: Path,
    *,
    people: int = 1500,
    seed: int = 7,
    settings: Settings | None = None,
    on_file: Callable[[IngestSummary], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DemoReport:
    """Generate the demo company into ``folder`` (replacing an earlier demo there) and load it.
    ``on_phase`` hears the name of each step as it starts, ``progress`` the counts of those
    that count (ingestion, scoring)."""
    started = time.perf_counter()
    phase = on_phase or (lambda _name: None)
    settings = settings or Settings()
    if (folder / STORE_NAME).exists():
        for leftover in folder.glob(STORE_NAME + "*"):
            leftover.unlink()
        # A new store in its place: the old one's audit checkpoint would report its entries
        # as deleted.
        audit_files(settings, normalise_url(str(folder / STORE_NAME)))[1].unlink(missing_ok=True)
    data = folder / "data"
    if data.exists():
        shutil.rmtree(data)
    folder.mkdir(parents=True, exist_ok=True)
    phase(f"generating a synthetic company of {people} people")
    manifest = generate_company(data, people=people, seed=seed)
    store_path = folder / STORE_NAME
    report = DemoReport(folder=folder, store=store_path)
    with Custos.open(str(store_path), settings) as app:
        # People first, then what they did, then their consents.
        order = {Kind.RECORDS: 0, Kind.INTERACTIONS: 1, Kind.CONSENTS: 2}
        for silo in sorted(manifest.files, key=lambda f: order[Kind(f.kind)]):
            phase(f"ingesting {silo.path.name}")
            summary = app.ingest(
                silo.path,
                silo.source,
                kind=Kind(silo.kind),
                map_path=silo.map_path,
                actor="demo",
                progress=progress,
            )
            report.ingested.append(summary)
            if on_file:
                on_file(summary)
        phase("resolving profiles (training the matching model)")
        report.resolved = app.resolve(actor="demo")
        phase("checking the profiles against the generator's truth")
        predicted = {(s, r): p for s, r, p in app.xref()}
        with manifest.truth_path.open(newline="", encoding="utf-8") as handle:
            truth = {
                (row["source"], row["record_id"]): row["person_id"]
                for row in csv.DictReader(handle)
            }
        report.scores = pairwise_scores(predicted, truth)
        report.stats = app.stats()
        for purpose in DEMO_PURPOSES:  # what the consent guard lets each purpose see
            report.allowed[purpose] = sum(1 for _ in app.export_profiles(purpose, actor="demo"))
        sizes: dict[str, int] = {}
        for pid in predicted.values():
            if pid:
                sizes[pid] = sizes.get(pid, 0) + 1
        if sizes:
            best = max(sorted(sizes), key=lambda p: sizes[p])
            report.example = app.profile(best, actor="demo", purpose="customer_service")
        # Insight: the fast lexicon engine keeps the demo quick (``custos insight score`` uses
        # the more accurate default); the company has a planted event to find.
        phase("scoring sentiment")
        report.scored = insight.score(app, engine="lexicon", progress=progress).scored
        phase("measuring the planted event's impact")
        report.impact = insight.impact(
            app, PLANTED_EVENT[0], window_days=120, by="country", channel="social", actor="demo"
        )
    report.seconds = time.perf_counter() - started
    return report
