"""De-identification of tabular extracts: pseudonyms, generalisation, k-anonymity, l-diversity.

Everything here is counted per person: several rows of one person are one person, never
several. :func:`search.deidentify` finds the least generalisation (plus suppression of the
persons who remain at risk) that makes a table k-anonymous and l-diverse, or says which groups
fail. Generalisation operators live one per module in ``operators/``.
"""

from __future__ import annotations

from custos.privacy.deid.checks import Group, Row, groups
from custos.privacy.deid.pseudonym import keyed_hash, pseudonym
from custos.privacy.deid.search import Plan, Refused, deidentify

__all__ = [
    "Group",
    "Plan",
    "Refused",
    "Row",
    "deidentify",
    "groups",
    "keyed_hash",
    "pseudonym",
]
