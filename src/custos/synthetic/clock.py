"""Random moments and local ISO 8601 timestamps with realistic UTC offsets.

Offsets follow the daylight-saving rules of the person's country (EU rules for DE
and GB, US rules per city), computed here so that no time-zone database is needed.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

__all__ = ["local_iso", "random_moment"]

_US_STANDARD = {
    "New York": -5,
    "Philadelphia": -5,
    "Boston": -5,
    "Atlanta": -5,
    "Miami": -5,
    "Chicago": -6,
    "Houston": -6,
    "San Antonio": -6,
    "Dallas": -6,
    "Austin": -6,
    "Minneapolis": -6,
    "Denver": -7,
    "Phoenix": -7,
}
_TZ_CACHE: dict[int, timezone] = {}


def _nth_sunday(year: int, month: int, n: int) -> date:
    """n-th Sunday of the month; n = -1 for the last one."""
    if n > 0:
        d = date(year, month, 1)
        d += timedelta(days=(6 - d.weekday()) % 7)
        return d + timedelta(weeks=n - 1)
    d = date(year, month + 1, 1) - timedelta(days=1)
    return d - timedelta(days=(d.weekday() + 1) % 7)


def _offset_hours(moment: datetime, country: str, city: str) -> int:
    day = moment.date()
    if country in ("DE", "GB"):
        base = 1 if country == "DE" else 0
        dst = _nth_sunday(day.year, 3, -1) <= day < _nth_sunday(day.year, 10, -1)
        return base + int(dst)
    base = _US_STANDARD.get(city, -8)
    if city == "Phoenix":
        return base
    dst = _nth_sunday(day.year, 3, 2) <= day < _nth_sunday(day.year, 11, 1)
    return base + int(dst)


def local_iso(moment: datetime, country: str, city: str = "") -> str:
    """Format a naive local datetime as ISO 8601 with the local UTC offset."""
    hours = _offset_hours(moment, country, city)
    tz = _TZ_CACHE.get(hours)
    if tz is None:
        tz = _TZ_CACHE[hours] = timezone(timedelta(hours=hours))
    return moment.replace(tzinfo=tz, microsecond=0).isoformat()


def random_moment(
    rng: random.Random, start: date, end: date, *, office_hours: bool = False
) -> datetime:
    """A random naive local datetime between start and end (inclusive days).

    With office_hours, Monday to Saturday between 08:00 and 19:59; otherwise any day,
    weighted towards daytime and evening.
    """
    span = (end - start).days + 1
    while True:
        day = start + timedelta(days=rng.randrange(span))
        if office_hours and day.weekday() == 6:
            continue
        break
    if office_hours:
        hour = rng.randint(8, 19)
    else:
        hour = int(rng.triangular(6, 24, 20)) % 24 if rng.random() < 0.9 else rng.randrange(6)
    return datetime(day.year, day.month, day.day, hour, rng.randrange(60), rng.randrange(60))
