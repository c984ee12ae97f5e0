"""Finding a person's identifiers in text: in rows that could not be normalised (suppression at
ingestion) and in their rows as received (to find their quarantined rows, and the name keys
to scrub from the matcher's term frequencies).

The normalisers are ingestion's; they are passed in (privacy does not import ingest), each a
function of one text that returns the normalised value or raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import orjson

from custos.privacy.dsr.erasure import Subject

#: identifier kind (email, phone, customer_id, social_handle) → its normaliser
Normalisers = Mapping[str, Callable[[str], str | None]]


def forms(text: str, normalisers: Normalisers) -> Iterator[tuple[str, str]]:
    """(kind, normalised value) for each kind of identifier ``text`` could be."""
    if len(text) < 3:
        return
    for kind, normaliser in normalisers.items():
        if kind in ("email", "social_handle") and "@" not in text:
            continue
        if kind == "phone" and sum(c.isdigit() for c in text) < 6:
            continue
        try:
            found = normaliser(text)
        except ValueError:
            continue
        if found:
            yield kind, found


def identifier_forms(raw: str, normalisers: Normalisers) -> Iterator[tuple[str, str]]:
    """(kind, normalised value) for every value of a row (JSON, or a line of a file) that could
    be an identifier."""
    try:
        parsed = orjson.loads(raw)
        values = list(parsed.values()) if isinstance(parsed, dict) else [raw]
    except orjson.JSONDecodeError:
        values = [part for line in raw.splitlines() for part in line.replace(";", ",").split(",")]
    for value in values:
        if isinstance(value, str | int) and not isinstance(value, bool):
            yield from forms(str(value).strip().strip('"'), normalisers)


def search_terms(subject: Subject, normalisers: Normalisers) -> set[str]:
    """The person's identifiers as stored and as written in their rows."""
    own = {v for values in subject.identifiers.values() for v in values}
    terms = set(own)
    for text in subject.texts:
        if any(value in own for _, value in forms(text, normalisers)):
            terms.add(text)
    return terms


def add_name_candidates(
    subject: Subject, name_key: Callable[[str], str], display: Callable[[str], str]
) -> None:
    """Add the comparison keys of every word of the person's rows as received to the values
    scrubbed from the matcher's term frequencies (a value goes only when no remaining record
    has it): the normalised rows may no longer hold a name that a rectification replaced."""
    keys: set[str] = set()
    for text in subject.texts:
        for word in [text, *text.replace(",", " ").split()]:
            try:
                key = name_key(word)
            except ValueError:
                continue
            if key:
                keys.add(key)
    for column in ("first_name", "surname"):
        subject.names.setdefault(column, set()).update(keys)
    subject.cities.update(display(text) for text in subject.texts if len(text) < 60)
