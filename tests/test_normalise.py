"""Normalisers: each canonical form, and the errors for values that cannot be read."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custos.ingest import normalise as n
from custos.ingest.countries import country_code


@pytest.mark.parametrize("raw", ["Müller", "Mueller", "MÜLLER", "muller", " Müller "])
def test_name_key_folds_case_diacritics_and_transliteration(raw: str) -> None:
    assert n.name_key(raw.strip()) == "muller"


def test_name_key_keeps_different_names_apart() -> None:
    assert n.name_key("Schmidt") != n.name_key("Schmitt")
    assert n.name_key("Groß") == n.name_key("Gross")


@given(st.text(max_size=30))
def test_name_key_is_idempotent_and_ascii(text: str) -> None:
    key = n.name_key(text)
    assert key.isascii()
    assert n.name_key(key) == key


@pytest.mark.parametrize(
    ("full", "first", "last"),
    [
        ("Anna Müller", "Anna", "Müller"),
        ("Müller, Anna", "Anna", "Müller"),
        ("Frau Müller", None, "Müller"),
        ("Dr. Hans Peter von der Heide", "Hans Peter", "von der Heide"),
        ("Anna Maria Schmidt", "Anna Maria", "Schmidt"),
        # a generational suffix belongs to the surname, never to the first name
        ("Wolf Vogt Jr.", "Wolf", "Vogt Jr."),
        ("Edward Smith, Sr", "Edward", "Smith Sr"),
        ("Mr Smith Jr.", None, "Smith Jr."),
        ("Hans Müller d. J.", "Hans", "Müller d. J."),
        ("Karl Meier III", "Karl", "Meier III"),
        ("Min Jun", "Min", "Jun"),  # a Korean given name, no suffix
        ("Kim Min Jun", "Kim Min", "Jun"),
        ("Amartya Sen", "Amartya", "Sen"),
        # with its dot, jun./sen. is the German abbreviation, never a surname of its own
        ("Klaus Kobelt sen.", "Klaus", "Kobelt sen."),
        ("Kobelt, Klaus jun.", "Klaus", "Kobelt jun."),
        # "M." before a surname may be Monsieur: no first name (unless the row's country says
        # it is an initial, below)
        ("M. Wagner", None, "Wagner"),
        ("M. de Jonge", None, "de Jonge"),
        ("M. Jean Martin", "Jean", "Martin"),
        ("Sr. García", None, "García"),  # Señor; after a surname, Sr is Senior
        ("Sr. Juan García", "Juan", "García"),
        ("John M. Smith", "John M.", "Smith"),
    ],
)
def test_split_full_name(full: str, first: str | None, last: str | None) -> None:
    assert n.split_full_name(full) == (first, last)


def test_an_m_with_a_full_stop_is_an_initial_outside_french_speaking_countries() -> None:
    assert n.split_full_name("M. Wagner", monsieur=False) == ("M.", "Wagner")


def test_display_name_title_cases_shouting_only() -> None:
    assert n.display_name("MÜLLER") == "Müller"
    assert n.display_name("anna-lena") == "Anna-Lena"
    assert n.display_name("McDonald") == "McDonald"


def test_email_trims_and_lowercases() -> None:
    assert n.email("  Anna.Mueller@Example.COM ") == "anna.mueller@example.com"
    assert n.email("n/a") is None
    with pytest.raises(n.FieldError):
        n.email("anna.at.example")


@pytest.mark.parametrize(
    "raw",
    ["030 1234567", "+49 30 1234567", "0049 30 1234567", "(030) 123 45 67", "+49 (30) 123-4567"],
)
def test_phone_to_e164_with_region(raw: str) -> None:
    assert n.phone(raw, "DE") == "+49301234567"


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("(956) 514-2238", "9565142238"),
        ("0598 549048", "0598549048"),
        ("0182/405851", "0182405851"),
    ],
)
def test_a_national_number_without_a_region_is_never_another_countrys_e164(
    raw: str, stored: str
) -> None:
    """A national-format number without a region is never stored as another country's E.164:
    it keeps its national digits as written (leading zeros kept, no +)."""
    assert n.phone(raw, None) == stored
    assert not n.phone(raw, None).startswith("+")  # type: ignore[union-attr]


def test_a_number_with_its_country_code_needs_no_region() -> None:
    assert n.phone("+1 (956) 514-2238", None) == "+19565142238"
    assert n.phone("0031 598 549048", None) == "+31598549048"
    assert n.phone("+49 (0) 30 1234567", None) == "+49301234567"
    assert n.phone("(956) 514-2238", "US") == "+19565142238"
    assert n.phone("0598 549048", "NL") == "+31598549048"


@pytest.mark.parametrize("raw", ["1234", "call me", "12-34", "0301234567 ask for Kim"])
def test_a_national_number_without_a_region_is_still_checked(raw: str) -> None:
    with pytest.raises(n.FieldError) as caught:
        n.phone(raw, None)
    assert caught.value.reason == "not a phone number"
    with pytest.raises(n.FieldError) as caught:
        n.phone("0123 4567 8901 2345 6", None)  # more digits than any number has
    assert caught.value.implausible


@pytest.mark.parametrize(
    ("stored", "key"),
    [
        ("+19565142238", "9565142238"),
        ("9565142238", "9565142238"),
        ("19565142238", "9565142238"),
        ("+31598549048", "598549048"),
        ("0598549048", "598549048"),
        ("+390612345678", "612345678"),
        ("0612345678", "612345678"),
        ("+49301234567", "301234567"),
        ("+442079460123", "2079460123"),
    ],
)
def test_phone_digits_key(stored: str, key: str) -> None:
    assert n.phone_digits_key(stored) == key


def test_phone_digits_forms_have_the_same_key() -> None:
    assert n.phone_digits_forms("+31598549048") == ("598549048", "0598549048")
    national = n.phone_digits_forms("0598549048")
    assert "+31598549048" in national and "+49598549048" in national
    assert "+19565142238" in n.phone_digits_forms("9565142238")
    for stored in ("+390612345678", "0612345678", "9565142238", "+19565142238"):
        forms = n.phone_digits_forms(stored)
        assert stored not in forms
        assert {n.phone_digits_key(f) for f in forms} == {n.phone_digits_key(stored)}


def test_phone_regions_are_known_regions() -> None:
    assert n.phone_region("gb") == "GB"
    assert n.phone_region("United Kingdom") == "GB"
    assert n.phone_region("XX") is None
    assert n.phone_region(None) is None


def test_phone_region_matters_and_garbage_is_an_error() -> None:
    assert n.phone("(212) 555-0147", "US") == "+12125550147"
    assert n.phone("020 7946 0123", "GB") == "+442079460123"
    with pytest.raises(n.FieldError):
        n.phone("call me", "DE")
    with pytest.raises(n.FieldError):
        n.phone("12", "DE")


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("1985-03-07", "1985-03-07"),
        ("07.03.1985", "1985-03-07"),
        ("7.3.1985", "1985-03-07"),
        ("25/12/1980", "1980-12-25"),
        ("12/25/1980", "1980-12-25"),
        ("1980/12/25", "1980-12-25"),
        ("6. Juni 1950", "1950-06-06"),
        ("6 June 1950", "1950-06-06"),
        ("June 6, 1950", "1950-06-06"),
        ("3. März 1961", "1961-03-03"),
        (date(1970, 1, 2), "1970-01-02"),
    ],
)
def test_dates_of_birth(raw: object, iso: str) -> None:
    assert n.date_of_birth(raw) == iso


@pytest.mark.parametrize("raw", ["31.02.1985", "gestern", "03/04/1980", "2999-01-01", "1850-01-01"])
def test_bad_dates_of_birth_raise(raw: str) -> None:
    with pytest.raises(n.FieldError):
        n.date_of_birth(raw)


def test_an_ambiguous_birth_date_keeps_both_readings_day_month_first() -> None:
    for _ in range(2):  # the second time from the cache
        with pytest.raises(n.AmbiguousDate) as caught:
            n.date_of_birth("03/04/1982")
        assert caught.value.readings == ("1982-04-03", "1982-03-04")
        assert not caught.value.implausible
        assert "date_format" in caught.value.fix


def test_a_birth_date_reading_out_of_range_is_no_reading() -> None:
    today = date(2026, 3, 1)
    # One reading in the future leaves the other; both in the future: out of range.
    assert n.date_of_birth("03/02/2026", today=today) == "2026-02-03"
    assert n.date_of_birth("02/03/2026", today=today) == "2026-02-03"
    with pytest.raises(n.FieldError) as caught:
        n.date_of_birth("04/05/2026", today=today)
    assert caught.value.implausible and not isinstance(caught.value, n.AmbiguousDate)
    with pytest.raises(n.AmbiguousDate):
        n.date_of_birth("01/02/2026", today=today)


def test_explicit_date_format() -> None:
    assert n.date_of_birth("03/04/1980", "%d/%m/%Y") == "1980-04-03"


def test_timestamps_are_utc() -> None:
    assert n.timestamp("2026-03-01T15:05:00+01:00") == datetime(2026, 3, 1, 14, 5, tzinfo=UTC)
    assert n.timestamp("2026-03-01 14:05") == datetime(2026, 3, 1, 14, 5, tzinfo=UTC)
    assert n.timestamp("01.03.2026 14:05") == datetime(2026, 3, 1, 14, 5, tzinfo=UTC)
    assert n.timestamp(1772373900) == datetime(2026, 3, 1, 14, 5, tzinfo=UTC)
    assert n.timestamp("1772373900000") == datetime(2026, 3, 1, 14, 5, tzinfo=UTC)
    with pytest.raises(n.FieldError):
        n.timestamp("soon")


def test_street_variants_meet() -> None:
    keys = {
        n.street_key(s) for s in ("Hauptstraße 5", "Hauptstr. 5", "Hauptstrasse 5", "HAUPTSTR.5")
    }
    assert keys == {"hauptstr 5"}
    assert n.street_key("12 Baker Street") == n.street_key("12 Baker St.")


@pytest.mark.parametrize(
    ("written", "abbreviated"),
    [
        ("84 Knapp Lane", "84 Knapp Ln"),
        ("742 Tanner Court", "742 TANNER CT."),
        ("129 Kennedy Boulevard", "129 Kennedy Blvd"),
        ("46 Baird Drive", "46 Baird Dr."),
        ("3 Hillside Gardens", "3 Hillside Gdns"),
        ("57, boulevard Astrid Lambert", "57, bd Astrid Lambert"),
        ("Calle Mayor 5", "C/ Mayor 5"),
        ("101 rue Édith Pinto", "101 r. Édith Pinto"),
        ("Plaza Mayor 3", "Pza. Mayor 3"),
        ("Hövelgasse 85", "Hoevelgasse 85"),
        ("27 Washington Grove", "27 Washington Gr"),
        ("5 Oak Close", "5 Oak Cl."),
        ("Lizastraat 70", "Lizastr. 70"),
        ("Van Gogh Laan 4", "Van Gogh ln 4"),
    ],
)
def test_street_types_written_out_or_abbreviated_meet(written: str, abbreviated: str) -> None:
    assert n.street_key(written) == n.street_key(abbreviated)


def test_street_types_keep_streets_apart_and_words_whole() -> None:
    assert n.street_key("84 Knapp Lane") != n.street_key("84 Knapp Court")
    assert n.street_key("84 Knapp Ln") == "84 knapp lane"  # a typo in "Lnae" still finds it
    assert n.street_key("Wylly Place 12") == "wylly place 12"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("Deutschland", "DE"),
        ("germany", "DE"),
        ("DEU", "DE"),
        ("UK", "GB"),
        ("Großbritannien", "GB"),
        ("USA", "US"),
    ],
)
def test_country_codes(raw: str, code: str) -> None:
    assert country_code(raw) == code


def test_unknown_country_raises() -> None:
    with pytest.raises(n.FieldError):
        n.country("Atlantis")


def test_social_handles() -> None:
    assert n.social_handle("@Jane_Doe") == "@jane_doe"
    assert n.social_handle("https://twitter.com/jane_doe") == "@jane_doe"
    with pytest.raises(n.FieldError):
        n.social_handle("not a handle!")


def test_clean_null_tokens_and_spaces() -> None:
    assert n.clean("  a   b ") == "a b"
    assert n.clean("N/A") is None
    assert n.clean(None) is None
    assert n.customer_id(" c-001 ") == "c-001"  # exactly, only surrounding space trimmed
    assert n.customer_id(" seg Case ") == "seg Case"
    assert n.customer_id("n/a") is None
    assert n.customer_id_upper(" c 001 ") == "C001"  # a map file's normalise: upper
    assert n.identifier(17.0) == "17"


def test_phone_fast_paths_agree_with_a_full_parse() -> None:
    """The shortcuts for numbers already in E.164 form or with a plain trunk prefix give exactly
    what phonenumbers gives, on thousands of generated numbers in every written form."""
    import phonenumbers

    from custos.ingest.countries import country_code
    from custos.synthetic import PEOPLE_COLUMNS, iter_people_rows

    phone_at, country_at = PEOPLE_COLUMNS.index("phone"), PEOPLE_COLUMNS.index("country")
    checked = 0
    for row in iter_people_rows(6000, seed=3):
        raw, region = row[phone_at], country_code(row[country_at] or "") or "DE"
        if not raw:
            continue
        number = phonenumbers.parse(raw, region)
        expected = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        assert n.phone(raw, region) == expected, raw
        checked += 1
    assert checked > 4000


def test_phone_without_trunk_prefix_agrees_with_a_full_parse() -> None:
    """National numbers written without trunk prefix (the US form, typos of one digit more or
    less, calling-code and dialling-abroad look-alikes) normalise exactly as phonenumbers
    parses them, or are refused where it finds them impossible."""
    import random

    import phonenumbers

    rng = random.Random(5)
    checked = 0
    for region in ("US", "CA", "DE", "GB", "FR", "IT", "ES", "NL", "AT", "CH", "PL", "BR", "IN"):
        for _ in range(400):
            digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(5, 13)))
            if rng.random() < 0.3:
                digits = str(rng.randint(201, 989)) + digits[:7]  # a US-like number
            if digits.startswith("00"):
                continue  # read as +…, everywhere, on purpose (see test_phone_to_e164_with_region)
            try:
                number = phonenumbers.parse(digits, region)
            except phonenumbers.NumberParseException:
                number = None
            if number is None or not phonenumbers.is_possible_number(number):
                with pytest.raises(n.FieldError):
                    n.phone(digits, region)
                continue
            expected = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            assert n.phone(digits, region) == expected, (region, digits)
            checked += 1
    assert checked > 2000
    # Dialling abroad from the US (011 …) and a German number written with its calling code.
    assert n.phone("01149301234567", "US") == "+49301234567"
    assert n.phone("49301234567", "DE") == "+49301234567"


@pytest.mark.parametrize(
    ("full", "last"),
    [
        ("Mr de Jonge", "de Jonge"),
        ("Dhr. van der Berg", "van der Berg"),
        ("Frau von Arnim", "von Arnim"),
    ],
)
def test_a_surname_with_its_particles_is_no_first_name(full: str, last: str) -> None:
    """A caller written as title and surname: "de" or "van" is part of the surname."""
    assert n.split_full_name(full) == (None, last)
