"""PiiEngine: find personal data in free text (English, German) and redact or pseudonymise it.

Built on Presidio: an ``AnalyzerEngine`` with custos's recognizers (see ``registry.py``) over a
cheap regex tokeniser, then, for English texts whose capitalised words the rules could not
explain, spaCy's NER model; Presidio's ``AnonymizerEngine`` applies the operators. Everything is
built once, on first use, and works offline.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from presidio_analyzer import AnalyzerEngine, RecognizerResult
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import RecognizerResult as AnonymizerInput

from custos.core.errors import ConfigError
from custos.privacy.pii.config import PiiConfig
from custos.privacy.pii.findings import ENTITY_TYPES, PERSON, Finding
from custos.privacy.pii.language import detect_language
from custos.privacy.pii.nlp import TokenNlpEngine, load_ner_pipeline
from custos.privacy.pii.offline import install_offline_tldextract
from custos.privacy.pii.operators import Mode, check_modes, operators
from custos.privacy.pii.recognizers.person_ner import SpacyPersonRecognizer
from custos.privacy.pii.registry import build_registry

if TYPE_CHECKING:
    from spacy.language import Language

# Presidio's debug lines quote words of the analysed text; personal data stays out of logs.
_QUIET_LOGGERS = ("presidio-analyzer", "presidio-anonymizer")


@dataclass
class _Built:
    analyzer: AnalyzerEngine
    anonymizer: AnonymizerEngine
    tokens: TokenNlpEngine
    ner: Language | None
    person_ner: SpacyPersonRecognizer
    entities: dict[str, list[str]]


class PiiEngine:
    """Detects and redacts personal data in English and German free text.

    Build it once and share it (thread-safe); the models load on the first call. ``language``
    is ``"en"``, ``"de"`` or ``"auto"`` (a small offline guess per text).
    """

    def __init__(self, config: PiiConfig | None = None) -> None:
        self.config = config or PiiConfig()
        self._built: _Built | None = None
        self._lock = threading.Lock()
        self._ner_lock = threading.Lock()
        self.ner_runs = 0  # texts the NER model ran on (for benchmarks)

    def __repr__(self) -> str:
        state = "built" if self._built else "not built"
        return (
            f"PiiEngine(languages={list(self.config.languages)}, ner={self.config.ner!r}, {state})"
        )

    def _build(self) -> _Built:
        if self._built is None:
            with self._lock:
                if self._built is None:
                    self._built = self._make()
        return self._built

    def _make(self) -> _Built:
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        install_offline_tldextract()
        languages: list[str] = list(self.config.languages)
        registry = build_registry(languages, self.config)
        context = {word for recognizer in registry.recognizers for word in recognizer.context or ()}
        tokens = TokenNlpEngine(languages, context)
        analyzer = AnalyzerEngine(
            registry=registry,
            nlp_engine=tokens,
            supported_languages=languages,
            context_aware_enhancer=LemmaContextAwareEnhancer(context_matching_mode="whole_word"),
        )
        for recognizer in registry.recognizers:
            recognizer.load()
            recognizer.is_loaded = True
        wanted = self.config.entities or frozenset(ENTITY_TYPES)
        entities = {
            language: sorted(set(analyzer.get_supported_entities(language)) & wanted)
            for language in languages
        }
        use_ner = "en" in languages and self.config.ner != "never" and PERSON in wanted
        return _Built(
            analyzer=analyzer,
            anonymizer=AnonymizerEngine(),  # type: ignore[no-untyped-call]
            tokens=tokens,
            ner=load_ner_pipeline() if use_ner else None,
            person_ner=SpacyPersonRecognizer("en", self.config.deny_list),
            entities=entities,
        )

    def _language(self, text: str, language: str) -> str:
        served = self.config.languages
        if language == "auto":
            guess = detect_language(text, default=served[0])
            return guess if guess in served else served[0]
        chosen = language
        if chosen not in served:
            raise ConfigError(
                f"language {chosen!r} is not served by this engine",
                hint=f"use one of {', '.join(served)} or 'auto'",
            )
        return chosen

    def analyze(self, text: str, language: str = "auto") -> list[Finding]:
        """The personal data found in ``text``, in text order, without overlaps."""
        return self.analyze_many([text], language)[0]

    def analyze_many(
        self, texts: Sequence[str], language: str = "auto", batch_size: int = 64
    ) -> list[list[Finding]]:
        """``analyze`` over many texts; the NER model then runs in batches (faster)."""
        built = self._build()
        languages = [self._language(text, language) for text in texts]
        candidates = [
            self._rule_findings(built, text, lang)
            for text, lang in zip(texts, languages, strict=True)
        ]
        results = [self._resolve(found) for found in candidates]
        if built.ner is not None:
            todo = [
                i
                for i, (text, lang) in enumerate(zip(texts, languages, strict=True))
                if lang == "en"
                and (
                    self.config.ner == "always"
                    or built.person_ner.needs_model(
                        text, [(f.start, f.end) for f in results[i]], built.ner.vocab.strings
                    )
                )
            ]
            self.ner_runs += len(todo)
            for i, found in zip(
                todo, self._ner_findings(built, [texts[i] for i in todo], batch_size), strict=True
            ):
                results[i] = self._resolve(candidates[i] + found)
        return results

    def _rule_findings(self, built: _Built, text: str, language: str) -> list[Finding]:
        if not built.entities[language]:
            return []
        results = built.analyzer.analyze(
            text,
            language=language,
            entities=built.entities[language],
            nlp_artifacts=built.tokens.process_text(text, language),
            score_threshold=0.0,
        )
        return self._kept(text, results)

    def _ner_findings(
        self, built: _Built, texts: list[str], batch_size: int
    ) -> list[list[Finding]]:
        if built.ner is None or not texts:
            return [[] for _ in texts]
        found = []
        # A memory zone frees the strings spaCy interns for each text once the batch is done;
        # zones are not thread-safe, so one batch runs at a time.
        with self._ner_lock, built.ner.memory_zone():
            for text, doc in zip(texts, built.ner.pipe(texts, batch_size=batch_size), strict=True):
                artifacts = NlpArtifacts(
                    entities=list(doc.ents),
                    tokens=doc,
                    tokens_indices=[token.idx for token in doc],
                    lemmas=[],
                    nlp_engine=built.tokens,
                    language="en",
                )
                found.append(self._kept(text, built.person_ner.analyze(text, [PERSON], artifacts)))
        return found

    def _kept(self, text: str, results: Iterable[RecognizerResult]) -> list[Finding]:
        """Results as findings, less deny-listed words and scores under their threshold."""
        config = self.config
        wanted = config.entities
        return [
            Finding(
                r.entity_type,
                r.start,
                r.end,
                round(r.score, 3),
                str((r.recognition_metadata or {}).get(RecognizerResult.RECOGNIZER_NAME_KEY, "")),
            )
            for r in results
            if r.score >= config.threshold(r.entity_type)
            and (wanted is None or r.entity_type in wanted)
            and not config.denied(text[r.start : r.end])
        ]

    @staticmethod
    def _resolve(found: list[Finding]) -> list[Finding]:
        """One finding per stretch of text: a span inside a longer one of another type gives way
        to it (a name inside an address); otherwise the higher score, then the longer span, wins."""
        unique = sorted(set(found), key=lambda f: (-f.score, -f.length, f.start, f.entity_type))
        outer = [
            f
            for f in unique
            if not any(
                g.entity_type != f.entity_type and g.contains(f) and g.length > f.length
                for g in unique
            )
        ]
        kept: list[Finding] = []
        for finding in outer:
            if not any(finding.overlaps(k) for k in kept):
                kept.append(finding)
        return sorted(kept, key=lambda f: f.start)

    def redact(
        self,
        text: str,
        language: str = "auto",
        mode: Mode = "redact",
        key: bytes | None = None,
        per_entity: Mapping[str, Mode] | None = None,
        *,
        findings: list[Finding] | None = None,
    ) -> str:
        """``text`` with each finding replaced: ``<PHONE>`` (redact), ``<PHONE_3f9a1c2b7d4e>``
        (pseudonymise: HMAC-SHA256 under ``key``, which is used for this call only and never
        stored) or left as it is (keep). ``per_entity`` sets the mode of single entity types;
        ``findings`` (of :meth:`analyze` on this text) saves analysing it again."""
        check_modes(mode, key, per_entity)
        built = self._build()
        if findings is None:
            findings = self.analyze(text, language)
        if not findings:
            return text
        configs = operators({f.entity_type for f in findings}, mode, key, per_entity)
        results = [AnonymizerInput(f.entity_type, f.start, f.end, f.score) for f in findings]
        return built.anonymizer.anonymize(text, results, configs).text

    def scan(self, text: str, language: str = "auto") -> dict[str, int]:
        """How many findings of each entity type ``text`` holds (no positions, no values)."""
        return dict(Counter(f.entity_type for f in self.analyze(text, language)))

    def supported_entities(self, language: str) -> list[str]:
        """The entity types reported for ``language``."""
        built = self._build()
        if language not in built.entities:
            raise ConfigError(f"language {language!r} is not served by this engine")
        return list(built.entities[language])
