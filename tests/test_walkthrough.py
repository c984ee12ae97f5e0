"""The README's "Your own data in ten minutes", run as written: its files, its commands, the
web UI and the API it ends with (a messy CRM export: semicolon CSV, German headers, dates
written three ways, one customer twice, a health column)."""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import start_serve

README = Path(__file__).parents[1] / "README.md"


def _walkthrough() -> tuple[dict[str, str], list[str]]:
    """The section's files (name → text) and its command lines."""
    text = README.read_text(encoding="utf-8")
    files = dict(
        re.findall(r"<!-- walkthrough-file: (\S+) -->\n```\w*\n(.*?)```", text, flags=re.S)
    )
    [steps] = re.findall(r"<!-- walkthrough-steps -->\n```sh\n(.*?)```", text, flags=re.S)
    return files, [line for line in steps.splitlines() if line.startswith("custos ")]


def _custos(folder: Path, line: str) -> subprocess.CompletedProcess[str]:
    """One command line of the README, run by this Python's custos in ``folder``."""
    args = shlex.split(line)[1:]
    command = [sys.executable, "-c", "from custos.cli import main; main()", *args]
    return subprocess.run(
        command, cwd=folder, capture_output=True, text=True, timeout=120, env=_env()
    )


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "COLUMNS": "200"}


def test_your_own_data_in_ten_minutes(tmp_path: Path) -> None:
    files, steps = _walkthrough()
    assert set(files) == {"kunden.csv", "kunden.yaml"}
    for name, body in files.items():
        (tmp_path / name).write_text(body, encoding="utf-8")
    *commands, serve = steps
    assert serve.split()[3] == "serve"
    outputs: dict[str, str] = {}
    for line in commands:
        done = _custos(tmp_path, line)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        outputs[shlex.split(line)[3]] = done.stdout + done.stderr
    # ingest: five rows, none held back whole; two unreadable fields of K-1005 listed
    assert re.search(r"│\s+5\s+│\s+5\s+│", outputs["ingest"])
    assert "2 unreadable field(s)" in outputs["ingest"]
    quarantine = outputs["quarantine"]
    assert quarantine.count("K-1005") == 2 and "no such calendar day" in quarantine
    assert "not an e-mail address" in quarantine
    # resolve: four people (Anna's two rows are one profile)
    assert outputs["resolve"].startswith("profiles: 4 ")
    # profile show: both of Anna's customer numbers, her national phone in E.164, no allergy
    shown = outputs["profile"]
    assert "customer_id: K-1001, K-1003" in shown and "+49301234567" in shown
    assert "Heuschnupfen" not in shown and "Allergie" not in shown
    # a source that holds health data is not named to customer service (a presence oracle)
    assert "(not shown)" in shown and "crm" not in shown
    assert re.search(r"marketing_email\s+│\s+consent\s+│\s+granted", outputs["consent"])
    [key] = re.findall(r"ck_live_[\w-]+", outputs["keys"])
    # serve (on a free port instead of 8000), the web UI, and the look-up it makes
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = start_serve(str(tmp_path / "shop.db"), port)
    try:
        base = f"http://127.0.0.1:{port}"
        page = httpx.get(f"{base}/", follow_redirects=True)
        assert page.status_code == 200 and "<html" in page.text.lower()
        found = httpx.post(
            f"{base}/v1/profiles/lookup",
            json={"email": "anna.schmidt@example.de"},
            params={"purpose": "customer_service"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert found.status_code == 200, found.text
        assert "Heuschnupfen" not in found.text
    finally:
        process.terminate()
        process.wait(10)
    audit = _custos(tmp_path, "custos --db shop.db audit show")
    assert "support" in audit.stdout  # the key's look-up is in the audit log
