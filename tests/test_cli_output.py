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
