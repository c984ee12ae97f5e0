"""Dates of birth: numeric and month-name dates, typed by the cue words before them.

A date preceded by a birth cue ("DOB", "born", "geb.", "Geburtsdatum") is a DATE_OF_BIRTH. A
date without one is a DATE: scored at the threshold when its year makes a plausible birth year
(18 to 110 years ago), below it otherwise (delivery dates, deadlines). Times ("3:15 pm",
"14:30 Uhr") never match.
"""

from __future__ import annotations

import re
from datetime import date
from typing import ClassVar

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from custos.privacy.pii.findings import DATE, DATE_OF_BIRTH
from custos.privacy.pii.recognizers.base import finding

MONTHS: dict[str, int] = {
    "january": 1, "jan": 1, "januar": 1, "jänner": 1, "february": 2, "feb": 2, "februar": 2,
    "march": 3, "mar": 3, "märz": 3, "maerz": 3, "mär": 3, "mrz": 3, "april": 4, "apr": 4,
    "may": 5, "mai": 5, "june": 6, "jun": 6, "juni": 6, "july": 7, "jul": 7, "juli": 7,
    "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9, "october": 10, "oct": 10,
    "oktober": 10, "okt": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
    "dezember": 12, "dez": 12,
}  # fmt: skip
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))


class DateOfBirthRecognizer(EntityRecognizer):
    """Dates in ``D.M.YYYY``, ``M/D/YYYY``, ``YYYY-MM-DD``, ``6. Juni 1950``, ``June 6, 1950``."""

    PATTERNS: ClassVar[dict[str, re.Pattern[str]]] = {
        "dmy dots": re.compile(
            r"(?<![\d.:/,-])(\d{1,2})\.[ ]?(\d{1,2})\.[ ]?(\d{4}|\d{2})(?![\d]|\.\d)"
        ),
        "slashes": re.compile(r"(?<![\d/.,-])(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})(?![\d/])"),
        "iso": re.compile(r"(?<![\d.,-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\d-])"),
        "dashes": re.compile(r"(?<![\d.,-])(\d{1,2})-(\d{1,2})-(\d{4})(?![\d-])"),
        "day month": re.compile(
            rf"(?<![\w.])(\d{{1,2}})(?:\.|st|nd|rd|th)?[ ]?(?:of[ ])?({_MONTH})\.?,?[ ](\d{{4}})(?!\d)",
            re.IGNORECASE,
        ),
        "month day": re.compile(
            rf"(?<![\w])({_MONTH})\.?[ ](\d{{1,2}})(?:st|nd|rd|th)?,?[ ](\d{{4}})(?!\d)",
            re.IGNORECASE,
        ),
    }
    # A cue, then at most 20 characters without digits up to the date.
    CUES: ClassVar[re.Pattern[str]] = re.compile(
        r"(?:\b(?:dob|d\.o\.b\.?|born|birth|birthday|birthdate|b\.|geb\.?|geboren|geburtsdatum"
        r"|geburtstag|geburtsjahr|geb\.-datum|jahrgang)|\bdate\s+of\s+birth)[^\d]{0,20}$",
        re.IGNORECASE,
    )
    CUE_SCORE = 0.85
    PLAUSIBLE_BIRTH_SCORE = 0.5
    OTHER_DATE_SCORE = 0.3

    def __init__(self, supported_language: str = "en") -> None:
        super().__init__(
            supported_entities=[DATE_OF_BIRTH, DATE],
            supported_language=supported_language,
        )

    def load(self) -> None:
        """Nothing to load: the patterns are compiled with the class."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        """Every valid date in ``text``, typed and scored by its cue and year."""
        results: list[RecognizerResult] = []
        today = date.today()
        for name, pattern in self.PATTERNS.items():
            for match in pattern.finditer(text):
                found = self._to_date(name, match.groups())
                if found is None or found > today:
                    continue
                short_year = len(match.group(match.lastindex or 0)) == 2
                if self.CUES.search(text[max(0, match.start() - 40) : match.start()]):
                    entity, score = DATE_OF_BIRTH, self.CUE_SCORE
                elif 18 <= today.year - found.year <= 110 and not short_year:
                    entity, score = DATE, self.PLAUSIBLE_BIRTH_SCORE
                else:
                    entity, score = DATE, self.OTHER_DATE_SCORE
                if entity in entities:
                    results.append(finding(self, entity, match.start(), match.end(), score))
        return EntityRecognizer.remove_duplicates(results)

    def _to_date(self, pattern: str, parts: tuple[str | None, ...]) -> date | None:
        values = [part or "" for part in parts]
        if pattern == "iso":
            year, month, day = values
        elif pattern == "day month":
            day, month, year = values
        elif pattern == "month day":
            month, day, year = values
        elif pattern == "slashes" and self.supported_language == "en":
            month, day, year = values
            if int(month) > 12:  # 31/12/1970 in English text: day first
                month, day = day, month
        else:
            day, month, year = values
        try:
            number = int(month) if month.isdigit() else MONTHS[month.casefold()]
            full_year = int(year)
            if len(year) == 2:
                full_year += 2000 if full_year <= date.today().year % 100 else 1900
            return date(full_year, number, int(day)) if full_year >= 1900 else None
        except (KeyError, ValueError):
            return None
