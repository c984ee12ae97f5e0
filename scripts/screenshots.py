"""Screenshots of the web UI's main pages for the README, from the synthetic demo company.

Builds a small demo store in a temporary folder, creates an admin key, serves the API with
uvicorn in a thread and drives Debian's Chromium (headless, via Playwright) through the search
results, a profile's 360° view, the quarantine, the consent overview, the sources, the audit log, a
data-subject access report and the review queue (when resolution kept pairs for review). The PNGs (1200 px wide)
go to ``docs/screenshots/``. Every person shown is synthetic.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy import func, select

from custos.api.app import create_app
from custos.core.settings import Settings
from custos.service import Custos, keys
from custos.service.demo import run_demo
from custos.store import tables as t

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
WIDTH, MAX_HEIGHT = 1200, 1800


def shoot(page: Page, out: Path, name: str) -> Path:
    """A PNG of the page, 1200 px wide, at most MAX_HEIGHT tall."""
    height = min(int(page.evaluate("document.documentElement.scrollHeight")), MAX_HEIGHT)
    target = out / f"{name}.png"
    page.screenshot(
        path=str(target),
        full_page=True,
        clip={"x": 0, "y": 0, "width": WIDTH, "height": height},
    )
    return target


def _with_match_link(custos: Custos) -> str | None:
    """The largest profile joined by a probabilistic link (its link evidence shows the match
    weight of each field), or None."""
    me, pm = t.merge_evidence, t.profile_members
    with custos.store.read() as conn:
        found = conn.execute(
            select(pm.c.profile_id)
            .where(pm.c.profile_id.in_(select(me.c.profile_id).where(me.c.rule == "match")))
            .group_by(pm.c.profile_id)
            .order_by(func.count().desc(), pm.c.profile_id)
            .limit(1)
        ).scalar()
    return str(found) if found else None


def main() -> None:
    """Build the demo store, serve it and take the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            db="unused",
            secret_key_file=str(folder / "secret.key"),
            sentiment_engine="lexicon",
        )
        demo = run_demo(folder / "demo", people=60, seed=3, settings=settings)
        assert demo.example is not None, "the demo made no profile"
        person = demo.example["profile_id"]
        with Custos.open(str(demo.store), settings) as custos:
            person = _with_match_link(custos) or person
            key = keys.create(
                custos,
                "dpo",
                ["customer_service", "consent_management", "identity_curation"],
                "admin",
            )
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            server = uvicorn.Server(
                uvicorn.Config(create_app(custos), port=port, log_level="warning", access_log=False)
            )
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            deadline = time.monotonic() + 10
            while not server.started and time.monotonic() < deadline:
                time.sleep(0.02)
            base = f"http://127.0.0.1:{port}"
            try:
                with sync_playwright() as pw:
                    browser = pw.chromium.launch(
                        executable_path=CHROMIUM, headless=True, args=FLAGS
                    )
                    try:
                        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
                        page.goto(f"{base}/ui/")
                        page.fill("#key", key)
                        page.click("#use-key")
                        expect(page.get_by_test_id("who")).to_have_text("key dpo (admin)")
                        page.select_option("#purpose", "customer_service")

                        page.click("#list")
                        expect(page.locator("#profile-list li").first).to_be_visible()
                        made = [shoot(page, out, "search")]

                        page.select_option("#kind", "profile_id")
                        page.fill("#value", person)
                        page.click("#find")
                        expect(page.get_by_test_id("profile")).to_be_visible()
                        expect(page.locator("#consent tbody tr").first).to_be_visible()
                        expect(page.get_by_test_id("sentiment")).to_be_visible()
                        expect(
                            page.get_by_test_id("mood-chart").locator("circle").first
                        ).to_be_visible()
                        if person != demo.example["profile_id"]:  # a probabilistic link
                            expect(page.locator("#evidence")).to_contain_text("match")
                        made.append(shoot(page, out, "profile"))

                        page.click("#nav-quarantine")
                        expect(page.get_by_test_id("quarantine-sources")).not_to_be_empty()
                        if page.locator("#quarantine-list tbody tr").count():
                            made.append(shoot(page, out, "quarantine"))
                        else:
                            print("the demo quarantined no row: no quarantine screenshot")

                        page.click("#nav-consent")
                        expect(page.locator("#overview tbody tr").first).to_be_visible()
                        expect(
                            page.get_by_test_id("consent-chart").locator("rect").first
                        ).to_be_visible()
                        made.append(shoot(page, out, "consent-overview"))

                        page.click("#nav-sources")
                        expect(page.locator("#sources-list tbody tr").first).to_be_visible()
                        made.append(shoot(page, out, "sources"))

                        page.click("#nav-audit")
                        expect(page.locator("#audit-log tbody tr").first).to_be_visible()
                        made.append(shoot(page, out, "audit-log"))

                        page.click("#nav-search")
                        page.fill("#dsr-key", person)
                        page.click("#dsr-access")
                        expect(page.get_by_test_id("dsr-status")).to_contain_text("(done)")
                        expect(page.frame_locator("#dsr-report").locator("h1")).to_be_visible()
                        made.append(shoot(page, out, "dsr-report"))

                        page.click("#nav-review")
                        expect(page.get_by_test_id("review-total")).not_to_be_empty()
                        if page.locator("#review-queue tbody tr").count():
                            made.append(shoot(page, out, "review"))
                        else:
                            print("no pairs waiting for review: no review screenshot")
                    finally:
                        browser.close()
            finally:
                server.should_exit = True
                thread.join(10)
    for path in made:
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
