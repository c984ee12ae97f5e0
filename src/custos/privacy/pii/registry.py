"""Which recognizers run for which language: the one place to add, remove or switch one off.

Presidio's predefined recognizers are not loaded as a set. custos replaces the generic ones that
fall short on our texts, keeps Presidio's credit-card recognizer (Luhn-checked) with German
context words, and leaves out those for other countries (``SWITCHED_OFF`` says why).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from presidio_analyzer import EntityRecognizer, RecognizerRegistry
from presidio_analyzer.predefined_recognizers import CreditCardRecognizer

from custos.privacy.pii.config import PiiConfig
from custos.privacy.pii.recognizers.address_de import GermanAddressRecognizer
from custos.privacy.pii.recognizers.address_en import EnglishAddressRecognizer
from custos.privacy.pii.recognizers.customer_id import CustomerIdRecognizer
from custos.privacy.pii.recognizers.date_of_birth import DateOfBirthRecognizer
from custos.privacy.pii.recognizers.email import EmailAddressRecognizer
from custos.privacy.pii.recognizers.health import HealthTermRecognizer
from custos.privacy.pii.recognizers.iban import IbanCodeRecognizer
from custos.privacy.pii.recognizers.person_gazetteer import PersonGazetteerRecognizer
from custos.privacy.pii.recognizers.phone import PhoneNumberRecognizer

Factory = Callable[[str, PiiConfig], EntityRecognizer]

CARD_CONTEXT = {
    "en": ["credit", "card", "visa", "mastercard", "amex", "maestro"],
    "de": ["kreditkarte", "karte", "kartennummer", "visa", "mastercard", "amex", "maestro"],
}

# recognizer name -> (languages, factory(language, config))
RECOGNIZERS: dict[str, tuple[tuple[str, ...], Factory]] = {
    "email": (("en", "de"), lambda lang, _: EmailAddressRecognizer(lang)),
    "phone": (("en", "de"), lambda lang, _: PhoneNumberRecognizer(lang)),
    "iban": (("en", "de"), lambda lang, _: IbanCodeRecognizer(lang)),
    "date_of_birth": (("en", "de"), lambda lang, _: DateOfBirthRecognizer(lang)),
    "customer_id": (("en", "de"), lambda lang, _: CustomerIdRecognizer(lang)),
    "address_en": (("en",), lambda lang, _: EnglishAddressRecognizer(lang)),
    "address_de": (("de",), lambda lang, _: GermanAddressRecognizer(lang)),
    "credit_card": (
        ("en", "de"),
        lambda lang, _: CreditCardRecognizer(supported_language=lang, context=CARD_CONTEXT[lang]),
    ),
    "health": (("en", "de"), lambda lang, _: HealthTermRecognizer(lang)),
    "person_gazetteer": (
        ("en", "de"),
        lambda lang, config: PersonGazetteerRecognizer(lang, config.deny_list),
    ),
}

# The English NER recognizer (recognizers/person_ner.py) is not in the registry: it needs the
# spaCy pipeline's entities, and the engine runs it only on texts the rules leave in doubt.

# Presidio predefined recognizers custos does not load, and why.
SWITCHED_OFF: dict[str, str] = {
    "PhoneRecognizer": "takes order numbers (123-1234567) for phones; replaced by recognizers/phone.py",
    "DateRecognizer": "takes times for dates, misses German month names; replaced by date_of_birth.py",
    "EmailRecognizer": "replaced by recognizers/email.py (same check, offline suffix list)",
    "IbanRecognizer": "replaced by recognizers/iban.py (exact length per country, mod 97)",
    "SpacyRecognizer": "all NER labels but PERSON are noise here; replaced by person_ner.py",
    "UsLicenseRecognizer": "US driver's licences: not our locale; matches order numbers",
    "UsBankRecognizer": "US bank accounts: not our locale; matches any 8-17 digits",
    "UsPassportRecognizer": "not our locale",
    "UsSsnRecognizer": "not our locale",
    "UsItinRecognizer": "not our locale",
    "NhsRecognizer": "UK NHS numbers: not our locale",
    "MedicalLicenseRecognizer": "US DEA numbers: not our locale",
    "CryptoRecognizer": "out of scope",
    "IpRecognizer": "out of scope",
    "MacAddressRecognizer": "out of scope",
    "UrlRecognizer": "URLs are not personal data by themselves; e-mail domains matched as URLs",
    "UuidRecognizer": "out of scope",
    "DePlzRecognizer": "a postcode alone is not an address; ADDRESS covers street + postcode",
}


def recognizers_for(language: str, config: PiiConfig) -> list[EntityRecognizer]:
    """New instances of every recognizer that serves ``language``."""
    return [
        factory(language, config)
        for languages, factory in RECOGNIZERS.values()
        if language in languages
    ]


def build_registry(languages: Iterable[str], config: PiiConfig) -> RecognizerRegistry:
    """A Presidio registry holding custos's recognizers for ``languages`` and nothing else."""
    languages = list(languages)
    registry = RecognizerRegistry(recognizers=[], supported_languages=languages)
    for language in languages:
        for recognizer in recognizers_for(language, config):
            registry.add_recognizer(recognizer)
    return registry
