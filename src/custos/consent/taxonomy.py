"""Purposes, data categories and lawful bases, as data (a shipped YAML a company can extend)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from custos.core.errors import ConfigError, unknown_name

DEFAULT_TAXONOMY = Path(__file__).with_name("taxonomy.yaml")
UNCLASSIFIED = "unclassified"


class LawfulBasis(StrEnum):
    """The lawful bases of GDPR Art. 6 that custos distinguishes."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    LEGITIMATE_INTEREST = "legitimate_interest"
    VITAL_INTEREST = "vital_interest"
    PUBLIC_TASK = "public_task"


@dataclass(frozen=True)
class Purpose:
    """A data use: its lawful basis and the data categories it may use."""

    name: str
    basis: LawfulBasis
    categories: frozenset[str]
    description: str = ""


@dataclass(frozen=True)
class Taxonomy:
    """Categories (with the special ones of GDPR Art. 9), field categories, purposes, signals."""

    categories: dict[str, str]
    special: frozenset[str]
    fields: dict[str, str]
    purposes: dict[str, Purpose]
    signals: dict[str, Any] = field(default_factory=dict)

    def purpose(self, name: str | None) -> Purpose:
        """The purpose called ``name``; refuses a missing or unknown one."""
        if not name:
            raise ConfigError(
                "no purpose given: every read of personal data must name its purpose",
                hint=f"pass --purpose, one of: {', '.join(sorted(self.purposes))}",
            )
        found = self.purposes.get(name)
        if found is None:
            raise ConfigError(
                unknown_name("purpose", name, self.purposes),
                hint=f"use one of: {', '.join(sorted(self.purposes))}",
            )
        return found

    def category(self, field_name: str, tagged: dict[str, str] | None = None) -> str:
        """The category of a canonical field or a (tagged) extra attribute; unknown ones are
        ``unclassified``, which no purpose may use (fail closed)."""
        if tagged and field_name in tagged:
            return tagged[field_name]
        return self.fields.get(field_name, UNCLASSIFIED)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            _merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


def _with_included(names: list[str], includes: dict[str, set[str]]) -> frozenset[str]:
    """Categories and every category they include (``location`` includes ``coarse_location``)."""
    out: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in out:
            out.add(name)
            todo.extend(includes.get(name, ()))
    return frozenset(out)


def load_taxonomy(extension: Path | None = None) -> Taxonomy:
    """The shipped taxonomy, extended (and overridden key by key) by the company's YAML (read
    at each call: a custos instance opened after the file changed sees the change)."""
    return _load(str(extension)) if extension else _shipped()


@cache
def _shipped() -> Taxonomy:
    """The shipped taxonomy alone: a function of a file that ships with custos, read once."""
    return _load(None)


def _load(extension: str | None) -> Taxonomy:
    data = yaml.safe_load(DEFAULT_TAXONOMY.read_text(encoding="utf-8"))
    if extension:
        try:
            extra = yaml.safe_load(Path(extension).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read the taxonomy {extension}: {exc}") from exc
        data = _merge(data, extra)
    categories = {
        name: (spec or {}).get("description", "") for name, spec in data["categories"].items()
    }
    special = frozenset(
        name for name, spec in data["categories"].items() if (spec or {}).get("special")
    )
    problems: list[str] = []
    includes: dict[str, set[str]] = {}
    for name, spec in data["categories"].items():
        included = set((spec or {}).get("includes") or ())
        if included - set(categories):
            missing = ", ".join(sorted(included - set(categories)))
            problems.append(f"category {name}: includes unknown categories {missing}")
        includes[name] = included
    for name, category in data["fields"].items():
        if category not in categories:
            problems.append(f"field {name}: unknown category {category}")
    purposes: dict[str, Purpose] = {}
    for name, spec in data["purposes"].items():
        unknown = sorted(set(spec.get("categories", [])) - set(categories))
        if unknown:
            problems.append(f"purpose {name}: unknown categories {', '.join(unknown)}")
        try:
            basis = LawfulBasis(spec["basis"])
        except (KeyError, ValueError):
            problems.append(
                f"purpose {name}: basis must be one of {', '.join(b.value for b in LawfulBasis)}"
            )
            continue
        purposes[name] = Purpose(
            name,
            basis,
            _with_included(spec.get("categories", []), includes),
            spec.get("description", ""),
        )
    if problems:
        raise ConfigError("the taxonomy is invalid: " + "; ".join(problems))
    # Signals that weigh the lawful basis (a TCF legitimate interest) read it here, from the one
    # place it is declared.
    signals = {
        **(data.get("signals") or {}),
        "bases": {n: p.basis.value for n, p in purposes.items()},
    }
    return Taxonomy(categories, special, dict(data["fields"]), purposes, signals)
