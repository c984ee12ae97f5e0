"""German customer-service texts for *training* the German fast path (never for evaluation).

Written for custos, separately from the evaluation set ``bench/sentiment_de/texts.tsv`` (its
texts were not looked at while writing these; no sentence is copied from it). The texts are
composed from hand-written fragments: a greeting, one or two statements about a topic, maybe a
request or a detail, and a sign-off, in the forms of call notes, e-mails, chats and reviews.
Each text carries the mood its fragments were drawn from (``labelled_corpus``): the shipped
sentiment head trains on them (``bench/sentiment_sources.py``, source ``custos-de-composed``).

    labelled_corpus(n=6000, seed=...) -> [(text, group, label), ...]   (deterministic)

Licence: CC0 1.0, like the evaluation set.
"""

from __future__ import annotations

import random

TOPICS = [
    # (nominative with article, dative with article)
    ("die Lieferung", "der Lieferung"),
    ("das Paket", "dem Paket"),
    ("die Bestellung", "der Bestellung"),
    ("die Rechnung", "der Rechnung"),
    ("die Erstattung", "der Erstattung"),
    ("die Gutschrift", "der Gutschrift"),
    ("der Vertrag", "dem Vertrag"),
    ("der neue Tarif", "dem neuen Tarif"),
    ("die Kündigung", "der Kündigung"),
    ("die Hotline", "der Hotline"),
    ("der Kundenservice", "dem Kundenservice"),
    ("der Techniker", "dem Techniker"),
    ("der Router", "dem Router"),
    ("der Internetanschluss", "dem Internetanschluss"),
    ("die App", "der App"),
    ("die Webseite", "der Webseite"),
    ("das Kundenkonto", "dem Kundenkonto"),
    ("die Lastschrift", "der Lastschrift"),
    ("das Abo", "dem Abo"),
    ("der Termin", "dem Termin"),
    ("die Reparatur", "der Reparatur"),
    ("der Umtausch", "dem Umtausch"),
    ("die Rücksendung", "der Rücksendung"),
    ("die Beratung", "der Beratung"),
    ("die Filiale", "der Filiale"),
    ("der Versand", "dem Versand"),
    ("der Paketbote", "dem Paketboten"),
    ("die Buchung", "der Buchung"),
    ("die Stromabrechnung", "der Stromabrechnung"),
    ("das Handy", "dem Handy"),
    ("die Waschmaschine", "der Waschmaschine"),
    ("der Onlineshop", "dem Onlineshop"),
    ("die Zahlung", "der Zahlung"),
    ("die Mahnung", "der Mahnung"),
    ("das Ersatzteil", "dem Ersatzteil"),
    ("die Montage", "der Montage"),
    ("der Flug", "dem Flug"),
    ("die Zugverbindung", "der Zugverbindung"),
    ("das Hotelzimmer", "dem Hotelzimmer"),
    ("die Versicherung", "der Versicherung"),
]

ITEMS = [
    "Jacke",
    "Kaffeemaschine",
    "Matratze",
    "Lampe",
    "Schuhe",
    "Staubsauger",
    "Drucker",
    "Fernseher",
    "Sofa",
    "Kinderwagen",
    "Laptop",
    "Kopfhörer",
    "Uhr",
    "Tisch",
    "Bohrmaschine",
]

GREETINGS = {
    "email": [
        "Sehr geehrte Damen und Herren,",
        "Hallo,",
        "Guten Tag,",
        "Liebes Team,",
        "Sehr geehrte Frau <PERSON>,",
        "Sehr geehrter Herr <PERSON>,",
        "Moin,",
        "",
    ],
    "chat": ["Hallo", "Hi", "Hey", "Guten Morgen", "Servus", ""],
    "note": [""],
    "review": [""],
}

SIGNOFFS = {
    "email": [
        "Mit freundlichen Grüßen",
        "Viele Grüße",
        "Beste Grüße",
        "Gruß",
        "MfG",
        "Freundliche Grüße, <PERSON>",
        "",
        "",
    ],
    "chat": ["", "", "Danke.", "Grüße"],
    "note": [""],
    "review": ["", "", "Fazit siehe oben."],
}

POSITIVE = [
    "{Topic} hat wunderbar geklappt.",
    "Vielen Dank für die schnelle Hilfe mit {topic_dat}!",
    "Ich bin sehr zufrieden mit {topic_dat}.",
    "Der Mitarbeiter war ausgesprochen freundlich und hat mir sofort geholfen.",
    "Die Mitarbeiterin am Telefon war super nett und kompetent.",
    "Alles bestens, gerne wieder!",
    "Top Service, so muss das sein.",
    "Das Problem wurde innerhalb von Minuten gelöst.",
    "Endlich funktioniert alles wieder, herzlichen Dank!",
    "Ich kann Sie nur weiterempfehlen.",
    "Hat alles reibungslos funktioniert.",
    "Die {item} ist heute angekommen und gefällt mir richtig gut.",
    "Ich bin begeistert, wie unkompliziert das lief.",
    "Danke, dass Sie sich so schnell gekümmert haben.",
    "Das Geld ist schon auf meinem Konto, vielen Dank.",
    "Sehr gute Beratung, ich fühle mich gut aufgehoben.",
    "Der Techniker war pünktlich und hat sauber gearbeitet.",
    "Eine rundum gelungene Erfahrung.",
    "Ich bin positiv überrascht, das hätte ich nicht erwartet.",
    "Klasse, genau so hatte ich mir das vorgestellt.",
    "Fünf Sterne, absolut verdient.",
    "Tolle Qualität zu einem fairen Preis.",
    "Schnelle Lieferung, gut verpackt, alles bestens.",
    "Ihre Kollegin hat mir den Tag gerettet.",
    "Ich bin froh, dass ich bei Ihnen Kunde bin.",
    "Super, das ging ja schneller als gedacht!",
    "Vielen Dank für die Kulanz, das weiß ich sehr zu schätzen.",
    "Die Umstellung auf den neuen Tarif war völlig problemlos.",
    "Man merkt, dass Ihnen Ihre Kunden wichtig sind.",
    "Ich habe mich sehr über die nette Antwort gefreut.",
    "Perfekt, vielen Dank für die ausführliche Erklärung.",
    "Die App ist wirklich übersichtlich und einfach zu bedienen.",
    "Mein Anliegen wurde zu meiner vollsten Zufriedenheit erledigt.",
    "Herzlichen Dank an das ganze Team!",
    "Das war der beste Kundenservice, den ich je erlebt habe.",
    "Hervorragend, weiter so!",
    "Alles hat auf Anhieb funktioniert.",
    "Der Ersatz kam schon am nächsten Tag, prima.",
    "Freundlich, schnell und zuverlässig, was will man mehr.",
    "Ich bin rundum glücklich mit meinem Einkauf.",
    "Danke für die prompte Antwort.",
    "Lief alles glatt, vielen Dank.",
    "Sehr freundlicher Kontakt, gerne wieder.",
    "Wow, das nenne ich Service!",
    "Die Reklamation wurde schnell und kulant bearbeitet.",
    "Ich war skeptisch, aber es hat sich gelohnt.",
    "Das Gerät läuft einwandfrei, ich bin sehr zufrieden.",
    "Mega, danke euch!",
    "Danke für eure Geduld mit mir.",
    "Die Zustellung war pünktlich und der Bote sehr höflich.",
    "Klare Empfehlung von mir.",
    "Tolle Erfahrung, ich bestelle bestimmt wieder.",
    "Ich möchte mich ausdrücklich für die gute Betreuung bedanken.",
    "Sie haben mir sehr weitergeholfen.",
    "Besser hätte es nicht laufen können.",
    "Die neue Version der App ist richtig gut geworden.",
    "Vielen lieben Dank, Sie sind spitze!",
    "Die Rückerstattung kam schneller als erwartet, prima.",
    "Ich bin echt erleichtert, dass das geklärt ist.",
]

POSITIVE_NOTES = [
    "Kunde bedankt sich für die schnelle Bearbeitung.",
    "Kundin lobt {topic} ausdrücklich.",
    "Kunde sehr zufrieden, kein weiterer Handlungsbedarf.",
    "Kundin freut sich über die Gutschrift und bedankt sich.",
    "Anrufer war begeistert von der Beratung.",
    "Kunde lobt die Freundlichkeit des Fahrers.",
    "Kundin bedankt sich herzlich, Problem gelöst.",
    "Kunde ist froh, dass alles wieder läuft.",
    "Kundin zufrieden mit der Lösung, bedankt sich.",
    "Kunde lobt die schnelle Erstattung.",
    "Anruferin erleichtert, Störung behoben.",
    "Kunde möchte sich ausdrücklich beim Techniker bedanken.",
]

NEGATIVE = [
    "Ich warte seit {weeks} Wochen auf {topic}.",
    "Das ist eine absolute Frechheit.",
    "Niemand meldet sich bei mir, ich bin sehr verärgert.",
    "Ich bin total enttäuscht von {topic_dat}.",
    "Schon wieder wurde falsch abgerechnet.",
    "So einen schlechten Service habe ich noch nie erlebt.",
    "Ich will endlich mein Geld zurück!",
    "Die {item} kam kaputt an und niemand fühlt sich zuständig.",
    "Seit Tagen habe ich kein Internet und keiner hilft mir.",
    "Unverschämt, wie hier mit Kunden umgegangen wird.",
    "Ich habe jetzt zum dritten Mal angerufen und werde immer nur vertröstet.",
    "Wenn sich nichts ändert, kündige ich.",
    "{Topic} ist eine einzige Katastrophe.",
    "Die Warteschleife dauerte über eine Stunde, das ist unzumutbar.",
    "Ihre Mitarbeiterin war unfreundlich und hat einfach aufgelegt.",
    "Mir wurde ein Betrag abgebucht, den ich nie bestellt habe.",
    "Die Qualität ist miserabel, die {item} ist nach zwei Tagen kaputt.",
    "Ich fühle mich komplett im Stich gelassen.",
    "Das war mit Abstand der schlechteste Einkauf meines Lebens.",
    "Null Sterne, wenn ich könnte.",
    "Finger weg von diesem Anbieter!",
    "Meine Beschwerde wurde einfach ignoriert.",
    "Der Techniker ist wieder nicht erschienen, ich habe umsonst Urlaub genommen.",
    "Sie haben mich jetzt endgültig als Kunden verloren.",
    "Es ist ärgerlich, dass man bei Ihnen niemanden erreicht.",
    "Ich bin wirklich sauer, das Paket ist verschwunden.",
    "Das ist nicht das erste Mal, dass so etwas passiert.",
    "Die Mahngebühr ist völlig ungerechtfertigt.",
    "Leider funktioniert {topic} immer noch nicht.",
    "Ich habe mich selten so geärgert.",
    "Die Lieferung ist schon wieder verspätet, langsam reicht es.",
    "Ihr Chatbot versteht überhaupt nichts.",
    "Ich bin mit {topic_dat} überhaupt nicht zufrieden.",
    "Das ist leider gar nicht gut gelaufen.",
    "Statt einer Lösung bekomme ich nur Textbausteine.",
    "Der Preis ist eine Zumutung für diese Leistung.",
    "Ich bin fassungslos über so viel Inkompetenz.",
    "Mein Anwalt wird sich bei Ihnen melden.",
    "Wieder eine falsche Auskunft, das nervt gewaltig.",
    "Die versprochene Gutschrift ist nie angekommen.",
    "Das kann doch nicht wahr sein.",
    "Seit Wochen keine Antwort auf meine E-Mails.",
    "Der Kundenservice ist eine Zumutung.",
    "Völlig überteuert und schlecht verarbeitet.",
    "Ich bin maßlos enttäuscht.",
    "Was für ein Chaos bei Ihnen!",
    "Die Ware entspricht nicht der Beschreibung.",
    "Mir reicht es jetzt endgültig.",
    "Wieder nichts passiert, obwohl man mir einen Rückruf versprochen hat.",
    "Ich fühle mich verarscht.",
    "Nie wieder bestelle ich bei euch.",
    "Total nervig, dass die App ständig abstürzt.",
    "Der Fahrer hat das Paket einfach vor die Tür geworfen.",
    "Das ist Betrug, ich habe das nie bestellt.",
    "Peinlich, wie lange das dauert.",
    "Leider keine Besserung in Sicht.",
    "Man wird von einer Abteilung zur nächsten geschickt.",
    "Schlechter geht es wirklich nicht.",
    "Ich bin stinksauer.",
]

NEGATIVE_NOTES = [
    "Kunde verärgert wegen {topic_dat}, droht mit Kündigung.",
    "Kundin beschwert sich über lange Wartezeiten.",
    "Anrufer sehr aufgebracht, Gespräch eskaliert.",
    "Kunde unzufrieden mit {topic_dat}, dritte Beschwerde.",
    "Kundin enttäuscht, weil der Rückruf nicht kam.",
    "Kunde beschwert sich über falsche Abbuchung.",
    "Kundin verärgert, Ware beschädigt angekommen.",
    "Kunde frustriert, Problem weiterhin ungelöst.",
    "Kundin sehr verärgert, wartet seit Wochen auf Rückzahlung.",
    "Anrufer beschimpft Mitarbeiter, Gespräch abgebrochen.",
    "Kunde empört über Preiserhöhung.",
    "Kundin enttäuscht vom Service, will Vertrag kündigen.",
]

NEUTRAL = [
    "Bitte senden Sie mir eine Kopie {topic_gen}.",
    "Wann kommt {topic}?",
    "Ich möchte meine Adresse ändern.",
    "Können Sie mir sagen, wie lange {topic} dauert?",
    "Meine Kundennummer lautet <CUSTOMER_ID>.",
    "Ich ziehe zum {day}. um, bitte passen Sie die Adresse an.",
    "Gibt es {item} auch in einer anderen Farbe?",
    "Wie kann ich mein Passwort zurücksetzen?",
    "Bitte buchen Sie den Betrag von meinem neuen Konto ab.",
    "Ich hätte gern einen Termin für nächste Woche.",
    "Welche Unterlagen brauchen Sie noch von mir?",
    "Ist die {item} noch lieferbar?",
    "Ich möchte {topic} zum Monatsende beenden.",
    "Bitte rufen Sie mich morgen Vormittag zurück.",
    "Wo finde ich die Rechnung im Kundenkonto?",
    "Können Sie mir die Bedingungen für den Tarif schicken?",
    "Ich habe eine Frage zu {topic_dat}.",
    "Anbei sende ich Ihnen das ausgefüllte Formular.",
    "Wie sind Ihre Öffnungszeiten am Samstag?",
    "Liefern Sie auch nach Österreich?",
    "Ich möchte die Zahlungsart auf Rechnung umstellen.",
    "Bitte bestätigen Sie den Eingang meiner Nachricht.",
    "Die Bestellnummer ist <NUMBER>.",
    "Muss ich für die Rücksendung etwas bezahlen?",
    "Ich bitte um Auskunft über meine gespeicherten Daten.",
    "Wann wird der Betrag verbucht?",
    "Können Sie die {item} bis Freitag liefern?",
    "Ich benötige eine Bescheinigung für das Finanzamt.",
    "Bitte ändern Sie meine Telefonnummer.",
    "Ist eine Ratenzahlung möglich?",
    "Wie lange gilt das Angebot noch?",
    "Ich möchte die E-Mail-Adresse im Konto ändern.",
    "Gibt es eine Garantie auf {topic}?",
    "Wie kündige ich den Newsletter?",
    "Bitte schicken Sie mir ein Rücksendeetikett.",
    "Welche Versandarten bieten Sie an?",
    "Wo kann ich den Status meiner Bestellung sehen?",
    "Ich habe die Unterlagen gestern per Post geschickt.",
    "Wer ist für meinen Vertrag zuständig?",
    "Kann ich den Termin auf Dienstag verschieben?",
    "Wie hoch ist die monatliche Grundgebühr?",
    "Bitte teilen Sie mir den aktuellen Stand mit.",
    "Ich möchte eine zusätzliche SIM-Karte bestellen.",
    "Ab wann gilt der neue Preis?",
    "Brauche ich für die Abholung einen Ausweis?",
    "Bitte senden Sie die Rechnung an meine Firmenadresse.",
    "Kann ich online bezahlen oder nur per Überweisung?",
    "Ich melde mich wegen der Zählerstände.",
    "Hiermit widerrufe ich meine Einwilligung zur Werbung.",
    "Gibt es einen Studentenrabatt?",
    "Wie erreiche ich die technische Abteilung?",
    "Ich bin ab Montag im Urlaub, bitte liefern Sie danach.",
    "Welche Kündigungsfrist hat mein Vertrag?",
    "Kann mein Nachbar das Paket annehmen?",
    "Ich habe die Zahlung heute überwiesen.",
    "Bitte stornieren Sie die zweite Bestellung.",
    "Ist der Artikel auch in Größe M verfügbar?",
    "Wie lange dauert die Bearbeitung in der Regel?",
    "Bitte schicken Sie mir die Unterlagen per E-Mail.",
]

NEUTRAL_NOTES = [
    "Kunde fragt nach dem Stand {topic_gen}.",
    "Kundin meldet Umzug, neue Adresse eingetragen.",
    "Rückruf für morgen vereinbart.",
    "Unterlagen per Post verschickt.",
    "Kunde möchte Zahlungsart ändern, Formular gesendet.",
    "Kundin fragt nach Öffnungszeiten, Auskunft erteilt.",
    "Adressänderung aufgenommen.",
    "Kunde bittet um Zusendung der Vertragsunterlagen.",
    "Anfrage zu {topic_dat} an Fachabteilung weitergeleitet.",
    "Kundin ruft wegen Terminvereinbarung an, Termin am {day}. eingetragen.",
    "Kunde erkundigt sich nach Lieferzeiten.",
    "Bankverbindung aktualisiert.",
    "Kunde fragt nach Ratenzahlung, Infos gesendet.",
    "Kundin möchte Rechnung per Post, vermerkt.",
    "Zählerstand telefonisch übermittelt.",
    "Kunde bestellt Ersatzteil, Lieferung in 5 Tagen.",
]

DETAILS = [
    "Bestellung vom {day}. Mai.",
    "Es geht um die Kundennummer <CUSTOMER_ID>.",
    "Die Rechnung vom {day}. liegt bei.",
    "Ich habe am {day}. bestellt.",
    "Das betrifft meinen Vertrag mit der Nummer <NUMBER>.",
    "Ich bin unter <PHONE> erreichbar.",
    "Fotos habe ich angehängt.",
    "Es handelt sich um die {item}.",
]

MIXED = [
    ("negative", "positive", " Aber am Ende wurde alles gut gelöst."),
    ("negative", "positive", " Zum Glück hat sich Ihre Kollegin dann sofort gekümmert."),
    ("positive", "negative", " Aber leider ist das Problem jetzt wieder da."),
    ("positive", "negative", " Schade nur, dass danach niemand mehr reagiert hat."),
]


def _genitive(nominative: str) -> str:
    article, _, rest = nominative.partition(" ")
    if article == "die":
        return f"der {rest}"
    words = rest.split(" ")
    noun = words[-1]
    if not noun.endswith(("s", "x", "z")):
        noun += "es" if len(noun) <= 4 else "s"
    adjectives = [w + ("n" if w.endswith("e") else "") for w in words[:-1]]
    return " ".join(["des", *adjectives, noun])


def _fill(fragment: str, rng: random.Random) -> str:
    nominative, dative = rng.choice(TOPICS)
    return fragment.format(
        topic=nominative,
        Topic=nominative[:1].upper() + nominative[1:],
        topic_dat=dative,
        topic_gen=_genitive(nominative),
        item=rng.choice(ITEMS),
        weeks=rng.choice(["zwei", "drei", "vier", "sechs", "2", "3"]),
        day=rng.randint(1, 28),
    )


def _statements(kind: str, mood: str) -> list[str]:
    note = kind == "note"
    pools = {
        "positive": POSITIVE_NOTES if note else POSITIVE,
        "negative": NEGATIVE_NOTES if note else NEGATIVE,
        "neutral": NEUTRAL_NOTES if note else NEUTRAL,
    }
    return pools[mood]


def compose(rng: random.Random) -> tuple[str, str, str]:
    """One text: a kind (e-mail, chat, note, review), a mood, fragments of that mood; its group
    (its first statement's fragment, so that cross-validation can keep fragments apart) and its
    label: the mood, or ``mixed`` when a turn to the other mood was appended."""
    kind = rng.choice(["email", "email", "chat", "chat", "note", "review"])
    mood = rng.choice(["positive", "negative", "neutral"])
    parts = [rng.choice(GREETINGS[kind])]
    statements = _statements(kind, mood)
    count = rng.choice([1, 1, 2, 2, 3]) if kind != "note" else rng.choice([1, 2])
    chosen = rng.sample(statements, min(count, len(statements)))
    if rng.random() < 0.3:
        chosen.insert(rng.randrange(len(chosen) + 1), rng.choice(DETAILS))
    if mood != "neutral" and kind != "note" and rng.random() < 0.15:
        chosen.append(rng.choice(_statements(kind, "neutral")))
    parts.extend(_fill(s, rng) for s in chosen)
    label = mood
    if kind in ("email", "review", "chat") and rng.random() < 0.1:
        first, _then, tail = rng.choice(MIXED)
        if first == mood:
            parts.append(tail.strip())
            label = "mixed"
    parts.append(rng.choice(SIGNOFFS[kind]))
    text = " ".join(p for p in parts if p)
    if kind == "chat" and rng.random() < 0.3:
        text = text.lower().replace(".", "")
    group = next(s for s in chosen if s not in DETAILS)
    return text, group, label


def corpus(n: int = 6000, seed: int = 20261129) -> list[tuple[str, str]]:
    """``n`` distinct training texts with their groups, the same for the same seed."""
    return [(text, group) for text, group, _ in labelled_corpus(n, seed)]


def labelled_corpus(n: int = 6000, seed: int = 20261129) -> list[tuple[str, str, str]]:
    """``n`` distinct training texts with their groups and labels (``negative``, ``neutral``,
    ``positive`` or ``mixed``), the same for the same seed."""
    rng = random.Random(seed)
    seen: dict[str, tuple[str, str]] = {}
    while len(seen) < n:
        text, group, label = compose(rng)
        seen.setdefault(text, (group, label))
    return [(text, group, label) for text, (group, label) in seen.items()]


if __name__ == "__main__":
    for text, _ in corpus(20):
        print(text)
