"""The dependency direction of DESIGN.md, enforced: core ← store ← domains ← service ← entry points."""

from __future__ import annotations

import ast
from pathlib import Path

import custos

ROOT = Path(custos.__file__).parent
LAYER = {
    "core": 0,
    "store": 1,
    "ingest": 2,
    "identity": 2,
    "consent": 2,
    "privacy": 2,
    "insight": 2,
    "synthetic": 2,
    "service": 3,
    "api": 4,
    "web": 4,
    "cli": 4,
}
DOMAINS = {name for name, level in LAYER.items() if level == 2}


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "custos" else None


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def violations() -> list[str]:
    """Every import of a custos package that points the wrong way."""
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        owner = rel.parts[0].removesuffix(".py")
        if owner not in LAYER:
            continue
        for module in _imports(path):
            target = _package(module)
            if target is None or target == owner or target not in LAYER:
                continue
            same_level_domains = owner in DOMAINS and target in DOMAINS
            if (
                LAYER[target] > LAYER[owner]
                or (LAYER[target] == LAYER[owner] and not same_level_domains)
                or same_level_domains
            ):
                bad.append(f"{rel} imports {module}")
    return bad


def test_no_import_points_against_the_dependency_direction() -> None:
    assert violations() == []


def test_the_check_catches_a_wrong_import(tmp_path: Path, monkeypatch: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    fake = tmp_path / "custos"
    for package in ("core", "identity", "ingest"):
        (fake / package).mkdir(parents=True)
    (fake / "core" / "x.py").write_text("from custos.store import Store\n")
    (fake / "identity" / "y.py").write_text("import custos.ingest.normalise\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", fake)
    assert violations() == [
        "core/x.py imports custos.store",
        "identity/y.py imports custos.ingest.normalise",
    ]
