"""The web UI's data-subject access part in a real browser (headless Chromium via Playwright)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from custos.core.settings import Settings
from custos.privacy.dsr.html import SECTIONS
from custos.service import Custos, keys
from custos.service.demo import run_demo
from tests.conftest import served
from tests.test_web import CHROMIUM, FLAGS


@pytest.fixture
def demo_site(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], dict[str, Any]]]:
    """The demo company, served by uvicorn; an admin and a read key; the demo's example person."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, db="unused", secret_key_file=str(tmp_path / "secret.key")
    )
    demo = run_demo(tmp_path / "demo", people=60, seed=3, settings=settings)
    assert demo.example is not None
    with Custos.open(str(demo.store), settings) as custos:
        made = {
            "dpo": keys.create(custos, "dpo", ["identity_curation"], "admin"),
            "desk": keys.create(custos, "desk", ["customer_service"]),
        }
        with served(custos) as base:
            yield base, made, demo.example


def test_an_admin_sees_a_demo_persons_access_report_in_the_page(
    demo_site: tuple[str, dict[str, str], dict[str, Any]],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, made, example = demo_site
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page()
            page.goto(f"{base}/")
            # A read key is not offered data-subject requests.
            page.fill("#key", made["desk"])
            page.click("#use-key")
            expect(page.get_by_test_id("who")).to_have_text("key desk (read)")
            expect(page.get_by_test_id("dsr")).to_be_hidden()

            page.evaluate("sessionStorage.clear()")
            page.goto(f"{base}/ui/")
            page.fill("#key", made["dpo"])
            page.click("#use-key")
            expect(page.get_by_test_id("who")).to_have_text("key dpo (admin)")
            expect(page.get_by_test_id("dsr")).to_be_visible()

            page.fill("#dsr-key", "nobody@example.com")
            page.click("#dsr-access")
            expect(page.get_by_test_id("message")).to_contain_text("404")
            expect(page.get_by_test_id("dsr-report")).to_have_count(0)

            page.fill("#dsr-key", example["profile_id"])
            page.click("#dsr-access")
            expect(page.get_by_test_id("dsr-status")).to_contain_text("(done)")
            expect(page.get_by_test_id("dsr-status")).to_contain_text(example["profile_id"])
            expect(page.get_by_test_id("message")).to_be_hidden()
            frame_element = page.get_by_test_id("dsr-report")
            expect(frame_element).to_be_visible()
            expect(frame_element).to_have_attribute("sandbox", "")
            report = page.frame_locator("#dsr-report")
            expect(report.locator("h1")).to_have_text(
                "What we hold about you and what we do with it"
            )
            headings = report.locator("h2")
            expect(headings).to_have_text([title for title, _ in SECTIONS.values()])
            for index in range(len(SECTIONS)):
                expect(headings.nth(index)).to_be_visible()
            expect(report.locator("script")).to_have_count(0)
        finally:
            browser.close()
