"""Library code leaves the process alone: no garbage-collector tuning, no log levels, no
environment writes outside the entry points (the ``custos`` command, the server factory, and
:mod:`custos.process`, which only they call)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import custos

ROOT = Path(custos.__file__).parent
#: The entry points (and the module of settings that only they use).
ENTRY_POINTS = ("cli/", "api/server.py", "process.py")
#: Library code that still changes process state, each with its reason. An entry here whose
#: module no longer does is an error too, so the list only shrinks.
ALLOWED = {
    # Invariant 7 (no personal data in logs), not tuning: Presidio's debug lines quote the
    # analysed text, so the PII engine keeps Presidio's own loggers at WARNING.
    ("privacy/pii/engine.py", "log level"),
    # Owned by the ingestion refactor (issue 18, item 2): the pipeline pauses the collector
    # for each unit; it moves to the entry points with the one ingestion sink.
    ("ingest/pipeline.py", "gc"),
}
_ENVIRON_WRITES = {"update", "setdefault", "pop", "popitem", "clear", "__setitem__", "__delitem__"}
_LOGGING_SETUP = {"disable", "basicConfig", "captureWarnings"}


def _is_environ(node: ast.AST) -> bool:
    """``os.environ`` or a bare ``environ``."""
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def _imported(node: ast.AST) -> set[str]:
    """The modules an import statement names (``from a import b``: ``a`` and ``a.b``)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return set()


def _change(node: ast.AST) -> str | None:
    """What one statement or call does to its process, if anything."""
    if "gc" in _imported(node):
        return "gc"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        name, owner = node.func.attr, node.func.value
        logging_setup = isinstance(owner, ast.Name) and owner.id == "logging"
        if name == "setLevel" or (name in _LOGGING_SETUP and logging_setup):
            return "log level"
        writes_env = name in _ENVIRON_WRITES and _is_environ(owner)
        if writes_env or (name in ("putenv", "unsetenv") and isinstance(owner, ast.Name)):
            return "environment"
    if isinstance(node, ast.Assign | ast.Delete):
        targets = node.targets
    elif isinstance(node, ast.AugAssign):
        targets = [node.target]
    else:
        return None
    if any(isinstance(t, ast.Subscript) and _is_environ(t.value) for t in targets):
        return "environment"
    return None


def _changes(tree: ast.AST) -> set[str]:
    """What a module does to its process: ``gc``, ``log level``, ``environment``."""
    return {change for node in ast.walk(tree) if (change := _change(node))}


def process_changes(root: Path = ROOT) -> set[tuple[str, str]]:
    """(module, change) for every library module that changes process state."""
    out: set[tuple[str, str]] = set()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(ENTRY_POINTS):
            continue
        out |= {(rel, change) for change in _changes(ast.parse(path.read_text("utf-8")))}
    return out


def test_library_code_changes_no_process_state() -> None:
    changes = process_changes()
    assert changes - ALLOWED == set(), "move it to custos.process, called by an entry point"
    assert ALLOWED - changes == set(), "no longer needed: take it off ALLOWED"


def test_only_entry_points_use_the_process_settings() -> None:
    users = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(ENTRY_POINTS):
            continue
        tree = ast.parse(path.read_text("utf-8"))
        if any("custos.process" in _imported(node) for node in ast.walk(tree)):
            users.append(rel)
    assert users == []


@pytest.mark.parametrize(
    ("source", "change"),
    [
        ("import gc\ngc.disable()\n", "gc"),
        ("from gc import freeze\n", "gc"),
        ("import logging\nlogging.getLogger('x').setLevel(logging.ERROR)\n", "log level"),
        ("import logging\nlogging.disable(logging.INFO)\n", "log level"),
        ("import os\nos.environ['X'] = '1'\n", "environment"),
        ("import os\nos.environ.setdefault('X', '1')\n", "environment"),
        ("import os\ndel os.environ['X']\n", "environment"),
        ("import os\nos.putenv('X', '1')\n", "environment"),
    ],
)
def test_the_check_catches_each_change(tmp_path: Path, source: str, change: str) -> None:
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "x.py").write_text(source)
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "y.py").write_text(source)  # an entry point may
    (tmp_path / "z.py").write_text("import os\nvalue = os.environ.get('X')\n")  # reading is fine
    assert process_changes(tmp_path) == {("core/x.py", change)}
