"""English street addresses: house number, street name and suffix, optional unit and city line.

Street suffixes are the USPS standard suffixes (Publication 28) and their common abbreviations.
"""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern

from custos.privacy.pii.findings import ADDRESS
from custos.privacy.pii.recognizers.base import RulePatternRecognizer

SUFFIXES = (
    "Alley", "Avenue", "Branch", "Bridge", "Brook", "Brooks", "Burg", "Burgs", "Bypass", "Camp",
    "Canyon", "Cape", "Causeway", "Center", "Centers", "Circle", "Circles", "Cliff", "Cliffs",
    "Club", "Common", "Corner", "Corners", "Course", "Court", "Courts", "Cove", "Coves",
    "Creek", "Crescent", "Crest", "Crossing", "Crossroad", "Curve", "Dale", "Dam", "Divide",
    "Drive", "Drives", "Estate", "Estates", "Expressway", "Extension", "Extensions", "Fall",
    "Falls", "Ferry", "Field", "Fields", "Flat", "Flats", "Ford", "Fords", "Forest", "Forge",
    "Forges", "Fork", "Forks", "Fort", "Freeway", "Garden", "Gardens", "Gateway", "Glen",
    "Glens", "Green", "Greens", "Grove", "Groves", "Harbor", "Harbors", "Haven", "Heights",
    "Highway", "Hill", "Hills", "Hollow", "Inlet", "Island", "Islands", "Isle", "Junction",
    "Junctions", "Key", "Keys", "Knoll", "Knolls", "Lake", "Lakes", "Land", "Landing", "Lane",
    "Light", "Lights", "Loaf", "Lock", "Locks", "Lodge", "Loop", "Mall", "Manor", "Manors",
    "Meadow", "Meadows", "Mews", "Mill", "Mills", "Mission", "Motorway", "Mount", "Mountain",
    "Mountains", "Neck", "Orchard", "Oval", "Overpass", "Park", "Parks", "Parkway", "Parkways",
    "Pass", "Passage", "Path", "Pike", "Pine", "Pines", "Place", "Plain", "Plains", "Plaza",
    "Point", "Points", "Port", "Ports", "Prairie", "Radial", "Ramp", "Ranch", "Rapid", "Rapids",
    "Rest", "Ridge", "Ridges", "River", "Road", "Roads", "Route", "Row", "Rue", "Run", "Shoal",
    "Shoals", "Shore", "Shores", "Skyway", "Spring", "Springs", "Spur", "Spurs", "Square",
    "Squares", "Station", "Stravenue", "Stream", "Street", "Streets", "Summit", "Terrace",
    "Throughway", "Trace", "Track", "Trafficway", "Trail", "Tunnel", "Turnpike", "Underpass",
    "Union", "Unions", "Valley", "Valleys", "Via", "Viaduct", "View", "Views", "Village",
    "Villages", "Ville", "Vista", "Walk", "Walks", "Wall", "Way", "Ways", "Well", "Wells", "St",
    "Ave", "Av", "Rd", "Blvd", "Boulevard", "Dr", "Ln", "Ct", "Pl", "Sq", "Hwy", "Pkwy", "Ter",
    "Cir", "Trl", "Expy", "Fwy", "Crt", "Cres", "Gdns"
)  # fmt: skip

_SUFFIX = "|".join(sorted(set(SUFFIXES), key=len, reverse=True))
_STREET = (
    r"(?<![\w.,/-])\d{1,6}[A-Za-z]?(?:-\d{1,4})?[ ]"
    r"(?:(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\.?[ ])?"
    r"(?:(?:[A-Z][A-Za-z'’-]*\.?|\d{1,3}(?:st|nd|rd|th))[ ]){1,3}?"
    rf"(?:{_SUFFIX})\b\.?"
    r"(?:[ ](?:NE|NW|SE|SW|N|S|E|W)\b)?"
    r"(?:,?[ ](?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Fl\.?|Floor|Room|Rm\.?|\#)[ ]?[A-Za-z0-9-]{1,6}\b)?"
)
_CITY_STATE_ZIP = r",[ ]?(?:[A-Z][A-Za-z'.-]*[ ]?){1,4},?[ ][A-Z]{2}[ ]\d{5}(?:-\d{4})?(?!\d)"
_CITY_UK_POSTCODE = r",[ ]?(?:[A-Z][A-Za-z'.-]*[ ]?){1,3},?[ ]?[A-Z]{1,2}\d[A-Z\d]?[ ]?\d[A-Z]{2}\b"


class EnglishAddressRecognizer(RulePatternRecognizer):
    """``79402 Peterson Drives Apt. 511, Davisstad, PA 35172``; ``221B Baker Street, London NW1 6XE``."""

    ENTITY = ADDRESS
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern("street, city, state, zip", _STREET + _CITY_STATE_ZIP, 0.85),
        Pattern("street, city, uk postcode", _STREET + _CITY_UK_POSTCODE, 0.85),
        Pattern("street", _STREET, 0.6),
    ]
    CONTEXT: ClassVar[list[str]] = ["address", "lives", "moved", "ship", "deliver", "billing"]
