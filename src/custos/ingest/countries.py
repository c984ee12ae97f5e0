"""Country names and codes → ISO 3166 alpha-2, with German names for the common countries."""

from __future__ import annotations

from functools import cache

import pycountry

GERMAN_NAMES = {
    "deutschland": "DE",
    "brd": "DE",
    "d": "DE",
    "österreich": "AT",
    "oesterreich": "AT",
    "schweiz": "CH",
    "frankreich": "FR",
    "italien": "IT",
    "spanien": "ES",
    "niederlande": "NL",
    "holland": "NL",
    "belgien": "BE",
    "polen": "PL",
    "dänemark": "DK",
    "schweden": "SE",
    "norwegen": "NO",
    "finnland": "FI",
    "tschechien": "CZ",
    "ungarn": "HU",
    "türkei": "TR",
    "irland": "IE",
    "griechenland": "GR",
    "vereinigtes königreich": "GB",
    "großbritannien": "GB",
    "grossbritannien": "GB",
    "vereinigte staaten": "US",
}
COMMON_NAMES = {
    "uk": "GB",
    "u.k.": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "great britain": "GB",
    "britain": "GB",
    "usa": "US",
    "u.s.a.": "US",
    "u.s.": "US",
    "united states of america": "US",
    "america": "US",
}


@cache
def _table() -> dict[str, str]:
    table: dict[str, str] = {}
    for entry in pycountry.countries:
        code = str(entry.alpha_2)
        table[code.lower()] = code
        table[str(entry.alpha_3).lower()] = code
        for attr in ("name", "common_name", "official_name"):
            name = getattr(entry, attr, None)
            if name:
                table[str(name).lower()] = code
    table.update(GERMAN_NAMES)
    table.update(COMMON_NAMES)
    return table


def country_code(text: str) -> str | None:
    """ISO alpha-2 code for a code or name, or None when it is not a country we know."""
    return _table().get(text.strip().lower())
