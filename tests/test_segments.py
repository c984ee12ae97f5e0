"""The segment rule language: what it accepts, how it evaluates, what it refuses."""

from __future__ import annotations

import pytest

from custos.core.errors import InputError
from custos.insight.segments import parse

ROWS = [
    {"id": 1, "country": "DE", "age": 30, "city": "Berlin", "mood": -0.4, "vip": True},
    {"id": 2, "country": "DE", "age": 50, "city": "Hamburg", "mood": 0.3, "vip": False},
    {"id": 3, "country": "FR", "age": 25, "city": "Paris", "mood": None, "vip": False},
    {"id": 4, "country": None, "age": None, "city": "o'Neill", "mood": 0.0, "vip": False},
]
FIELDS = frozenset(ROWS[0])


def _ids(where: str) -> list[int]:
    segment = parse("s", where, FIELDS)
    return [r["id"] for r in ROWS if segment.test(r)]


@pytest.mark.parametrize(
    ("where", "ids"),
    [
        ("country = 'DE' and age < 35", [1]),
        ("country = 'de'", [1, 2]),  # text compares case-insensitively
        ("age >= 30 or country = 'FR'", [1, 2, 3]),
        ("not (country = 'DE')", [3, 4]),
        ("city in ('Berlin', \"Paris\")", [1, 3]),
        ("mood is null", [3]),
        ("mood is not null and mood < 0", [1]),
        ("vip", [1]),
        ("vip = false and age != 25", [2]),
        ("city = 'o''Neill'", [4]),
        ("age < 'x'", []),  # comparing a number with text never matches
    ],
)
def test_rules_select_the_right_rows(where: str, ids: list[int]) -> None:
    assert _ids(where) == ids


def test_unknown_fields_and_bad_syntax_are_clear_errors() -> None:
    with pytest.raises(InputError, match="unknown field 'income'") as err:
        parse("s", "income > 3", FIELDS)
    assert "country" in (err.value.hint or "")
    with pytest.raises(InputError, match="expected"):
        parse("s", "country = 'DE' and", FIELDS)
    with pytest.raises(InputError, match="cannot read"):
        parse("s", "country = 'DE'; drop table profiles", FIELDS)
    with pytest.raises(InputError, match="empty"):
        parse("s", "  ", FIELDS)


def test_the_fields_a_rule_uses_are_known() -> None:
    assert parse("s", "country = 'DE' and (age < 3 or mood > 0)").fields == {
        "country",
        "age",
        "mood",
    }
