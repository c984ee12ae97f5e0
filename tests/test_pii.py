"""PII detection and redaction (custos.privacy.pii): recognizers, engine, operators, offline use.

All names, numbers and addresses here are synthetic.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import tldextract.tldextract

from custos.core.errors import ConfigError
from custos.privacy.pii import DEFAULT_DENY_LIST, PiiConfig, PiiEngine, detect_language, pseudonym
from custos.privacy.pii.gazetteer import build_from_faker, first_names, last_names
from custos.privacy.pii.offline import offline_tld_extractor
from custos.privacy.pii.recognizers.iban import iban_is_valid
from custos.privacy.pii.registry import RECOGNIZERS, SWITCHED_OFF

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


@pytest.fixture(scope="module")
def engine() -> PiiEngine:
    """One engine for the module (building it loads spaCy's NER model, ~1 s)."""
    return PiiEngine()


def found(engine: PiiEngine, text: str, language: str) -> list[tuple[str, str]]:
    """(entity type, text) of each finding."""
    return [(f.entity_type, text[f.start : f.end]) for f in engine.analyze(text, language)]


def types(engine: PiiEngine, text: str, language: str) -> set[str]:
    """The entity types found in ``text``."""
    return {kind for kind, _ in found(engine, text, language)}


# ---------------------------------------------------------------------------------- phones


@pytest.mark.parametrize(
    ("text", "language", "phone"),
    [
        ("Callback on 533-521-8196x001.", "en", "533-521-8196x001"),
        ("Call me at (415) 555-0134 please.", "en", "(415) 555-0134"),
        ("Reach me on +1-415-555-0134.", "en", "+1-415-555-0134"),
        ("Number: 001-533-521-8196", "en", "001-533-521-8196"),
        ("Callback on 4155550134 today.", "en", "4155550134"),
        ("Rückruf unter +49(0)4332181960.", "de", "+49(0)4332181960"),
        ("Rückruf unter +49 (0) 4332 181960.", "de", "+49 (0) 4332 181960"),
        ("Handy 0171 2345678, danke", "de", "0171 2345678"),
        ("Tel. (0221) 123456", "de", "(0221) 123456"),
        ("Tel. 030/12345678", "de", "030/12345678"),
        ("Tel. 089 / 12 34 56", "de", "089 / 12 34 56"),
        ("neue Handynummer ist 04332181960.", "de", "04332181960"),
        # in brackets after a caller's name, as call notes write them: the closing bracket
        # is not part of the number, and an opening one does not hide it
        ("Anrufer Slawomir Geißler (+49(0)6430456547): Abo", "de", "+49(0)6430456547"),
        ("Anruferin (00318451621): Paket", "de", "00318451621"),
        ("Caller Jane Roe (555-201-3344) asked.", "en", "555-201-3344"),
        ("Caller Jane Roe ((725)444-1019) asked.", "en", "(725)444-1019"),
        # a bare digit run after the caller's name: "caller"/"Anrufer" is phone context
        ("Anrufer Hans Wulf (09202025323): Danke.", "de", "09202025323"),
        ("Caller Jane Roe (5159972768) asked.", "en", "5159972768"),
    ],
)
def test_phone_numbers_in_national_and_international_forms(
    engine: PiiEngine, text: str, language: str, phone: str
) -> None:
    assert ("PHONE", phone) in found(engine, text, language)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Order 754-2867825 was shipped at 3:15 pm.", "en"),
        ("Ticket 4155550134 closed, reference 123-4567890.", "en"),
        ("Bestellung 754-2867825 wurde um 14:30 Uhr versendet.", "de"),
        ("Vorgang 3021234567 über 286,31 € abgeschlossen.", "de"),
        ("Sendungsnummer 00340434161234567890 zugestellt.", "de"),
    ],
)
def test_order_numbers_times_and_tracking_numbers_are_not_phones(
    engine: PiiEngine, text: str, language: str
) -> None:
    assert engine.analyze(text, language) == []


# ----------------------------------------------------------------------------------- IBANs


def test_iban_checksum_accepts_valid_and_rejects_altered_numbers() -> None:
    assert iban_is_valid("DE89370400440532013000")
    assert iban_is_valid("GB82 WEST 1234 5698 7654 32")
    assert not iban_is_valid("DE89370400440532013001")  # one digit changed
    assert not iban_is_valid("DE8937040044053201300")  # one digit short
    assert not iban_is_valid("XX89370400440532013000")  # no such country


def test_iban_found_compact_and_grouped_but_not_with_a_bad_checksum(engine: PiiEngine) -> None:
    text = "IBAN DE89 3704 0044 0532 0130 00, alte IBAN DE89370400440532013001 ungültig."
    assert found(engine, text, "de") == [("IBAN", "DE89 3704 0044 0532 0130 00")]
    assert found(engine, "Refund to GB82WEST12345698765432.", "en") == [
        ("IBAN", "GB82WEST12345698765432")
    ]


# ----------------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("text", "language", "date"),
    [
        ("Anrufer (geb. 6. Juni 1950) ruft an.", "de", "6. Juni 1950"),
        ("Geburtsdatum: 14.11.1951", "de", "14.11.1951"),
        ("geboren am 3.4.1962 in Köln", "de", "3.4.1962"),
        ("Caller (DOB 06/04/1950) called.", "en", "06/04/1950"),
        ("born June 4, 1950", "en", "June 4, 1950"),
        ("date of birth 4th of June 1950", "en", "4th of June 1950"),
        ("DOB: 1950-06-04", "en", "1950-06-04"),
    ],
)
def test_dates_of_birth_numeric_and_with_month_names(
    engine: PiiEngine, text: str, language: str, date: str
) -> None:
    assert ("DATE_OF_BIRTH", date) in found(engine, text, language)


def test_times_recent_dates_and_versions_are_not_flagged(engine: PiiEngine) -> None:
    assert engine.analyze("Shipped 03/15/2025 at 3:15 pm, firmware 4.1.29.", "en") == []
    assert engine.analyze("Lieferung am 3. März 2025 um 14:30 Uhr.", "de") == []


def test_an_old_date_without_a_cue_is_a_date_and_thresholds_apply_per_entity() -> None:
    text = "Hans rief an, 14.11.1951, wegen Lieferung am 3. März 2025."
    default = PiiEngine(PiiConfig(ner="never"))
    assert found(default, text, "de") == [("DATE", "14.11.1951")]
    every_date = PiiEngine(PiiConfig(ner="never", thresholds={"DATE": 0.3}))
    assert found(every_date, text, "de") == [("DATE", "14.11.1951"), ("DATE", "3. März 2025")]


# ------------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("text", "language", "address"),
    [
        (
            "möchte die Lieferadresse auf Irena-Seip-Allee 4-8, 02654 Fürstenfeldbruck ändern.",
            "de",
            "Irena-Seip-Allee 4-8, 02654 Fürstenfeldbruck",
        ),
        ("wohnhaft Hauptstr. 12a, 80331 München.", "de", "Hauptstr. 12a, 80331 München"),
        ("an die Adresse Berliner Allee 5 schicken", "de", "Berliner Allee 5"),
        ("Lieferung an Am Markt 3, 36037 Fulda", "de", "Am Markt 3, 36037 Fulda"),
        (
            "address to 79402 Peterson Drives Apt. 511, Davisstad, PA 35172.",
            "en",
            "79402 Peterson Drives Apt. 511, Davisstad, PA 35172",
        ),
        ("moved to 221B Baker Street, London NW1 6XE", "en", "221B Baker Street, London NW1 6XE"),
    ],
)
def test_street_addresses_with_house_numbers(
    engine: PiiEngine, text: str, language: str, address: str
) -> None:
    assert ("ADDRESS", address) in found(engine, text, language)


def test_numbers_before_ordinary_words_are_not_addresses(engine: PiiEngine) -> None:
    assert "ADDRESS" not in types(engine, "Die Lieferung dauerte 3 Tage, Ticket 12 Wege.", "de")
    assert "ADDRESS" not in types(engine, "Delivery took 3 days for 2 Kindle devices.", "en")


# -------------------------------------------------------------------------- e-mail, ids


def test_emails_need_a_known_public_suffix(engine: PiiEngine) -> None:
    text = "Mail an max.mustermann+shop@mail.example.de oder admin@server.localdomain"
    assert found(engine, text, "de") == [("EMAIL", "max.mustermann+shop@mail.example.de")]
    assert engine.analyze("@support please answer", "en") == []


@pytest.mark.parametrize(
    ("text", "language", "customer_id"),
    [
        ("Kundennummer: 4711-0815 bitte prüfen", "de", "4711-0815"),
        ("meine Kundennummer ist KD-585655.", "de", "KD-585655"),
        ("my customer ID is 16481569.", "en", "16481569"),
        ("profile cus_0123456789abcdef merged", "en", "cus_0123456789abcdef"),
        ("CRM record C-0001234 updated", "en", "C-0001234"),
    ],
)
def test_customer_numbers(engine: PiiEngine, text: str, language: str, customer_id: str) -> None:
    assert found(engine, text, language) == [("CUSTOMER_ID", customer_id)]


def test_order_references_are_not_customer_numbers(engine: PiiEngine) -> None:
    assert engine.analyze("Order O-100234 and reference A-2025-000123 shipped.", "en") == []


# ---------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Kunde Felicitas Dowerg hat angerufen.", "Felicitas Dowerg"),  # cue and lists
        ("Felicitas Dowerg beschwert sich über die Lieferung.", "Felicitas Dowerg"),  # lists
        ("Danke, Ansgar Davids", "Ansgar Davids"),
        ("Kunde Jorinde Quastelmeyer hat angerufen.", "Jorinde Quastelmeyer"),  # cue only
        ("Jorinde Quastelmeyer beschwert sich.", "Jorinde Quastelmeyer"),  # right-hand cue
        ("Frau Müller bittet um Rückruf.", "Müller"),  # surname after a title
        ("Herr von Bergen hat angerufen.", "von Bergen"),
        ("hier ist Christian Lange. Keine Antwort.", "Christian Lange"),  # "lange" is a word
        # initials with their full stop stay inside the name
        ("Anrufer Jens D. Hecker ruft an.", "Jens D. Hecker"),
        ("Anrufer Hans-H. Holsten-Weinhage ruft an.", "Hans-H. Holsten-Weinhage"),
        ("Herr D. Hecker ruft an.", "D. Hecker"),
    ],
)
def test_german_names_with_and_without_cues(engine: PiiEngine, text: str, name: str) -> None:
    assert found(engine, text, "de") == [("PERSON", name)]


@pytest.mark.parametrize(
    "text",
    [
        "Der Kunde möchte die Bestellung stornieren und bittet um Rückruf.",
        "Bitte Rechnung an die Lieferadresse schicken, Kundenkonto aktualisieren.",
        "Mein Mann und ich sind seit Jahren Kunden.",
        "IBAN und Geburtsdatum fehlen, Kunde informiert.",
        "Kunde bestellt Typ A. Danach keine Rückfragen.",  # a letter and a full stop, no name
        "Tarif L. Bitte zum Monatsende umstellen.",
    ],
)
def test_german_nouns_are_not_names(engine: PiiEngine, text: str) -> None:
    assert engine.analyze(text, "de") == []


def test_english_names_from_lists_cues_and_the_ner_model(engine: PiiEngine) -> None:
    assert found(engine, "Customer Danielle Johnson called.", "en") == [
        ("PERSON", "Danielle Johnson")
    ]
    assert found(engine, "Thanks! - April Drake", "en") == [("PERSON", "April Drake")]
    before = engine.ner_runs
    text = "The parcel was handed to Radomir Kowalczyk at the door."
    assert found(engine, text, "en") == [("PERSON", "Radomir Kowalczyk")]
    assert engine.ner_runs == before + 1


def test_english_products_and_deny_listed_words_are_not_names(engine: PiiEngine) -> None:
    assert (
        engine.analyze("The Kindle Paperwhite arrived broken, Apple Pay refund issued.", "en") == []
    )
    assert engine.analyze("IBAN and DOB missing, Customer Service informed.", "en") == []


def test_a_caller_supplied_deny_list_suppresses_a_word() -> None:
    text = "Ticket von Hans Meier wegen Bestellung."
    assert found(PiiEngine(PiiConfig(ner="never")), text, "de") == [("PERSON", "Hans Meier")]
    config = PiiConfig(ner="never", deny_list=DEFAULT_DENY_LIST | {"hans meier"})
    assert PiiEngine(config).analyze(text, "de") == []


# ---------------------------------------------------------------------------- redaction

PLANTED = {
    "de": (
        "Kundin Felicitas Dowerg (geb. 6. Juni 1950), wohnhaft Irena-Seip-Allee 4-8, "
        "02654 Fürstenfeldbruck, Tel. 0171 2345678, Mail f.dowerg@example.de, "
        "IBAN DE89 3704 0044 0532 0130 00, Kundennummer C-0001234. Bestellung 754-2867825.",
        [
            "Felicitas Dowerg",
            "6. Juni 1950",
            "Irena-Seip-Allee 4-8",
            "02654",
            "0171 2345678",
            "f.dowerg@example.de",
            "DE89 3704 0044 0532 0130 00",
            "C-0001234",
        ],
    ),
    "en": (
        "Caller William Johnson (DOB 06/04/1950) moved to 79402 Peterson Drives Apt. 511, "
        "Davisstad, PA 35172; callback on (415) 555-0134, email w.johnson@example.com, "
        "IBAN GB82 WEST 1234 5698 7654 32, customer no. 16481569. Order 754-2867825.",
        [
            "William Johnson",
            "06/04/1950",
            "79402 Peterson",
            "35172",
            "(415) 555-0134",
            "w.johnson@example.com",
            "GB82 WEST 1234 5698 7654 32",
            "16481569",
        ],
    ),
}


@pytest.mark.parametrize("language", ["de", "en"])
def test_redaction_leaves_none_of_the_planted_values(engine: PiiEngine, language: str) -> None:
    text, values = PLANTED[language]
    redacted = engine.redact(text, language)
    assert [value for value in values if value in redacted] == []
    assert "754-2867825" in redacted  # the order number stays
    assert "<PERSON>" in redacted and "<PHONE>" in redacted and "<IBAN>" in redacted


def test_scan_counts_entity_types(engine: PiiEngine) -> None:
    assert engine.scan(PLANTED["de"][0], "de") == {
        "PERSON": 1,
        "DATE_OF_BIRTH": 1,
        "ADDRESS": 1,
        "PHONE": 1,
        "EMAIL": 1,
        "IBAN": 1,
        "CUSTOMER_ID": 1,
    }


def test_pseudonymise_is_deterministic_per_key_and_differs_between_keys(
    engine: PiiEngine,
) -> None:
    text = "Kunde Hans Meier, IBAN DE89 3704 0044 0532 0130 00."
    first = engine.redact(text, "de", mode="pseudonymise", key=KEY)
    assert first == engine.redact(text, "de", mode="pseudonymise", key=KEY)
    assert first != engine.redact(text, "de", mode="pseudonymise", key=OTHER_KEY)
    assert "Hans Meier" not in first and "DE89" not in first
    # The same IBAN written compactly gets the same pseudonym.
    assert pseudonym(KEY, "IBAN", "DE89370400440532013000") in first
    assert first.startswith("Kunde <PERSON_") and KEY.decode() not in first


def test_pseudonymise_needs_a_key(engine: PiiEngine) -> None:
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        engine.redact("Kunde Hans Meier", "de", mode="pseudonymise")
    with pytest.raises(ConfigError):
        engine.redact("Kunde Hans Meier", "de", mode="pseudonymise", key=b"short")
    with pytest.raises(ConfigError):  # also when the text holds nothing to pseudonymise
        engine.redact("Nichts zu tun.", "de", per_entity={"PHONE": "pseudonymise"})
    with pytest.raises(ConfigError, match="unknown redaction mode"):
        engine.redact("Nichts zu tun.", "de", mode="mask")  # type: ignore[arg-type]


def test_keep_and_per_entity_modes(engine: PiiEngine) -> None:
    text = "Kunde Hans Meier, Tel. 0171 2345678."
    assert engine.redact(text, "de", mode="keep") == text
    assert engine.redact(text, "de", per_entity={"PHONE": "keep"}) == (
        "Kunde <PERSON>, Tel. 0171 2345678."
    )


# ------------------------------------------------------------------ engine and settings


def test_language_detection_and_auto_mode(engine: PiiEngine) -> None:
    assert detect_language("Der Kunde möchte die Bestellung stornieren.") == "de"
    assert detect_language("The customer wants to cancel the order.") == "en"
    assert types(engine, "Rückruf bitte unter 0171 2345678, danke!", "auto") == {"PHONE"}
    with pytest.raises(ConfigError):
        engine.analyze("Bonjour", "fr")


def test_a_german_only_engine_with_selected_entities() -> None:
    german = PiiEngine(PiiConfig(languages=("de",), entities=frozenset({"PHONE"})))
    text = "Kunde Hans Meier, Tel. 0171 2345678, this is English."
    assert found(german, text, "auto") == [("PHONE", "0171 2345678")]
    assert german._build().ner is None  # no English: the NER model is never loaded


def test_analyze_many_matches_analyze(engine: PiiEngine) -> None:
    texts = [PLANTED["en"][0], "The parcel was handed to Radomir Kowalczyk.", "No data here."]
    assert engine.analyze_many(texts, "en") == [engine.analyze(t, "en") for t in texts]


def test_only_the_registry_recognizers_are_loaded(engine: PiiEngine) -> None:
    loaded = {type(r).__name__ for r in engine._build().analyzer.registry.recognizers}
    assert len(loaded) == len(RECOGNIZERS)
    assert "CreditCardRecognizer" in loaded
    assert loaded.isdisjoint(SWITCHED_OFF)  # Presidio's US, UK, phone and date recognizers
    assert "UsLicenseRecognizer" in SWITCHED_OFF and "PhoneRecognizer" in SWITCHED_OFF


def test_credit_cards_need_a_valid_luhn_checksum(engine: PiiEngine) -> None:
    assert found(engine, "Zahlung mit Visa 4111 1111 1111 1111.", "de") == [
        ("CREDIT_CARD", "4111 1111 1111 1111")
    ]
    assert engine.analyze("Zahlung mit Visa 4111 1111 1111 1112.", "de") == []


def test_no_values_in_reprs_or_logs(engine: PiiEngine, caplog: pytest.LogCaptureFixture) -> None:
    text, values = PLANTED["de"]
    caplog.set_level(logging.DEBUG)
    findings = engine.analyze(text, "de")
    engine.redact(text, "de", mode="pseudonymise", key=KEY)
    shown = repr(findings) + repr(engine) + caplog.text
    assert [value for value in values if value in shown] == []
    assert "PERSON" in repr(findings)


# ---------------------------------------------------------------------- offline, data


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every attempt to open a connection is recorded and refused."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield attempts


def test_engine_builds_and_runs_without_network(no_network: list[object]) -> None:
    offline_tld_extractor.cache_clear()
    engine = PiiEngine()
    assert found(engine, "Mail an anna@example.co.uk", "de") == [("EMAIL", "anna@example.co.uk")]
    assert engine.redact("Call Jane Doe on (415) 555-0134", "en") == "Call <PERSON> on <PHONE>"
    assert no_network == []
    # tldextract, also as Presidio's own recognizers call it, reads its bundled snapshot only.
    assert tldextract.tldextract.TLD_EXTRACTOR is offline_tld_extractor()
    assert offline_tld_extractor().suffix_list_urls == ()


def test_gazetteers_ship_names_and_rebuild_from_faker(tmp_path: Path) -> None:
    assert {"Felicitas", "Ansgar", "Danielle"} <= first_names()
    assert {"Dowerg", "Davids", "Johnson"} <= last_names()
    assert "Else" not in first_names()  # everyday words are left out
    counts = build_from_faker(tmp_path)
    rebuilt = (tmp_path / "first_names.txt").read_text(encoding="utf-8").splitlines()
    assert rebuilt[0].startswith("# Derived from Faker") and "Felicitas" in rebuilt
    assert counts["first_names.txt"] == len(rebuilt) - 1
