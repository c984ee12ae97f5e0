"""Offline language detection for the sentiment engines: English, German, or ``unknown``.

Sentiment is only scored for languages the engines were checked on; everything else is marked
``unknown`` rather than guessed. A record's stated language (its ``language`` field) wins over
detection (:func:`resolve_language`). Detection counts function words (and a few very common
customer-service words) of English and German *and* of the neighbouring Latin-script languages
(Dutch, French, Spanish, Italian, Portuguese, Scandinavian, Polish, Turkish): a text is English or
German when that language has more hits than every other one, so a short text with one English
or German word ("Danke!", "Great, thanks") is scored; ``unknown`` is for texts with more evidence
of another language. Texts mostly in a
non-Latin script are ``unknown``. No model, no download, a few microseconds a text.
"""

from __future__ import annotations

import re
from typing import Literal

Language = Literal["en", "de", "unknown"]

_EN = """
a about above after again against all also am an and any are aren't as at be because been before
being below between both but by can can't cannot could couldn't did didn't do does doesn't doing
don't down during each few for from further had hadn't has hasn't have haven't having he her here
hers herself him himself his how i i'd i'll i'm i've if in into is isn't it it's its itself just
let's me more most my myself no nor not of off on once only or other our ours ourselves out over
own same she should shouldn't so some such than that that's the their theirs them themselves then
there these they they're this those through to too under until up very was wasn't we we're were
weren't what when where which while who whom why will with won't would wouldn't you you're your
yours yourself yourselves thanks thank thx please pls hello hi hey yes yeah ok okay still again
never ever now today tomorrow yesterday get got going gonna want need help just really great good
bad worst best love hate awesome terrible horrible amazing nice wait waiting flight flights delayed
cancelled canceled late customer service support order refund account issue problem call called
phone email sent received back time hours hour day days minutes guys anyone someone everyone
nothing something anything again why because since ago done sure cool thnx tyvm thankyou
thanku ty tho im lol omg wtf plz yup nope alright absolutely definitely maybe probably actually
first last next new old much many lot lots little big small long short right wrong free every
around away another enough through already almost always sometimes usually seat seats gate bag
bags baggage luggage airport plane crew staff agent agents ticket tickets booking booked trip
travel fly flying flew landed delay delays delayed failure fail apology sorry respect fan fans
fav favorite favourite deal deals price prices fee fees money pay paid charge charged week weeks
month months year morning night tonight home work job team people guy man woman kids family
friend friends make made take took give gave tell told ask asked say said know knew think
thought see saw look looking find found keep kept let put try tried use used feel felt leave
left come came go went run stuck lost missed waiting answer answered reply response respond
contact app website online link update message email emails number code name info information
better worse best worst happy sad angry upset disappointed excited glad thankful grateful
ridiculous unacceptable awful rude friendly helpful nice great awesome amazing excellent
terrible horrible poor slow fast quick easy hard well fine okay
"""

_DE = """
aber alle allem allen aller alles als also am an andere anderen auch auf aus bei beim bin bis bitte
die diese dieser dieses diesen wurde wurden worden wegen neue neuen neues anruf kundennummer
bist da dabei dadurch dafür dagegen daher damit danach dann darauf darum das dass davon dazu dein
deine dem den denn der des dich dir doch dort du durch ein eine einem einen einer eines einfach er
es etwas euch euer eure für gegen gewesen hab habe haben hat hatte hatten hier hin hinter ich ihm
ihn ihnen ihr ihre im immer in ins ist ja jede jedem jeden jeder jetzt kann kein keine keinen
können könnte man mehr mein meine meinem meinen meiner mich mir mit muss musste nach nicht nichts
noch nun nur ob oder ohne schon sehr sein seine seit sich sie sind so soll sollte sondern sonst
über um und uns unser unsere unter viel vom von vor war waren warum was weil weiter welche wenn
wer werde werden wie wieder will wir wird wo wollte würde zu zum zur zwar zwischen danke dank
vielen hallo guten tag sehr geehrte geehrter damen herren grüße freundlichen bestellung lieferung
rechnung kunde kundin kundenservice service leider gerne gern toll schlecht schlimm gut
nochmal wochen woche tage tagen stunden heute gestern morgen bereits bisher trotzdem endlich
dankeschön jo nö ne genau klar gute guten schön schöne wirklich echt ganz
geht ging gehen gemacht machen macht kommt kam kommen gibt gab geben sagen gesagt sehen
gesehen warten gewartet bekommen bekam erhalten bestellt bestellen geliefert geschickt
schicken angerufen anrufen erreichen erreicht antwort frage fragen problem probleme paket
pakete geld konto vertrag tarif termin mitarbeiter mitarbeiterin beratung filiale hotline
zufrieden unzufrieden enttäuscht ärgerlich freundlich unfreundlich schnell langsam teuer
günstig kaputt defekt falsch richtig neu alt wochenende monat monate jahr jahre immer nie
hoffe hoffentlich vielleicht natürlich eigentlich bitte danke herzlich freue sorry tschüss
"""

# Function words of languages we do not score. They only need to outvote English and German.
_OTHER = {
    "nl": """de het een en van ik je jij niet dat die is op te zijn met voor maar wat ook nog
          bij naar hoe mijn uw jullie heb hebben geen wel dan om er deze dit zou kan graag
          bedankt alstublieft goed slecht klant klanten vraag vraagt klacht klachten
          bestelling pakket levering bezorging bezorgd adres factuur terugbetaling gedaan
          waar wanneer wijzigen""",
    "fr": """le la les un une des et est je tu il elle nous vous ils pas ne que qui dans pour sur
          avec ce cette mais ou donc très mon ma mes votre vos du au aux été suis avez merci
          bonjour service commande""",
    "es": """el la los las un una y es en que de no por para con su sus lo como pero muy mi
          está estoy son fue gracias hola pedido servicio""",
    "it": """il lo la gli le un una e è di che non per con su mi ma come sono ho hai del della
          grazie buongiorno molto ordine servizio""",
    "pt": """o a os as um uma e é de que não em para com por meu minha mas muito está estou são
          foi obrigado obrigada olá pedido serviço você""",
    "sv": """och att det som en på är av för med till den har inte jag om ett var men så vi
          kan hej tack""",
    "da": """og at det som en på er af for med til den har ikke jeg om et var men så vi kan
          hej tak""",
    "pl": """i w z na nie to jest się że do jak ale co tak mi czy już dziękuję dzień dobry""",
    "tr": """ve bir bu da de için ile çok ne ama gibi daha değil ben sen var yok teşekkürler
          merhaba""",
}

_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(_EN.split()),
    "de": frozenset(_DE.split()),
    **{lang: frozenset(words.split()) for lang, words in _OTHER.items()},
}

#: a link, as language detection strips it and the e5 engine masks it (``embedding_text``)
LINK = r"https?://\S+|www\.\S+"
#: what custos's PII engine leaves of personal data in a text: a placeholder (``<PERSON>``) or
#: a keyed pseudonym (``<PERSON_3f9a1c2b7d4e>``); language detection and the e5 engine
#: (``embedding_text``) leave it out: it names a type, not a word of the text's language
PLACEHOLDER = r"<[A-Z][A-Z0-9_]*(?:_[0-9a-f]+)?>"
_STRIP = re.compile(rf"{LINK}|{PLACEHOLDER}|@\w+|\S+@\S+")
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_LETTER = re.compile(r"[^\W\d_]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_GERMAN_CHARS = re.compile(r"[äöüß]")


def detect_language(text: str, default: Language = "unknown") -> Language:
    """``"en"`` or ``"de"`` when the text has more English or German evidence (function words,
    common customer-service words, umlauts) than evidence of another language; ``"unknown"``
    when another language has more, or the text is mostly in a non-Latin script; ``default``
    when it has no evidence of any language (``"Super Bowl"``, ``"12345"``)."""
    body = _STRIP.sub(" ", text).lower().replace("’", "'")
    letters = _LETTER.findall(body)
    if not letters:
        return "unknown"
    if len(_LATIN.findall(body)) < 0.7 * len(letters):
        return "unknown"
    hits = dict.fromkeys(_WORDS, 0.0)
    for token in _TOKEN.findall(body):
        for lang, words in _WORDS.items():
            if token in words:
                hits[lang] += 1.0
    # umlauts and sharp s are weak evidence for German (Swedish, Finnish, Turkish share some)
    hits["de"] += 0.5 * min(3, len(_GERMAN_CHARS.findall(body)))
    ours = max(hits["en"], hits["de"])
    theirs = max(v for lang, v in hits.items() if lang not in ("en", "de"))
    if theirs > ours or (theirs == ours and ours > 0 and 2 * ours > len(_TOKEN.findall(body))):
        # another language has more evidence, or as much in a text mostly of such words
        return "unknown"
    if ours == 0:
        return default
    if hits["en"] == hits["de"]:
        return default if default != "unknown" else "en"
    return "en" if hits["en"] > hits["de"] else "de"


#: How a record may state its language (ISO 639-1/2 codes with or without a region, names).
_STATED: dict[str, Language] = {
    "en": "en",
    "eng": "en",
    "english": "en",
    "englisch": "en",
    "de": "de",
    "deu": "de",
    "ger": "de",
    "german": "de",
    "deutsch": "de",
}


def stated_language(value: str | None) -> Language | None:
    """The language a record states (``en``, ``en-GB``, ``de_AT``, ``German``): ``"en"`` or
    ``"de"``, ``"unknown"`` for another stated language (``fr``), None when nothing is stated."""
    if value is None or not value.strip():
        return None
    code = re.split(r"[-_ ]", value.strip().lower(), maxsplit=1)[0]
    return _STATED.get(code, "unknown")


def resolve_language(
    text: str, stated: str | None = None, default: Language = "unknown"
) -> Language:
    """The language to score ``text`` in: the record's stated language wins (a text stated
    English or German is scored however short); else detection, ``default`` where the text
    has no evidence of any language."""
    language = stated_language(stated)
    if language is None:
        return detect_language(text, default)
    return language if text.strip() else "unknown"
