"""A small German sentiment lexicon, written for custos (Apache-2.0, like the project).

Not derived from SentiWS or any other lexicon (those carry non-commercial licences). Valences
follow VADER's scale (-4 … +4). Entries are lower-case base forms; the engine strips the usual
adjective endings (-e, -en, -er, -es, -em) and reads ``un…`` + a positive word as negative.
Words mean what they mean in customer service: ``warten`` is mildly negative there.
"""

from __future__ import annotations


def _words(block: str) -> list[str]:
    return block.split()


def _parse(block: str) -> dict[str, float]:
    entries: dict[str, float] = {}
    for line in block.strip().splitlines():
        value, _, words = line.partition(":")
        for word in words.split():
            entries[word] = float(value)
    return entries


VALENCE: dict[str, float] = _parse(
    """
3.2: hervorragend ausgezeichnet exzellent perfekt fantastisch phantastisch großartig grossartig
3.2: spitze spitzenmäßig traumhaft wunderbar wundervoll überragend erstklassig genial herausragend
3.0: begeistert begeisternd begeisterung sensationell klasse top toll prima vorbildlich
2.8: lieben liebt dankbar empfehlenswert empfehlen empfehle empfiehlt weiterempfehlen
2.8: weiterempfehle weiterempfohlen köstlich lecker gerettet
2.6: zufrieden zufriedenheit glücklich froh freude freuen freue freut gefreut erfreut erfreulich
2.5: schnell blitzschnell zügig reibungslos problemlos unkompliziert kompetent hilfsbereit
2.4: freundlich herzlich nett zuvorkommend geduldig kulant kulanz höflich aufmerksam
2.3: danke dank dankeschön bedanken bedanke bedankt gelobt loben lob lobt lobenswert
2.2: gut schön angenehm praktisch zuverlässig verlässlich pünktlich sauber ordentlich
2.2: angetan beeindruckt beeindruckend überzeugt überzeugend überzeugen gelungen
2.0: gelöst lösung erledigt geklappt klappt funktioniert funktionierte hilfreich geholfen
2.0: weitergeholfen behoben geklärt geregelt professionell beste bestens optimal ideal
2.0: gemütlich fair ehrlich treu treue schätzen geschätzt wow respekt super
1.8: passt passend einwandfrei tadellos günstig preiswert lohnt gelohnt intuitiv
1.6: positiv überrascht spaß gewinn vorteil vorteilhaft
1.5: ok okay verständlich transparent übersichtlich einfach bequem stabil flüssig
1.2: erleichtert beruhigt angekommen rechtzeitig
0.8: gerne gern
-0.8: spät später warteschleife kalt laut
-1.0: warten wartezeit wartet wartete gewartet umständlich kompliziert unklar nachfragen
-1.0: kündigen kündige kündigt kündigung gekündigt widerruf rücksendung
-1.2: leider schade langsam verspätet verspätung verzögert verzögerung störung störungen
-1.2: mahnung mahngebühr mahngebühren gebühr gebühren
-1.5: problem probleme fehler fehlerhaft defekt kaputt beschädigt falsch fehlt fehlen fehlte
-1.5: mangel mängel mangelhaft reklamation reklamieren reklamiere beschwerde beschweren
-1.5: ausfall ausfälle ausgefallen absturz abstürzen abgestürzt stürzt hängt verbeult
-1.5: zerkratzt kratzer schaden unvollständig verwechselt verschwunden ungelöst gesperrt
-1.5: abgelehnt ablehnen lehnt verweigert verweigern verweigert einbehalten unberechtigt
-1.5: ungerechtfertigt intransparent billig überfüllt schmutzig dreckig
-1.8: enttäuscht enttäuschend enttäuschung ärgerlich ärger ärgern ärgert verärgert genervt
-1.8: nervig nervt nerven unzufrieden unzufriedenheit unzuverlässig unfreundlich unhöflich
-1.8: teuer traurig beschwert beschwerte herablassend arrogant respektlos ahnungslos
-1.8: ungehalten gereizt aufgebracht verzweifelt fassungslos sprachlos droht drohen anwalt
-2.0: schlecht schlechter mies miserabel dürftig ungenügend unzumutbar unterirdisch
-2.0: ignoriert ignorieren vertröstet hingehalten abgewimmelt abgespeist verloren storniert
-2.0: verschaukelt veräppelt
-2.2: wütend sauer frustriert frustrierend frustration zumutung unverständlich unmöglich
-2.2: empört witz
-2.5: katastrophe katastrophal desaster chaos chaotisch schrecklich furchtbar fürchterlich
-2.6: grauenhaft grauenvoll entsetzlich entsetzt inakzeptabel inkompetent unverschämt
-2.6: stinksauer verarscht
-2.8: frechheit unverschämtheit skandal skandalös betrug betrüger abzocke abgezockt
-3.0: schlimmste schlechteste schlechtesten hass hasse ekelhaft widerlich lächerlich
-1.2: nie niemals vergeblich umsonst endlos stundenlang tagelang wochenlang
"""
)

# Word pairs and triples, matched before single words (longest first). Greetings and letter
# formulas are courtesy, not sentiment: they score zero.
PHRASES: dict[tuple[str, ...], float] = {
    ("immer", "noch"): -1.0,
    ("noch", "immer"): -1.0,
    ("schon", "wieder"): -1.0,
    ("nicht", "mehr"): -0.5,
    ("vielen", "dank"): 2.6,
    ("herzlichen", "dank"): 2.6,
    ("besten", "dank"): 2.3,
    ("ich", "liebe"): 2.8,
    ("gute", "arbeit"): 2.5,
    ("weiter", "so"): 2.4,
    ("keine", "antwort"): -1.8,
    ("keine", "rückmeldung"): -1.8,
    ("keine", "reaktion"): -1.8,
    ("nicht", "erreichbar"): -1.8,
    ("nicht", "angekommen"): -1.8,
    ("nie", "wieder"): -2.5,
    ("kein", "problem"): 1.0,
    ("vielen", "dank", "im", "voraus"): 0.3,
    ("danke", "im", "voraus"): 0.3,
    ("dank", "im", "voraus"): 0.3,
    ("mit", "freundlichen", "grüßen"): 0.0,
    ("freundliche", "grüße"): 0.0,
    ("freundlichen", "grüßen"): 0.0,
    ("beste", "grüße"): 0.0,
    ("besten", "grüßen"): 0.0,
    ("schöne", "grüße"): 0.0,
    ("schönen", "grüßen"): 0.0,
    ("liebe", "grüße"): 0.0,
    ("lieben", "grüßen"): 0.0,
    ("viele", "grüße"): 0.0,
    ("guten", "tag"): 0.0,
    ("guten", "morgen"): 0.0,
    ("guten", "abend"): 0.0,
    ("schönen", "tag"): 0.3,
    ("schönes", "wochenende"): 0.3,
}

# Negators flip (and damp) the valence of a sentiment word up to three tokens after them.
NEGATORS: frozenset[str] = frozenset(
    _words("nicht kein keine keinen keinem keiner keines nie niemals nichts ohne weder kaum")
)

# Degree words scale the next sentiment word.
BOOSTERS: dict[str, float] = {
    **dict.fromkeys(
        _words(
            "sehr total extrem absolut wirklich echt äußerst ausgesprochen besonders richtig "
            "mega voll völlig komplett höchst super unglaublich außerordentlich so dermaßen"
        ),
        0.293,
    ),
    **dict.fromkeys(_words("etwas ziemlich eher leicht bisschen wenig halbwegs teilweise"), -0.293),
}

# After these, what follows weighs more than what came before ("nett, aber …").
CONTRAST: frozenset[str] = frozenset(_words("aber jedoch allerdings trotzdem dennoch"))

# Sentence adverbs and courtesy words carry their own valence but are never what a "nicht"
# negates: in "Das funktioniert leider nicht" the negation belongs to "funktioniert".
NOT_NEGATED: frozenset[str] = frozenset(_words("leider schade endlich danke bitte gerne gern"))
