"""Schemathesis fuzzes every operation of the OpenAPI document: no input may cause a 5xx."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from custos.api.app import create_app
from custos.core.fields import Kind
from custos.core.settings import Settings
from custos.service import Custos, keys
from tests.conftest import write

KEYS: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    """The API over a small store (SQLite), with an admin key and a write key."""
    folder: Path = tmp_path_factory.mktemp("fuzz")
    settings_ = Settings(_env_file=None, db="unused")  # type: ignore[call-arg]
    with Custos.open(str(folder / "fuzz.db"), settings_) as custos:
        custos.ingest(
            write(folder / "crm.csv", "record_id,email,first_name\nr1,a@example.com,Ann\n"),
            "crm",
        )
        custos.ingest(
            write(
                folder / "c.csv", "record_id,timestamp,email,text\ni1,2026-01-01,a@example.com,Hi\n"
            ),
            "calls",
            kind=Kind.INTERACTIONS,
        )
        custos.resolve()
        KEYS["admin"] = keys.create(
            custos, "fuzz-admin", ["customer_service", "consent_management"], "admin"
        )
        KEYS["write"] = keys.create(custos, "fuzz-web", [], "write")
        yield schemathesis.openapi.from_asgi("/openapi.json", create_app(custos))


def fuzz(operation: Any, key: str, failures: list[str], statuses: set[int]) -> None:
    """Call one operation with generated input; record any 5xx."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        response = case.call(headers={"Authorization": f"Bearer {key}"})
        statuses.add(response.status_code)
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.path}: {response.status_code}")
        elif response.status_code >= 400 and response.status_code != 405:
            assert set(response.json()["error"]) == {"code", "message", "hint"}

    check()


def test_no_input_causes_a_server_error(api_schema: schemathesis.BaseSchema) -> None:
    # schemathesis's pytest plugin does not load under pytest 9: drive its strategies directly.
    failures: list[str] = []
    statuses: set[int] = set()
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 14
    for operation in operations:
        key = KEYS["admin"] if operation.path.startswith("/v1/profiles") else KEYS["write"]
        fuzz(operation, key, failures, statuses)
    assert failures == []
    assert 200 in statuses and 400 in statuses  # inputs both good and bad were generated
