"""The web UI's review queue in a real browser (headless Chromium via Playwright): a curator
sees the pairs strongest first with the match weight of each field, opens a profile, accepts
one pair and rejects another; the store keeps both decisions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from custos.core.settings import Settings
from custos.service import Custos, keys
from custos.store import tables as t
from tests.conftest import served
from tests.test_review import PERSONAL, build_queue, profile_of, raw_id
from tests.test_web import CHROMIUM, FLAGS


@pytest.fixture
def review_site(tmp_path: Path) -> Iterator[tuple[str, Custos, dict[str, int], dict[str, str]]]:
    """The review queue of tests.test_review, served by uvicorn, with three keys."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, db="unused", sentiment_engine="fake", probabilistic_matching=False
    )
    with Custos.open(str(tmp_path / "review.db"), settings) as custos:
        pairs = build_queue(custos, tmp_path)
        made = {
            "curator": keys.create(
                custos, "curator", ["customer_service", "identity_curation"], "admin"
            ),
            "auditor": keys.create(custos, "auditor", ["identity_curation"]),
            "desk": keys.create(custos, "desk", ["customer_service"]),
        }
        with served(custos) as base:
            yield base, custos, pairs, made


def test_a_curator_accepts_and_rejects_pairs_in_the_review_view(
    review_site: tuple[str, Custos, dict[str, int], dict[str, str]],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, custos, pairs, made = review_site
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page()
            page.goto(f"{base}/")
            # A key without identity_curation has no review view.
            page.fill("#key", made["desk"])
            page.click("#use-key")
            expect(page.get_by_test_id("who")).to_have_text("key desk (read)")
            expect(page.locator("#nav-review")).to_be_hidden()

            page.evaluate("sessionStorage.clear()")
            page.goto(f"{base}/ui/")
            page.fill("#key", made["curator"])
            page.click("#use-key")
            expect(page.get_by_test_id("who")).to_have_text("key curator (admin)")
            page.click("#nav-review")
            queue = page.get_by_test_id("review-queue")
            rows = page.locator("#review-queue tbody tr")
            expect(rows).to_have_count(3)
            expect(page.get_by_test_id("review-total")).to_contain_text("3 pair(s) waiting")
            # Strongest first, with the weight, both records and the reason.
            expect(rows.nth(0).locator("td").nth(0)).to_have_text(str(pairs["twins"]))
            expect(rows.locator("td:nth-child(3)")).to_have_text(["14.2", "2.5", "-1.5"])
            first = rows.nth(0)
            expect(first).to_contain_text("conflict")
            expect(first).to_contain_text("crm:c1")
            expect(first).to_contain_text("shop:s1")
            expect(first).to_contain_text("first names differ")
            # The weight of each field as a signed bar: red against, green for the match.
            expect(first.locator('.weight[data-field="first_name"] .bar.negative')).to_have_count(1)
            expect(first.locator('.weight[data-field="household"] .bar.positive')).to_have_count(1)
            expect(first.locator('.weight[data-field="first_name"]')).to_contain_text("−9.9")
            # and the prior odds: with the fields, the pair's total weight
            expect(first.locator('.weight[data-field="prior"]')).to_contain_text("+2.8")
            width = first.locator('.weight[data-field="household"] .bar').evaluate(
                "e => e.getBoundingClientRect().width"
            )
            assert width > 0
            for value in PERSONAL:
                expect(queue).not_to_contain_text(value)

            page.select_option("#review-status", "conflict")
            expect(rows).to_have_count(1)
            page.select_option("#review-status", "")
            expect(rows).to_have_count(3)

            # A record's profile opens under the key's other purpose.
            twin = profile_of(custos, "crm:c1")
            first.locator(f'a[data-profile="{twin}"]').click()
            expect(page.get_by_test_id("profile")).to_be_visible()
            expect(page.locator("#profile-purpose")).to_have_text("customer_service")
            expect(page.locator("#golden")).to_contain_text("Max")
            expect(page.get_by_test_id("review")).to_be_hidden()

            page.click("#nav-review")
            expect(rows).to_have_count(3)
            page.fill("#review-reason", "twins")
            page.click(f'#review-queue button.reject[data-pair="{pairs["twins"]}"]')
            done = page.get_by_test_id("review-done")
            expect(done).to_contain_text(f"pair {pairs['twins']} rejected")
            expect(rows).to_have_count(2)
            expect(rows.locator("td:nth-child(1)")).to_have_text(
                [str(pairs["anna"]), str(pairs["ben_anne"])]
            )
            page.fill("#review-reason", "same person, new address")
            page.click(f'#review-queue button.accept[data-pair="{pairs["anna"]}"]')
            expect(done).to_contain_text(f"pair {pairs['anna']} accepted")
            expect(done).to_contain_text(profile_of(custos, "crm:c2"))
            # The accept rebuilt the profiles (and may have rewritten the queue): neither
            # decided pair is listed any more.
            for left, right in (("crm:c1", "shop:s1"), ("crm:c2", "shop:s2")):
                expect(rows.filter(has_text=left).filter(has_text=right)).to_have_count(0)
            expect(page.get_by_test_id("message")).to_be_hidden()

            # A curator with a read key sees the queue but cannot decide.
            page.evaluate("sessionStorage.clear()")
            page.goto(f"{base}/ui/")
            page.fill("#key", made["auditor"])
            page.click("#use-key")
            page.click("#nav-review")
            expect(page.get_by_test_id("review-total")).not_to_be_empty()
            expect(page.locator("#review-queue button")).to_have_count(0)
            expect(page.locator("#review-reason")).to_be_hidden()
        finally:
            browser.close()

    anna = profile_of(custos, "crm:c2")
    assert profile_of(custos, "shop:s2") == anna
    assert profile_of(custos, "crm:c1") != profile_of(custos, "shop:s1")
    with custos.store.read() as conn:
        kept = [
            (r.decision, {r.left_raw_id, r.right_raw_id}, r.actor, r.reason)
            for r in conn.execute(select(t.identity_decisions).order_by(t.identity_decisions.c.id))
        ]
    assert kept == [
        ("apart", {raw_id(custos, "crm:c1"), raw_id(custos, "shop:s1")}, "curator", "twins"),
        (
            "together",
            {raw_id(custos, "crm:c2"), raw_id(custos, "shop:s2")},
            "curator",
            "same person, new address",
        ),
    ]
    actions = {(e["actor"], e["action"]) for e in custos.audit_entries(limit=200)}
    assert {
        ("curator", "profile.review"),
        ("curator", "profile.review.accept"),
        ("curator", "profile.review.reject"),
        ("auditor", "profile.review"),
    } <= actions
