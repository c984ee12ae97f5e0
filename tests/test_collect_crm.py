"""Collected users meet the CRM: a source's setting says what its calls' user id is (issue 17,
item 9), against a real ``custos serve``."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import orjson
from sqlalchemy import select
from typer.testing import CliRunner

from custos.cli import app as cli
from custos.service import Custos
from custos.store import tables as t
from tests.conftest import start_serve

# A CRM export as a new user brings it: semicolons, German headers, keyed by the customer number.
CRM = "Kundennummer;Vorname;Nachname;E-Mail\nK-1001;Anna;Berger;anna@example.de\n"
# The customer number mapped once, as customer_id: it is the rows' record_id too.
CRM_MAP = "kind: records\nfields:\n  customer_id: Kundennummer\n  first_name: Vorname\n"


def _key(db: str, name: str, *extra: str) -> str:
    made = CliRunner().invoke(cli, ["--db", db, "keys", "create", "--name", name, *extra])
    assert made.exit_code == 0, made.output
    return made.stdout.strip().splitlines()[-1]


def test_a_collected_user_id_meets_the_crm_record_of_its_customer_number(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    assert CliRunner().invoke(cli, ["--db", db, "init"]).exit_code == 0
    (tmp_path / "crm.csv").write_text(CRM, encoding="utf-8")
    (tmp_path / "crm.yaml").write_text(CRM_MAP, encoding="utf-8")
    runner = CliRunner()
    args = ["--db", db, "ingest", str(tmp_path / "crm.csv"), "--source", "crm"]
    ingested = runner.invoke(cli, [*args, "--map", str(tmp_path / "crm.yaml")])
    assert ingested.exit_code == 0, ingested.output
    shop = _key(db, "shop", "--scope", "server", "--user-id-field", "customer_id")
    app_key = _key(db, "app", "--scope", "server", "--user-id-field", "none")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = start_serve(db, port)
    try:
        for key, mid in ((shop, "m-shop"), (app_key, "m-app")):
            call = {"userId": "K-1001", "event": "Order Completed", "messageId": mid}
            answer = httpx.post(f"http://127.0.0.1:{port}/v1/track", json=call, auth=(key, ""))
            assert answer.status_code == 200, answer.text
    finally:
        server.terminate()
        server.wait(10)
    assert runner.invoke(cli, ["--db", db, "resolve"]).exit_code == 0
    with Custos.open(db) as custos:
        profile_of = {(source, record): pid for source, record, pid in custos.xref()}
        crm = profile_of[("crm", "K-1001")]
        assert profile_of[("shop", "m-shop")] == crm  # the user id is the customer number
        assert profile_of[("app", "m-app")] != crm  # an app's own id meets no customer number
        with custos.store.read() as conn:
            i, r = t.interactions, t.raw_records
            row = conn.execute(
                select(i.c.customer_id, i.c.extra)
                .join(r, r.c.id == i.c.raw_id)
                .where(r.c.record_id == "m-app")
            ).one()
    assert row.customer_id is None
    assert orjson.loads(row.extra)["segment"]["user_id"] == "K-1001"  # kept with the call


def test_the_user_id_field_is_checked_when_the_key_is_made(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    assert CliRunner().invoke(cli, ["--db", db, "init"]).exit_code == 0
    runner = CliRunner()
    base = ["--db", db, "keys", "create", "--name", "web", "--scope", "write"]
    made = runner.invoke(cli, [*base, "--user-id-field", "email"])
    assert made.exit_code == 2 and "customer_id, none" in made.output
    read = ["--db", db, "keys", "create", "--name", "r", "--purpose", "analytics"]
    made = runner.invoke(cli, [*read, "--user-id-field", "none"])
    assert made.exit_code == 2 and "collection key" in made.output
    # the external id is what custos keeps as customer_id: taken as that
    made = runner.invoke(cli, [*base, "--user-id-field", "external_id"])
    assert made.exit_code == 0, made.output
    with Custos.open(db) as app, app.store.read() as conn:
        kept = conn.execute(
            select(t.sources.c.user_id_field).where(t.sources.c.name == "web")
        ).scalar_one()
    assert kept == "customer_id"
