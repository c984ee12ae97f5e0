"""The fast golden-record path of a full resolution chooses exactly what golden_record does,
and its documents read back as the values chosen."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from custos.core.settings import Settings
from custos.identity.golden import golden_record
from custos.identity.loading import _GOLDEN_COLUMNS, candidate, golden_documents
from custos.store.golden import decode

SOURCES = ("crm", "shop", "calls", "rectification")
INSTANTS = ("2024-01-01T00:00:00.000000Z", "2024-06-01T12:00:00.000000Z", "2025-02-03T08:00:00Z")
value = st.one_of(st.none(), st.just(""), st.sampled_from(["a", "b", "Berlin", "10115"]))
extra = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["tier", "health", "note"]),
        st.one_of(st.none(), st.just(""), st.sampled_from(["gold", "x", 3])),
        max_size=3,
    ).map(lambda d: orjson.dumps(d).decode()),
)


@st.composite
def member_rows(draw: st.DrawFn, raw_id: int) -> tuple[object, ...]:
    return (
        raw_id,
        draw(st.sampled_from(SOURCES)),
        f"r{raw_id}",
        draw(st.booleans()),
        None,
        None,
        draw(st.sampled_from(INSTANTS)),
        draw(extra),
        None,
        *(draw(value) for _ in _GOLDEN_COLUMNS),
    )


@st.composite
def clusters(draw: st.DrawFn) -> list[list[tuple[object, ...]]]:
    sizes = draw(st.lists(st.integers(1, 5), min_size=1, max_size=6))
    out, next_id = [], 1
    for size in sizes:
        out.append([draw(member_rows(next_id + i)) for i in range(size)])
        next_id += size
    return out


@settings(max_examples=300, deadline=None)
@given(
    clusters(), st.sampled_from(["priority", "recent", "frequent"]), st.permutations(SOURCES[:3])
)
def test_fast_golden_documents_equal_golden_record(
    groups: list[list[tuple[object, ...]]], rule: str, priority: list[str]
) -> None:
    config = Settings(golden_rule=rule, source_priority=list(priority))
    rows = {row[0]: row for group in groups for row in group}
    members = [[int(str(row[0])) for row in group] for group in groups]
    pids = [f"cus_{i}" for i in range(len(groups))]
    fast = [
        (pid, v.attribute, v.value, v.source, v.record_id, v.observed_at, v.rule)
        for pid, document in golden_documents(pids, members, rows, config)
        for v in decode(document)
    ]
    slow = [
        (pid, g.attribute, g.value, g.source, g.record_id, g.observed_at, g.rule)
        for pid, group in zip(pids, groups, strict=True)
        for g in sorted(
            golden_record([candidate(row) for row in group], rule=rule, priority=list(priority)),
            key=lambda g: g.attribute,
        )
    ]
    assert fast == slow
