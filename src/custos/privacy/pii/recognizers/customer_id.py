"""Customer numbers: custos profile ids, CRM numbers, and any id right after a customer-number cue."""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern

from custos.privacy.pii.findings import CUSTOMER_ID
from custos.privacy.pii.recognizers.base import RulePatternRecognizer

_CUE = (
    r"(?i:kundennummer|kunden-nr\.?|kundennr\.?|kd\.?[ -]?nr\.?|kd\.?-nummer|mitgliedsnummer"
    r"|customer[ ](?:number|no\.?|id|\#)|customer-id|cust\.?[ ]?(?:no|id)\.?"
    r"|account[ ](?:number|no\.?|id)|client[ ](?:number|id)|member(?:ship)?[ ](?:number|no\.?|id))"
)


class CustomerIdRecognizer(RulePatternRecognizer):
    """``cus_3f9a…`` profile ids, ``C-0001234`` CRM numbers, ``Kundennummer: 4711-0815``."""

    ENTITY = CUSTOMER_ID
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern("custos profile id", r"(?<![\w])cus_[0-9a-f]{16}(?![\w])", 0.9),
        Pattern(
            "after a cue",
            rf"(?<={_CUE}(?:[ ]?[:#]|[ ](?i:is|ist|lautet))?[ ]?)(?=[\w-]*\d)[A-Za-z0-9][\w-]{{3,19}}(?![\w-])",
            0.85,
        ),
        Pattern("crm number", r"(?<![\w-])C-\d{7}(?![\w-])", 0.55),
    ]
    CONTEXT: ClassVar[list[str]] = [
        "kundennummer",
        "kunden-nr",
        "kundennr",
        "customer",
        "account",
        "member",
        "client",
    ]
