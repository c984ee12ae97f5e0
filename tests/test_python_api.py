"""Issue 18 item 9: the typed Python API. The README's "Python API" chapter runs as written
(one example per sub-facade, each print checked against its comment), and the facades' frozen
results are what the dict-returning compatibility surface returns."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
from itertools import islice
from pathlib import Path

import pytest

from custos.service import Custos
from custos.service.facades import Profile, Result
from custos.store import tables as t
from tests.conftest import write

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
CHAPTER = README.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
BLOCKS = re.findall(r"```python\n(.*?)```", CHAPTER, flags=re.S)
FACADES = ("profiles", "consent", "dsr", "insight", "collect", "audit", "admin")
CRM = "record_id,first_name,last_name,email,city\nr1,Anna,Müller,anna@example.com,Berlin\n"


def _expected(block: str) -> list[str]:
    """What the block's prints show: each print's comment, without a parenthesised aside."""
    return [
        re.sub(r"\s*\(.*\)$", "", line.split("  # ", 1)[1]).strip()
        for line in block.splitlines()
        if line.lstrip().startswith("print(") and "  # " in line
    ]


def test_every_facade_has_one_documented_example() -> None:
    for name in FACADES:
        shown = [b for b in BLOCKS if f"custos.{name}." in b]
        assert shown, f"custos.{name} has no example in the README"
        assert f"**`custos.{name}`**" in CHAPTER
    # the compatibility surface names the facade method it delegates to
    assert "consent.record" in (Custos.record_consent.__doc__ or "")


def test_the_python_api_chapter_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "crm.csv", CRM)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for block in BLOCKS:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, "README.md", "exec"), namespace)
        assert out.getvalue().splitlines() == _expected(block), block


def _anna(custos: Custos, tmp_path: Path) -> None:
    custos.ingest(write(tmp_path / "crm.csv", CRM), "crm")
    custos.resolve()


def test_facade_results_are_frozen_and_the_old_surface_is_their_dict(
    custos: Custos, tmp_path: Path
) -> None:
    _anna(custos, tmp_path)
    shown = custos.profile("anna@example.com", purpose="customer_service")
    anna = custos.profiles.get("anna@example.com", purpose="customer_service")
    assert isinstance(anna, Profile) and anna.to_dict() == shown
    assert Profile.from_dict(shown).to_dict() == shown
    assert list(anna.to_dict()) == list(shown)  # the same keys in the same order (JSON output)
    with pytest.raises(dataclasses.FrozenInstanceError):
        anna.purpose = "marketing_email"  # type: ignore[misc]
    [row] = custos.profiles.export("customer_service")
    assert [row.to_dict()] == list(custos.export_profiles("customer_service"))
    assert custos.consent.show("anna@example.com").to_dict() == custos.consent("anna@example.com")
    assert custos.admin.stats().to_dict() == custos.stats()
    assert [e.to_dict() for e in custos.audit.entries(limit=3)] == custos.audit_entries(limit=3)
    assert custos.profiles.explain(anna.profile_id).to_dict() == custos.explain(anna.profile_id)
    for result in (anna, row, custos.admin.stats(), custos.consent.show(anna.profile_id)):
        assert isinstance(result, Result) and dataclasses.is_dataclass(result)
        assert type(result).__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_an_export_through_the_facade_stopped_after_one_row_is_audited(
    custos: Custos, tmp_path: Path
) -> None:
    _anna(custos, tmp_path)
    before = len(custos.audit.entries(limit=1000))
    [row] = islice(custos.profiles.export("customer_service", actor="facade"), 1)
    assert row.attributes["first_name"] == "Anna"
    with custos.store.read() as conn:
        actors = [r.actor for r in conn.execute(t.audit_log.select()).all()]
    assert len(actors) == before + 1 and actors[-1] == "facade"
