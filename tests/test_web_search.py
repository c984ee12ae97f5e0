"""The web UI's name search in headless Chromium (issue 17, item 10) over
``GET /v1/profiles/search``: a person found by name, with what the purpose may see, and no one the
purpose may not see. Needs the search route (another branch of issue 17 builds it; until it is
merged, api/search_standin.py stands in)."""

from __future__ import annotations

from tests.test_web import CHROMIUM, FLAGS
from tests.test_web_views import views  # noqa: F401  (the fixture)


def test_a_person_is_found_by_name_and_only_under_a_purpose_that_may_see_them(
    views: tuple[str, dict[str, str]],  # noqa: F811
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
            page.fill("#q", "anna muster")
            page.keyboard.press("Enter")
            cards = page.locator("#profile-list li")
            anna = cards.filter(has_text="Anna Muster")
            expect(anna).to_have_count(1)
            expect(anna).to_contain_text("anna@example.com")
            expect(page.get_by_test_id("results-count")).to_contain_text("matching “anna muster”")
            expect(page.locator("#results-title")).to_have_text("Search results")
            anna.locator("a").click()
            expect(page.locator("#profile-name")).to_have_text("Anna Muster")

            # marketing e-mail: Anna granted it, Person01 denied it, the others never said
            page.evaluate("sessionStorage.clear()")
            page.goto(f"{base}/ui/")
            page.fill("#key", made["letters"])
            page.click("#use-key")
            expect(page.get_by_test_id("who")).to_have_text("key letters (read)")
            page.fill("#q", "Person01")
            page.click("#search-names")
            expect(page.get_by_test_id("results-count")).to_contain_text("No profile matching")
            expect(cards).to_have_count(0)
            page.fill("#q", "Anna")
            page.click("#search-names")
            expect(cards.filter(has_text="Anna")).to_have_count(1)
        finally:
            browser.close()
