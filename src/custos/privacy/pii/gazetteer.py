"""Name gazetteers shipped inside the package, and the script that derives them from Faker.

German has no NER model on the registry, so German person names are found from first and last
name lists plus cue words (see ``recognizers/person_gazetteer.py``). The lists are derived from
Faker's person providers (MIT licence) for de_DE, de_AT, de_CH, en_US and en_GB; first names that
are also everyday words in either language ("Can", "Else") are left out. ``build_from_faker``
rewrites the files; it is run by hand when Faker's data should be refreshed, never at run time.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path

LOCALES = ("de_DE", "de_AT", "de_CH", "en_US", "en_GB")
FIRST_NAMES_FILE = "first_names.txt"
LAST_NAMES_FILE = "last_names.txt"


def _read(name: str) -> list[str]:
    path = resources.files("custos.privacy.pii").joinpath("data").joinpath(name)
    text = path.read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


@lru_cache(maxsize=1)
def first_names() -> frozenset[str]:
    """Known first names, as written (capitalised), including hyphenated ones."""
    return frozenset(_read(FIRST_NAMES_FILE))


@lru_cache(maxsize=1)
def last_names() -> frozenset[str]:
    """Known single-word last names, as written."""
    return frozenset(name for name in _read(LAST_NAMES_FILE) if " " not in name)


@lru_cache(maxsize=1)
def multiword_last_names() -> tuple[str, ...]:
    """Last names of several words ("van der Dussen", "Koch II"), longest first."""
    names = [name for name in _read(LAST_NAMES_FILE) if " " in name]
    return tuple(sorted(names, key=len, reverse=True))


def _names(provider: object, attributes: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for attribute in attributes:
        values = getattr(provider, attribute, ())
        found.update(values.keys() if isinstance(values, dict) else values)
    return found


def build_from_faker(out_dir: Path) -> dict[str, int]:
    """Write the gazetteer files from Faker's locale data; returns how many names each holds."""
    from importlib.metadata import version

    from spacy.lang.de.stop_words import STOP_WORDS as DE_STOP
    from spacy.lang.en.stop_words import STOP_WORDS as EN_STOP

    first: set[str] = set()
    last: set[str] = set()
    for locale in LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        first |= _names(provider, ("first_names", "first_names_male", "first_names_female"))
        last |= _names(provider, ("last_names",))
    stop = EN_STOP | DE_STOP
    first = {name for name in first if len(name) > 2 and name.lower() not in stop}
    header = (
        f"# Derived from Faker {version('faker')} (MIT licence), person providers "
        f"{', '.join(LOCALES)}; rebuilt by custos.privacy.pii.gazetteer.build_from_faker.\n"
    )
    counts = {}
    for name, values in ((FIRST_NAMES_FILE, first), (LAST_NAMES_FILE, last)):
        (out_dir / name).write_text(header + "\n".join(sorted(values)) + "\n", encoding="utf-8")
        counts[name] = len(values)
    return counts
