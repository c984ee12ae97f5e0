"""What the command line tells its user: the server's address, progress during long steps."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx


def test_serve_prints_the_web_ui_address_and_it_answers(tmp_path: Path) -> None:
    """Issue 17 item 11: `serve` printed the API's address only, not where the web UI is."""
    db = str(tmp_path / "c.db")
    created = subprocess.run(
        [sys.executable, "-c", "from custos.cli import main; main()", "--db", db, "init"],
        capture_output=True,
    )
    assert created.returncode == 0, created.stderr
    process = subprocess.Popen(
        [sys.executable, "-c", "from custos.cli import main; main()", "--db", db, "serve",
         "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert line.startswith("custos web UI on http://127.0.0.1:"), line
        address = line.split(" on ", 1)[1].split()[0]
        assert address.endswith("/") and not address.endswith(":0/")
        deadline = time.monotonic() + 30  # printed before uvicorn starts listening
        while True:
            try:
                page = httpx.get(address, follow_redirects=True, timeout=10)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    finally:
        process.kill()
        process.wait()
        assert process.stdout is not None
        process.stdout.close()


def _custos(*args: str, terminal: bool) -> str:
    """Run the real ``custos`` command; its standard error (a terminal for rich when asked)."""
    env = {**os.environ, "TTY_COMPATIBLE": "1" if terminal else "0", "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-c", "from custos.cli import main; main()", *args],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stderr.decode()


def test_long_steps_show_their_phase_on_a_terminal(tmp_path: Path) -> None:
    """Issue 17 item 8: the demo sat silent for ~9 s while the model trained; `resolve` and
    `insight …` too. On a terminal each step shows a spinner with its phase (and a bar where
    it counts); a pipe gets none of it."""
    folder = tmp_path / "demo"
    shown = _custos("demo", "--folder", str(folder), "--people", "200", terminal=True)
    for phase in ("generating a synthetic company", "ingesting crm_customers.csv",
                  "resolving profiles", "scoring sentiment",
                  "measuring the planted event's impact"):  # fmt: skip
        assert phase in shown, phase
    db = ("--db", str(folder / "custos.db"))
    assert "resolving profiles" in _custos(*db, "resolve", terminal=True)
    shown = _custos(*db, "insight", "impact", "--date", "2026-03-02", terminal=True)
    assert "reading the profiles analytics may use" in shown
    assert "comparing each country before and after 2026-03-02" in shown
    assert "bootstrap intervals" in _custos(
        *db, "insight", "trend", "--by", "country", terminal=True
    )
    assert _custos(*db, "resolve", terminal=False) == ""
