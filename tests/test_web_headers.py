"""What the browser is told (issue 14, item 15): the web UI and the API docs work in Chromium
under the content security policy, load nothing from elsewhere, and refuse to be framed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from custos.core.settings import Settings
from custos.service import Custos, keys
from tests.conftest import served, write
from tests.test_web import CHROMIUM, FLAGS


@contextmanager
def _attacker(html: str) -> Iterator[str]:
    """A page of another origin (a second server on loopback) that serves ``html``."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """One person, served by uvicorn; the base URL and a customer-service key."""
    settings = Settings(_env_file=None, db="unused")  # type: ignore[call-arg]
    with Custos.open(str(tmp_path / "web.db"), settings) as custos:
        custos.ingest(
            write(tmp_path / "crm.csv", "record_id,first_name,email\nr1,Anna,anna@example.com\n"),
            "crm",
        )
        custos.resolve()
        key = keys.create(custos, "desk", ["customer_service"])
        with served(custos) as base:
            yield base, key


def test_every_answer_carries_the_security_headers(site: tuple[str, str]) -> None:
    base, key = site
    for path in ("/ui/", "/ui/custos.js", "/docs", "/openapi.json", "/v1/me", "/health"):
        answer = httpx.get(base + path, headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200, path
        policy = answer.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    docs = httpx.get(f"{base}/docs").text
    assert "cdn" not in docs.lower() and "https://" not in docs


def test_the_ui_and_the_docs_work_under_the_policy_and_cannot_be_framed(
    site: tuple[str, str],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, key = site
    violations: list[str] = []
    elsewhere: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page()
            page.on(
                "console",
                lambda m: (
                    violations.append(m.text) if "Content Security Policy" in m.text else None
                ),
            )
            page.on(
                "request",
                lambda r: None if r.url.startswith((base, "data:")) else elsewhere.append(r.url),
            )
            page.goto(f"{base}/ui/")
            page.fill("#key", key)
            page.click("#use-key")
            page.fill("#value", "anna@example.com")
            page.click("#find")
            expect(page.get_by_test_id("profile")).to_be_visible()
            expect(page.locator("#golden")).to_contain_text("Anna")

            page.goto(f"{base}/docs")
            expect(page.locator(".swagger-ui .info .title")).to_contain_text("custos")
            expect(page.locator(".opblock").first).to_be_visible()
            assert violations == [] and elsewhere == []

            # another site (another origin on this machine) frames the UI to trick a user
            # into clicking (clickjacking)
            with _attacker(f'<iframe src="{base}/ui/"></iframe>') as attacker:
                page.goto(attacker)
                page.wait_for_timeout(500)
                framed = [f for f in page.frames if f != page.main_frame]
            # Chromium refuses to render it (frame-ancestors 'none'): an error page in its place
            assert [f.url for f in framed] == ["chrome-error://chromewebdata/"]
            assert framed[0].locator("#key").count() == 0
        finally:
            browser.close()
