"""The web UI people want to open (issue 17, item 10), in headless Chromium against uvicorn:
the profile list a page at a time with counts, a summary card, member records with what the
purpose may see, the mood timeline and consent charts (inline SVG), human-friendly times, the
quarantine and the audit log with filters, reachable by keyboard with every field labelled and
all text at WCAG AA contrast."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.service import Custos, keys
from tests.conftest import served, write
from tests.test_web import CHROMIUM, FLAGS

#: more people than one page of the list (25)
CROWD = "".join(f"p{n},Person{n:02d},Crowd,person{n}@example.com,\n" for n in range(30))
PEOPLE = (
    "record_id,first_name,last_name,email,phone\n"
    "r1,Anna,Muster,anna@example.com,+49 30 1234567\n" + CROWD
)
CALLS = """record_id,timestamp,email,text
i1,2026-01-02T10:00:00Z,anna@example.com,Thanks for the great help
i2,2026-02-10T10:00:00Z,anna@example.com,The delivery was terrible and bad
i3,2026-03-20T10:00:00Z,anna@example.com,Danke super
"""


@pytest.fixture
def views(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """Anna (two records, three calls, a grant) among 30 more people, a few quarantined rows."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, db="unused", sentiment_engine="fake"
    )
    with Custos.open(str(tmp_path / "views.db"), settings) as custos:
        custos.ingest(write(tmp_path / "crm.csv", PEOPLE), "crm")
        custos.ingest(
            write(
                tmp_path / "shop.csv",
                "record_id,first_name,last_name,email\ns1,Anna,Muster,anna@example.com\n"
                ",Nora,Nobody,nora@example.com\ns3,Otto,Odd,otto.at.example\n",
            ),
            "shop",
        )
        custos.ingest(write(tmp_path / "calls.csv", CALLS), "calls", kind=Kind.INTERACTIONS)
        custos.resolve()
        custos.ingest(
            write(
                tmp_path / "consent.csv",
                "email,purpose,status,timestamp\n"
                "anna@example.com,marketing_email,granted,2026-01-01\n"
                "person1@example.com,marketing_email,denied,2026-01-01\n",
            ),
            "crm",
            kind=Kind.CONSENTS,
        )
        made = {
            "desk": keys.create(custos, "desk", ["customer_service"]),
            "letters": keys.create(custos, "letters", ["marketing_email"]),
            "dpo": keys.create(custos, "dpo", ["customer_service", "consent_management"], "admin"),
        }
        with served(custos) as base:
            yield base, made


#: every visible input, select and button has an accessible name (a label, aria-label or text)
UNLABELLED = """() => [...document.querySelectorAll('input, select, button')]
  .filter((e) => e.offsetParent !== null)
  .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
    && !(e.tagName === 'BUTTON' && e.textContent.trim()))
  .map((e) => e.id || e.outerHTML)"""

#: visible text below WCAG AA contrast with its background (4.5:1, large text 3:1)
LOW_CONTRAST = """() => {
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = (rgb) => rgb.slice(0, 3).map((v) => v / 255)
    .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4))
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (e) => {
    for (; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c;
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const e of document.querySelectorAll('body *')) {
    if (!(e instanceof HTMLElement) || e.offsetParent === null || e.disabled) continue;
    if (![...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const style = getComputedStyle(e);
    const [hi, lo] = [lum(parse(style.color)), lum(background(e))].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) low.push(`${e.tagName} ${ratio.toFixed(2)} ${e.textContent.trim().slice(0, 30)}`);
  }
  return low;
}"""


def test_profiles_page_by_page_with_a_summary_card_charts_and_friendly_times(
    views: tuple[str, dict[str, str]],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, made = views
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})  # a laptop
            page.goto(f"{base}/ui/")
            assert page.evaluate(UNLABELLED) == []
            page.fill("#key", made["desk"])
            page.keyboard.press("Enter")
            expect(page.get_by_test_id("who")).to_have_text("key desk (read)")
            assert page.evaluate(UNLABELLED) == []

            # the list: 25 a page, with counts, Next and Previous
            page.click("#list")
            cards = page.locator("#profile-list li")
            expect(cards).to_have_count(25)
            count = page.get_by_test_id("results-count")
            expect(count).to_contain_text("Profiles 1\u201325")
            expect(count).to_contain_text("more on the next page")
            expect(page.locator("#results-prev")).to_be_disabled()
            page.click("#results-next")
            expect(count).to_contain_text("Profiles 26\u2013")
            expect(cards).to_have_count(32 - 25)  # Anna, 30 more and Otto
            expect(page.locator("#results-next")).to_be_disabled()
            page.click("#results-prev")
            expect(count).to_contain_text("Profiles 1\u201325")
            anna = cards.filter(has_text="Anna Muster")
            expect(anna).to_contain_text("anna@example.com")
            expect(anna.locator("time")).to_have_count(1)

            # the summary card, member records with what customer_service may see
            anna.locator("a").click()
            expect(page.get_by_test_id("profile")).to_be_visible()
            expect(page.locator("#profile-name")).to_have_text("Anna Muster")
            expect(page.locator("#profile-name")).to_be_focused()
            summary = page.get_by_test_id("summary")
            expect(summary).to_contain_text("anna@example.com")
            expect(summary).to_contain_text("+49301234567")
            expect(page.locator('#summary-counts dd[data-count="records"]')).to_have_text("2")
            expect(page.locator('#summary-counts dd[data-count="interactions"]')).to_have_text("3")
            crm = page.locator("#records tbody tr", has_text="crm")
            expect(crm.locator("td")).to_have_text(
                ["crm", "r1", "Anna Muster", "anna@example.com", "+49301234567", ""]
            )

            # the mood timeline: one dot a scored call, a negative one among them
            chart = page.get_by_test_id("mood-chart")
            expect(chart.locator("svg circle")).to_have_count(3)
            expect(chart.locator("svg circle.negative")).to_have_count(1)
            expect(chart.locator("svg polyline")).to_have_count(1)
            expect(chart.locator("svg title").first).to_contain_text("3 interaction(s)")
            # human-friendly times, the exact time kept for machines and tooltips
            when = page.locator("#interactions time").first
            expect(when).to_have_text("20 Mar 2026")
            expect(when).to_have_attribute("datetime", "2026-03-20T10:00:00+00:00")
            expect(when).to_have_attribute("title", "2026-03-20T10:00:00Z")
            assert page.evaluate(LOW_CONTRAST) == []
        finally:
            browser.close()


def test_an_admin_works_the_quarantine_audit_log_and_consent_chart(
    views: tuple[str, dict[str, str]],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, made = views
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{base}/ui/")
            page.fill("#key", made["desk"])
            page.click("#use-key")
            expect(page.get_by_test_id("who")).to_have_text("key desk (read)")
            expect(page.locator("#nav-quarantine")).to_be_hidden()  # a read key: no admin pages
            page.click("#list")
            expect(page.locator("#profile-list li").first).to_be_visible()

            page.evaluate("sessionStorage.clear()")
            page.goto(f"{base}/ui/")
            page.fill("#key", made["dpo"])
            page.click("#use-key")
            expect(page.get_by_test_id("who")).to_have_text("key dpo (admin)")
            # by keyboard: the quarantine, its heading focused, open entries per source
            page.focus("#nav-quarantine")
            page.keyboard.press("Enter")
            expect(page.get_by_test_id("quarantine")).to_be_visible()
            expect(page.locator("#quarantine-title")).to_be_focused()
            expect(page.locator("#nav-quarantine")).to_have_attribute("aria-current", "page")
            expect(page.get_by_test_id("quarantine-sources")).to_have_text("shop: 2 open")
            rows = page.locator("#quarantine-list tbody tr")
            expect(rows).to_have_count(2)
            email = rows.filter(has_text="email")
            expect(email.locator("td").nth(0)).to_have_text("shop")
            expect(email.locator("td").nth(1)).to_contain_text("line 4")
            expect(email.locator("td").nth(2)).to_have_text("s3")
            expect(email.locator("td").nth(5)).not_to_be_empty()  # the fix
            for value in ("otto.at.example", "Nora", "Nobody"):  # the rows' values stay out
                expect(page.get_by_test_id("quarantine")).not_to_contain_text(value)
            page.select_option("#quarantine-status", "all")
            expect(rows).to_have_count(2)
            assert page.evaluate(LOW_CONTRAST) == []

            page.click("#nav-consent")
            chart = page.get_by_test_id("consent-chart")
            granted = chart.locator('rect[data-part="granted"]')
            expect(granted.first).to_be_visible()
            expect(chart.locator("title", has_text="marketing_email: 1 granted")).to_have_count(1)
            expect(chart.locator("title", has_text="marketing_email: 1 denied")).to_have_count(1)

            # the audit log, filtered
            page.click("#nav-audit")
            log = page.locator("#audit-log tbody tr")
            expect(log.first).to_be_visible()
            page.fill("#audit-actor", "desk")
            page.click("#audit-filter")
            expect(log.first).to_contain_text("desk")
            actors = page.locator("#audit-log tbody tr td:nth-child(3)").all_inner_texts()
            assert actors and set(actors) == {"desk"}
            page.fill("#audit-actor", "")
            page.fill("#audit-action", "quarantine.")
            page.click("#audit-filter")
            expect(log).to_have_count(2)  # the quarantine was read twice
            expect(log.first.locator("td").nth(3)).to_have_text("quarantine.list")
            expect(log.first.locator("time")).to_have_text("just now")
            page.fill("#audit-since", "2099-01-01T00:00")
            page.click("#audit-filter")
            expect(log).to_have_count(0)
            page.click("#audit-reset")
            expect(log.filter(has_text="profile.list")).not_to_have_count(0)
            expect(page.locator("#audit-log")).not_to_contain_text("anna")
            assert page.evaluate(UNLABELLED) == []
            assert page.evaluate(LOW_CONTRAST) == []
        finally:
            browser.close()


def test_sources_and_purposes_for_any_key(views: tuple[str, dict[str, str]]) -> None:
    """A read key opens Sources: each source with its kind, rows and open quarantine entries,
    and the taxonomy's purposes with their lawful basis and categories (issue 17, item 5)."""
    from playwright.sync_api import expect, sync_playwright

    base, made = views
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{base}/ui/")
            page.fill("#key", made["desk"])
            page.click("#use-key")
            expect(page.get_by_test_id("who")).to_have_text("key desk (read)")
            page.focus("#nav-sources")
            page.keyboard.press("Enter")
            expect(page.locator("#sources-title")).to_be_focused()
            sources = page.locator("#sources-list tbody tr")
            expect(sources).to_have_count(3)
            shop = sources.filter(has_text="shop")
            expect(shop.locator("td").nth(1)).to_have_text("records")
            expect(shop.locator("td").nth(4)).to_have_text("2")  # two rows wait in quarantine
            expect(shop.locator("time")).to_have_count(1)  # a friendly time, exact on hover
            purposes = page.locator("#purposes-list tbody tr")
            marketing = purposes.filter(has_text="marketing_email")
            expect(marketing.locator("td").nth(1)).to_have_text("consent")
            expect(marketing.locator("td").nth(3)).to_contain_text("contact")
            assert page.evaluate(UNLABELLED) == []
            assert page.evaluate(LOW_CONTRAST) == []
        finally:
            browser.close()
