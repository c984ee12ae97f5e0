"""Map files: how a source's columns become canonical custos fields.

A map file is YAML. Canonical field → source column, either under ``fields:`` or at the top::

    kind: interactions          # optional: records | interactions | consents
    channel: call               # optional: a constant channel for every interaction
    phone_region: GB            # optional: the country of phones written without a country
                                #   code when the row has no country (default_country: the
                                #   older name of this key)
    date_format: "%d/%m/%Y"     # optional: for dates that are ambiguous otherwise
    encoding: cp1252            # optional: text encoding (default: UTF-8, else Windows-1252)
    pii: redact                 # optional: free text → redact (default) | pseudonymise | keep
    categories:                 # optional: data category of extra columns (see the taxonomy)
      condition: health
    fields:
      record_id: call_id
      phone: caller_phone
      full_name: caller_name
      text: notes
      customer_id: {column: kdnr, normalise: upper}   # a column, with options

A field's value is its column, or ``{column: NAME, normalise: upper}``: ``normalise: upper``
(customer_id only) removes spaces and upper-cases the id, so that ``c-001`` and ``C-001`` of
this source meet; without it a customer id is kept exactly (only surrounding whitespace
trimmed), as every collected user id is.

Columns that are not mapped are kept as extra attributes of the record. A column whose name is
already a canonical field (in any case) is taken as that field without a map entry, and so is a
records file's form-of-address column by its usual names (``Anrede``, ``Aanhef``, ``Civilité``,
``Tratamiento``: ``salutation``, which goes in front of the record's full name). In JSON Lines
files a column may be a dotted path into nested objects (``context.traits.email``).
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from custos.core.errors import ConfigError
from custos.core.fields import CANONICAL_FIELDS, SALUTATION, Kind
from custos.ingest.normalise import phone_region

_OPTIONS = (
    "kind",
    "channel",
    "phone_region",
    "default_country",
    "date_format",
    "encoding",
    "fields",
    "source",
    "categories",
    "pii",
)
_ALL_FIELDS = frozenset(f for fields in CANONICAL_FIELDS.values() for f in fields)
#: Column names taken as a canonical field without a map entry, besides the field's own name:
#: a CRM's form-of-address column in the languages custos reads ("Title" is left alone: it is
#: as often a job title).
_ALIASES = dict.fromkeys(("anrede", "aanhef", "civilite", "civilité", "tratamiento"), SALUTATION)


#: The options a field's mapping may take besides its column, and the fields each applies to.
_FIELD_OPTIONS = {"normalise": {"upper": ("customer_id",)}}


class FieldColumn(BaseModel):
    """A field mapped with options: ``{column: kdnr, normalise: upper}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    normalise: Literal["upper"] | None = None


class MapFile(BaseModel):
    """A parsed map file (or the empty map for files with canonical column names)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    kind: Kind | None = None
    channel: str | None = None
    #: The region (ISO 3166 alpha-2) of phones written without a country code in rows without
    #: a country; None: such numbers keep their national digits (unless ``default_region`` is
    #: set). ``default_country`` is the older name of the key.
    phone_region: str | None = Field(
        default=None, validation_alias=AliasChoices("phone_region", "default_country")
    )
    date_format: str | None = None
    encoding: str | None = None
    source: str | None = None
    pii: Literal["redact", "pseudonymise", "keep"] | None = None
    fields: dict[str, str | FieldColumn] = Field(default_factory=dict)
    categories: dict[str, str] = Field(default_factory=dict)

    @field_validator("fields", mode="before")
    @classmethod
    def _field_options(cls, value: Any) -> Any:
        """Refuse a field's options custos does not know, naming the field and the fix."""
        if not isinstance(value, dict):
            return value
        for name, spec in value.items():
            if isinstance(spec, list):
                raise ValueError(
                    f"{name}: one column per field, not a list ({spec!r}); map the column "
                    f"that says most about the person to {name} (a mobile before a landline) "
                    "and keep the others as extra columns, with a category (categories: "
                    "{COLUMN: contact}), or ingest them from a second map file as another "
                    "source"
                )
            if not isinstance(spec, dict):
                continue
            unknown = sorted(str(k) for k in set(spec) - {"column", *_FIELD_OPTIONS})
            if unknown:
                raise ValueError(
                    f"{name}: unknown option(s) {', '.join(unknown)}; a field takes its column "
                    f"and {', '.join(_FIELD_OPTIONS)} ({name}: {{column: NAME}})"
                )
            if not isinstance(spec.get("column"), str):
                raise ValueError(f"{name}: name its column ({name}: {{column: NAME}})")
            for option, choices in _FIELD_OPTIONS.items():
                chosen = spec.get(option)
                if chosen is None:
                    continue
                if chosen not in choices:
                    raise ValueError(
                        f"{name}: unknown {option} {chosen!r}; use {', '.join(choices)}"
                    )
                if name not in choices[chosen]:
                    raise ValueError(
                        f"{name}: {option}: {chosen} applies to {', '.join(choices[chosen])} "
                        "only; map this field to its column alone"
                    )
        return value

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, str | FieldColumn]) -> dict[str, str | FieldColumn]:
        unknown = sorted(set(value) - _ALL_FIELDS)
        if unknown:
            raise ValueError(
                f"unknown canonical field(s) {', '.join(unknown)}; "
                f"canonical fields are {', '.join(sorted(_ALL_FIELDS))}"
            )
        return value

    @property
    def columns(self) -> dict[str, str]:
        """Canonical field → its column."""
        return {k: v if isinstance(v, str) else v.column for k, v in self.fields.items()}

    @property
    def upper_customer_id(self) -> bool:
        """Whether the customer id is asked for ``normalise: upper``."""
        found = self.fields.get("customer_id")
        return isinstance(found, FieldColumn) and found.normalise == "upper"

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        if value is None:
            return None
        region = phone_region(value)
        if region is None:
            raise ValueError(
                f"unknown phone region {value!r}; use a country's ISO code, e.g. DE, GB, NL, US"
            )
        return region

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                codecs.lookup(value)
            except LookupError as exc:
                raise ValueError(
                    f"unknown encoding {value!r}; use e.g. utf-8, cp1252, latin-1"
                ) from exc
        return value

    @classmethod
    def load(cls, path: Path) -> MapFile:
        """Read and validate a map file; errors name the file and the key."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read map file {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"map file {path} must be a YAML mapping of field: column")
        if "fields" not in data:  # flat form: canonical fields at the top level
            fields = {k: v for k, v in data.items() if k not in _OPTIONS}
            data = {k: v for k, v in data.items() if k in _OPTIONS} | {"fields": fields}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"map file {path} is invalid: {problems}") from exc


#: Columns ``custos quarantine export`` adds to the rows it writes: the entry (its row, once
#: fixed and ingested, closes it) and why it waits. They are not data: ingestion takes them out.
ENTRY_COLUMN = "quarantine_id"
NOTE_COLUMNS = (ENTRY_COLUMN, "quarantine_reason", "quarantine_fix")


class ColumnMap:
    """Resolved mapping for one file: canonical field → column, and the extra columns."""

    def __init__(self, map_file: MapFile, kind: Kind, columns: Iterable[str] | None) -> None:
        self.kind = kind
        #: the source's region for phones without a country code (see MapFile.phone_region)
        self.phone_region = map_file.phone_region
        allowed = CANONICAL_FIELDS[kind]
        misplaced = sorted(f for f in map_file.fields if f not in allowed)
        if misplaced:
            raise ConfigError(
                f"field(s) {', '.join(misplaced)} do not apply to {kind.value}",
                hint=f"{kind.value} take: {', '.join(allowed)}",
            )
        self.fields: dict[str, str] = map_file.columns
        columns = list(columns) if columns is not None else None
        #: the :data:`NOTE_COLUMNS` of the file (taken out of each row before anything else)
        self.notes = [c for c in columns or () if c in NOTE_COLUMNS]
        self._columns = [c for c in columns if c not in NOTE_COLUMNS] if columns else columns
        self._as_is = False
        if self._columns is not None:
            missing = sorted({c for c in self.fields.values() if c not in self._columns})
            if missing:
                raise ConfigError(
                    f"the map file names column(s) {', '.join(missing)} that the file lacks",
                    hint=f"the file's columns are: {', '.join(self._columns)}",
                )
            self._auto(self._columns)
            self._customer_number_keys_records()
            if kind is not Kind.CONSENTS and "record_id" not in self.fields and self._columns:
                # Refuse at once rather than quarantine every row for the same reason.
                raise ConfigError(
                    "the file has no record_id column",
                    hint="name the column that identifies each row in a map file "
                    "(record_id: your_id_column) and pass it with --map",
                )
            used = set(self.fields.values())
            self._extra = [c for c in self._columns if c not in used]
            # Fixed columns: pick values with C-level getters instead of per-row comprehensions.
            self._names = list(self.fields)
            self._pick = _picker([self.fields[f] for f in self._names])
            self._pick_extra = _picker(self._extra)
            # Every column is a canonical field under its own name (files written for custos):
            # the row itself holds the canonical values, no per-row copy is needed.
            self._as_is = not self._extra and all(f == c for f, c in self.fields.items())

    def _customer_number_keys_records(self) -> None:
        """A customer file keyed by its customer number maps that column once, as
        ``customer_id``: without a ``record_id`` column of its own (mapped or named so), it is the
        records' ``record_id`` too (the identifier a collected user id meets, and the key a
        re-import recognises rows by)."""
        if self.kind is Kind.RECORDS and "customer_id" in self.fields:
            self.fields.setdefault("record_id", self.fields["customer_id"])

    @property
    def extra(self) -> list[str]:
        """The file's columns that are no canonical field (its extra attributes), in file order;
        empty for JSON Lines, whose rows each bring their own keys."""
        return list(self._extra) if self._columns is not None else []

    def _auto(self, columns: Iterable[str]) -> None:
        taken = set(self.fields.values())
        for column in columns:
            field = column.strip().lower()
            field = _ALIASES.get(field, field)
            known = field in CANONICAL_FIELDS[self.kind]
            if known and field not in self.fields and column not in taken:
                self.fields[field] = column

    def split(self, row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split a row into (canonical values, extra attributes).

        The canonical values may be ``row`` itself (when every column is a canonical field under
        its own name): read them, do not change them in place."""
        if self._as_is:
            return row, {}
        if self._columns is None:  # JSON Lines: every row may bring its own keys
            self._auto(row.keys())
            used = set(self.fields.values())
            extra = {k: v for k, v in row.items() if k not in used and v not in (None, "")}
            values = {field: _lookup(row, column) for field, column in self.fields.items()}
            if self.kind is Kind.RECORDS and "record_id" not in values:
                # keyed by its customer number (see _customer_number_keys_records)
                values["record_id"] = values.get("customer_id")
            return values, extra
        extra = {
            k: v
            for k, v in zip(self._extra, self._pick_extra(row), strict=True)
            if v not in (None, "")
        }
        return dict(zip(self._names, self._pick(row), strict=True)), extra


def _lookup(row: dict[str, Any], column: str) -> Any:
    """``row[column]``, or for JSON objects a dotted path into nested objects (``traits.email``)."""
    if column in row or "." not in column:
        return row.get(column)
    value: Any = row
    for key in column.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _picker(columns: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A function returning the values of ``columns`` of a row, always as a tuple."""
    if not columns:
        return lambda _row: ()
    if len(columns) == 1:
        only = columns[0]
        return lambda row: (row[only],)
    return itemgetter(*columns)
