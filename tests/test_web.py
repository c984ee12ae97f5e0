"""The web UI in a real browser (headless Chromium driven by Playwright) against uvicorn."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.service import Custos, keys
from tests.conftest import served, write

# Debian's chromium package (scripts/test installs it); never a browser download.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PEOPLE = """record_id,first_name,last_name,email,condition
r1,Anna,Muster,anna@example.com,asthma
r2,Ben,Beispiel,ben@example.com,
"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A store with two persons (Anna consented to marketing e-mail), served by uvicorn."""
    settings = Settings(_env_file=None, db="unused")  # type: ignore[call-arg]
    with Custos.open(str(tmp_path / "web.db"), settings) as custos:
        custos.ingest(
            write(tmp_path / "crm.csv", PEOPLE),
            "crm",
            map_path=write(tmp_path / "m.yaml", "categories:\n  condition: health\n"),
        )
        custos.ingest(
            write(
                tmp_path / "calls.csv",
                "record_id,timestamp,email,text\n"
                "i1,2026-01-02T10:00:00Z,anna@example.com,Asked about the invoice\n",
            ),
            "calls",
            kind=Kind.INTERACTIONS,
        )
        custos.resolve()
        custos.ingest(
            write(
                tmp_path / "consent.csv",
                "email,purpose,status,timestamp\nanna@example.com,marketing_email,granted,2026-01-01\n",
            ),
            "crm",
            kind=Kind.CONSENTS,
        )
        made = {
            "desk": keys.create(custos, "desk", ["customer_service"]),
            "newsletter": keys.create(custos, "newsletter", ["marketing_email"]),
        }
        with served(custos) as base:
            yield base, made


def test_the_ui_shows_what_the_keys_purpose_may_see(
    site: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, made = site
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page()
            page.goto(f"{base}/")
            page.fill("#key", "ck_live_wrong")
            page.click("#use-key")
            expect(page.get_by_test_id("message")).to_contain_text("401")

            page.fill("#key", made["desk"])
            page.click("#use-key")
            expect(page.get_by_test_id("who")).to_have_text("key desk (read)")
            page.fill("#value", "ANNA@example.com")
            page.click("#find")
            profile = page.get_by_test_id("profile")
            expect(profile).to_be_visible()
            expect(page.locator("#golden")).to_contain_text("Muster")
            expect(page.locator("#golden")).not_to_contain_text("asthma")  # health: not here
            expect(page.locator("#interactions")).to_contain_text("Asked about the invoice")

            page.evaluate("sessionStorage.clear()")
            page.goto(f"{base}/ui/")
            page.fill("#key", made["newsletter"])
            page.click("#use-key")
            page.fill("#value", "ben@example.com")
            page.click("#find")
            # Ben never consented: he looks like no one at all (issue 14, presence oracles)
            expect(page.get_by_test_id("message")).to_have_text("404: no profile has that email")
            expect(profile).to_be_hidden()
            page.click("#list")
            expect(page.locator("#profile-list li")).to_have_count(1)
            page.click("#profile-list a")
            expect(page.locator("#golden")).to_contain_text("Anna")
        finally:
            browser.close()
