"""The golden record: one value per attribute, chosen by a rule, with its provenance.

:class:`GoldenValue` is the stored form (:mod:`custos.store.golden`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from custos.store.golden import GoldenValue

#: Attributes chosen one by one.
SINGLE = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "date_of_birth",
    "social_handle",
    "customer_id",
)
#: The source of corrections a person asked for (GDPR Art. 16): they win every rule.
RECTIFICATION = "rectification"
#: Address attributes are chosen together, from one record, so they never mix two addresses.
ADDRESS = ("street", "postcode", "city", "country")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One member record as a source of golden values."""

    raw_id: int
    source: str
    record_id: str
    is_record: bool
    observed_at: datetime
    values: dict[str, Any]
    extra: dict[str, Any] | None = None


def _ranker(rule: str, priority: Sequence[str]) -> Callable[[Candidate], tuple[Any, ...]]:
    rank = {name: i for i, name in enumerate(priority)}

    def key(c: Candidate) -> tuple[Any, ...]:
        # Lower sorts first: a person's own correction (a data-subject rectification) before
        # everything, then person records before interactions, then by rule, then newest.
        recency = -c.observed_at.timestamp()
        corrected = c.source != RECTIFICATION
        if rule == "priority":
            return (corrected, not c.is_record, rank.get(c.source, len(rank)), recency, c.raw_id)
        return (corrected, not c.is_record, recency, c.raw_id)

    return key


def golden_record(
    members: Sequence[Candidate], *, rule: str = "priority", priority: Sequence[str] = ()
) -> list[GoldenValue]:
    """Choose each attribute's value among ``members`` by ``rule`` (priority|recent|frequent)."""
    if len(members) == 1:
        return _single(members[0], rule)
    ordered = sorted(members, key=_ranker(rule, priority))
    out: list[GoldenValue] = []

    def pick(attribute: str, having: list[Candidate]) -> Candidate:
        if rule == "frequent" and having[0].source != RECTIFICATION:
            # (an address is picked by its street, among members some of which may have a
            # city only)
            counts = Counter(c.values[attribute] for c in having if c.values.get(attribute))
            top = max(counts.values())
            return next(
                c for c in having if c.values.get(attribute) and counts[c.values[attribute]] == top
            )
        return having[0]

    frequent = rule == "frequent"
    for attribute in SINGLE:
        if frequent:
            having = [c for c in ordered if c.values.get(attribute)]
            found = pick(attribute, having) if having else None
        else:  # the first in rank order: no list per attribute
            found = next((c for c in ordered if c.values.get(attribute)), None)
        if found is not None:
            out.append(_value(attribute, found, rule))
    having = [c for c in ordered if c.values.get("street") or c.values.get("city")]
    if having:
        chosen = pick("street" if having[0].values.get("street") else "city", having)
        out.extend(_value(a, chosen, rule) for a in ADDRESS if chosen.values.get(a))
    # Extra attributes of person records (loyalty tier, a tagged health condition, …).
    names = sorted({k for c in ordered if c.is_record and c.extra for k in c.extra})
    for name in names:
        with_extra = [
            c for c in ordered if c.is_record and c.extra and c.extra.get(name) not in (None, "")
        ]
        if with_extra:
            chosen = with_extra[0]
            if rule == "frequent":
                counts = Counter(str(c.extra[name]) for c in with_extra if c.extra)
                top = max(counts.values())
                chosen = next(
                    c for c in with_extra if c.extra and counts[str(c.extra[name])] == top
                )
            assert chosen.extra is not None
            out.append(
                GoldenValue(
                    name,
                    str(chosen.extra[name]),
                    chosen.source,
                    chosen.record_id,
                    chosen.observed_at,
                    rule,
                )
            )
    return out


def _single(c: Candidate, rule: str) -> list[GoldenValue]:
    """The golden record of a one-record profile: its own values (the same result as the
    general path, without sorting and filtering; most profiles are single records)."""
    values = c.values
    out = [_value(a, c, rule) for a in SINGLE if values.get(a)]
    if values.get("street") or values.get("city"):
        out.extend(_value(a, c, rule) for a in ADDRESS if values.get(a))
    if c.is_record and c.extra:
        out.extend(
            GoldenValue(name, str(c.extra[name]), c.source, c.record_id, c.observed_at, rule)
            for name in sorted(c.extra)
            if c.extra[name] not in (None, "")
        )
    return out


def _value(attribute: str, c: Candidate, rule: str) -> GoldenValue:
    return GoldenValue(
        attribute, str(c.values[attribute]), c.source, c.record_id, c.observed_at, rule
    )
