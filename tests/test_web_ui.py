"""The web UI's 360° view in a real browser (headless Chromium via Playwright): search, open a
profile, see its member records and link evidence, unmerge a record as an admin."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.service import Custos, keys
from tests.conftest import served, write
from tests.test_web import CHROMIUM, FLAGS


@pytest.fixture
def merged_site(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """Anna in two sources (one profile of two records), Ben in one; served by uvicorn."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, db="unused", sentiment_engine="fake"
    )
    with Custos.open(str(tmp_path / "ui.db"), settings) as custos:
        custos.ingest(
            write(
                tmp_path / "crm.csv",
                "record_id,first_name,last_name,email\n"
                "r1,Anna,Muster,anna@example.com\nr2,Ben,Beispiel,ben@example.com\n",
            ),
            "crm",
        )
        custos.ingest(
            write(
                tmp_path / "shop.csv",
                "record_id,first_name,last_name,email\ns1,Anna,Muster,anna@example.com\n",
            ),
            "shop",
        )
        custos.ingest(
            write(
                tmp_path / "calls.csv",
                "record_id,timestamp,email,text\n"
                "i1,2026-01-02T10:00:00Z,anna@example.com,Thanks for the great help\n",
            ),
            "calls",
            kind=Kind.INTERACTIONS,
        )
        custos.resolve()
        custos.ingest(
            write(
                tmp_path / "consent.csv",
                "email,purpose,status,timestamp\n"
                "anna@example.com,marketing_email,granted,2026-01-01\n"
                "ben@example.com,marketing_email,denied,2026-01-01\n",
            ),
            "crm",
            kind=Kind.CONSENTS,
        )
        made = {
            "curator": keys.create(
                custos, "curator", ["customer_service", "consent_management"], "admin"
            ),
            "desk": keys.create(custos, "desk", ["customer_service"]),
        }
        with served(custos) as base:
            yield base, made


def test_an_admin_unmerges_a_record_and_it_leaves_the_profile(
    merged_site: tuple[str, dict[str, str]],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, made = merged_site
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page()
            page.goto(f"{base}/")
            # A read key sees the members and the evidence, but no unmerge button.
            page.fill("#key", made["desk"])
            page.click("#use-key")
            expect(page.get_by_test_id("who")).to_have_text("key desk (read)")
            page.fill("#value", "anna@example.com")
            page.click("#find")
            expect(page.get_by_test_id("profile")).to_be_visible()
            expect(page.locator("#records tbody tr")).to_have_count(2)
            expect(page.get_by_test_id("evidence")).to_contain_text("crm:r1")
            expect(page.locator("#records button.unmerge")).to_have_count(0)
            # Not bound to consent_management: the API's refusal is shown in place.
            expect(page.get_by_test_id("consent-message")).to_contain_text("403")
            expect(page.get_by_test_id("sentiment")).to_be_visible()
            expect(page.locator("#sentiment-timeline")).to_contain_text("positive")
            expect(page.locator("#nav-audit")).to_be_hidden()
            expect(page.locator("#nav-consent")).to_be_hidden()

            page.evaluate("sessionStorage.clear()")
            page.goto(f"{base}/ui/")
            page.fill("#key", made["curator"])
            page.click("#use-key")
            expect(page.get_by_test_id("who")).to_have_text("key curator (admin)")
            page.fill("#value", "anna@example.com")
            page.click("#find")
            records = page.locator("#records tbody tr")
            expect(records).to_have_count(2)
            expect(page.locator("#records")).to_contain_text("shop")
            page.click('#records button[data-record="shop:s1"]')
            expect(records).to_have_count(1)
            expect(page.locator("#records")).not_to_contain_text("shop")
            expect(page.locator("#records")).to_contain_text("r1")
            expect(page.get_by_test_id("message")).to_be_hidden()
            # An admin bound to consent_management sees the state and the history.
            expect(page.locator("#consent")).to_contain_text("granted")
            expect(page.locator("#consent-history")).to_contain_text("marketing_email")
            expect(page.get_by_test_id("consent-message")).to_be_hidden()

            page.click("#nav-consent")
            overview = page.get_by_test_id("consent-overview")
            expect(overview).to_be_visible()
            expect(page.get_by_test_id("profile")).to_be_hidden()
            email = page.locator("#overview tbody tr", has_text="marketing_email")
            # Anna's grant is tied to her e-mail, which both of her profiles (since the
            # unmerge) hold; Ben denied; no one is left without a record.
            expect(email.locator("td")).to_have_text(["marketing_email", "consent", "2", "1", "0"])

            page.click("#nav-audit")
            expect(page.get_by_test_id("audit")).to_be_visible()
            expect(overview).to_be_hidden()
            expect(page.locator("#audit-log")).to_contain_text("profile.unmerge")
            expect(page.locator("#audit-log")).to_contain_text("consent.overview")
            expect(page.locator("#audit-log")).not_to_contain_text("anna")
        finally:
            browser.close()


def test_link_evidence_shows_the_match_weight_of_each_field(tmp_path: Path) -> None:
    """A probabilistic link (no shared identifier: another e-mail, a surname typo) shows the
    match weight per compared field, field names and numbers only."""
    from playwright.sync_api import expect, sync_playwright

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, db="unused", sentiment_engine="fake"
    )
    header = "record_id,first_name,last_name,email,date_of_birth,street,postcode,city\n"
    with Custos.open(str(tmp_path / "ui.db"), settings) as custos:
        custos.ingest(
            write(
                tmp_path / "crm.csv",
                header + "r3,Clara,Schmidt,clara@work.example,1985-03-04,Lindenweg 7,80331,"
                "München\n",
            ),
            "crm",
        )
        custos.ingest(
            write(
                tmp_path / "shop.csv",
                header + "s3,Clara,Schmitt,clara.s@home.example,1985-03-04,Lindenweg 7,80331,"
                "München\n",
            ),
            "shop",
        )
        custos.resolve()
        desk = keys.create(custos, "desk", ["customer_service"])
        with served(custos) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            try:
                page = browser.new_page()
                page.goto(f"{base}/")
                page.fill("#key", desk)
                page.click("#use-key")
                page.fill("#value", "clara@work.example")
                page.click("#find")
                expect(page.locator("#records tbody tr")).to_have_count(2)
                link = page.locator("#evidence tbody tr", has_text="match")
                expect(link).to_have_count(1)
                per_field = link.locator("td").nth(4)
                expect(per_field).to_contain_text("surname +")
                shown = per_field.inner_text().split(", ")
                parsed = {
                    name: float(weight.replace("−", "-"))
                    for name, weight in (
                        re.fullmatch(r"(\w+) ([+−]\d+\.\d)", s).groups()  # type: ignore[union-attr]
                        for s in shown
                    )
                }
                assert {"first_name", "surname", "dob", "email"} <= set(parsed)
                assert list(parsed.values()) == sorted(parsed.values(), reverse=True)
                assert parsed["email"] < 0 < parsed["dob"]  # other e-mails count against it
                for value in ("Schmidt", "Schmitt", "Lindenweg", "1985", "example"):
                    expect(page.get_by_test_id("evidence")).not_to_contain_text(value)
            finally:
                browser.close()
