"""The schema of the store, as SQLAlchemy Core tables (the current head of the migrations).

Person fields are kept twice: verbatim in ``raw_records.payload`` (provenance) and normalised in
``records``/``interactions`` (what identity resolution and every reader uses).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)

from custos.core.fields import PERSON_COLUMNS, STRONG_IDENTIFIERS


def utc_text(at: datetime) -> str:
    """A time as text: UTC ISO 8601 with microseconds and ``Z``, sortable (naive = UTC)."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Timestamp(TypeDecorator[datetime]):
    """An aware UTC timestamp: ``timestamptz`` on PostgreSQL, sortable ISO-8601 text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        """Pick the column type per backend."""
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        """Store UTC; naive datetimes are taken to be UTC."""
        if value is None:
            return None
        if dialect.name == "sqlite":
            return utc_text(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return aware UTC datetimes on both backends."""
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)  # stored with "Z": already UTC
        assert isinstance(value, datetime)
        if value.tzinfo is UTC:
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

Id = BigInteger().with_variant(Integer(), "sqlite")

sources = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    # What a collected call's user id is (see custos.service.keys.USER_ID_FIELDS); NULL:
    # customer_id, the default.
    Column("user_id_field", String(20), nullable=True),
)

raw_records = Table(
    "raw_records",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),
    Column("source_id", Integer, ForeignKey("sources.id"), nullable=False),
    Column("record_id", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("file_name", Text),
    Column("line_no", Integer),
    Column("payload", Text, nullable=False),
    Column("ingested_at", Timestamp(), nullable=False),
    UniqueConstraint("source_id", "record_id", name="uq_raw_records_source_record"),
)


def _person() -> list[Column[str]]:
    """The normalised person columns (see :data:`custos.core.fields.FIELDS`)."""
    return [Column(name, Text) for name in PERSON_COLUMNS]


records = Table(
    "records",
    metadata,
    Column("raw_id", Id, ForeignKey("raw_records.id"), primary_key=True, autoincrement=False),
    Column("source_id", Integer, ForeignKey("sources.id"), nullable=False),
    *_person(),
    Column("extra", Text),
    Column("observed_at", Timestamp(), nullable=False),
    # An ambiguous date of birth (03/04/1982) is not guessed: its readings, ISO dates separated
    # by a space, wait here while date_of_birth stays empty.
    Column("date_of_birth_candidates", Text),
)

interactions = Table(
    "interactions",
    metadata,
    Column("raw_id", Id, ForeignKey("raw_records.id"), primary_key=True, autoincrement=False),
    Column("source_id", Integer, ForeignKey("sources.id"), nullable=False),
    Column("timestamp", Timestamp()),
    Column("channel", String(50)),
    Column("text", Text),
    Column("language", String(20)),
    # A note that names a health matter: the whole text (``text`` has the health terms
    # replaced), category health in the taxonomy, so only purposes allowed health data see it.
    Column("health_text", Text),
    *_person(),
    Column("extra", Text),
    Column("observed_at", Timestamp(), nullable=False),
    Column("date_of_birth_candidates", Text),
)

consent_events = Table(
    "consent_events",
    metadata,
    Column("id", Id, primary_key=True),
    Column("source_id", Integer, ForeignKey("sources.id"), nullable=False),
    Column("event_key", String(64), nullable=False, unique=True),
    Column("record_id", String(200)),
    *(Column(name, Text) for name in STRONG_IDENTIFIERS),
    Column("purpose", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("timestamp", Timestamp(), nullable=False),
    Column("method", String(50)),
    Column("notice_version", String(100)),
    Column("expires_at", Timestamp()),
    Column("evidence", Text),
    Column("explicit", Boolean, nullable=False, server_default=false()),
    Column("profile_id", String(40)),
    Column("file_name", Text),
    Column("line_no", Integer),
    Column("payload", Text, nullable=False),
    Column("ingested_at", Timestamp(), nullable=False),
)

source_columns = Table(
    "source_columns",
    metadata,
    Column("source_id", Integer, ForeignKey("sources.id"), primary_key=True),
    Column("column", String(200), primary_key=True),
    Column("category", String(50), nullable=False),
)

store_meta = Table(
    "store_meta",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

# Materialised consent state per purpose and profile: derived from the ledger and the identity
# graph, never the truth itself. consent_state_marks says up to which ledger event and for which
# graph version it was computed; readers check that against their snapshot and fill in the rest.
consent_states = Table(
    "consent_states",
    metadata,
    Column("purpose", String(100), primary_key=True),
    Column("profile_id", String(40), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("explicit", Boolean, nullable=False),
    Column("since", Timestamp()),
    Column("recheck_at", Timestamp()),
)

consent_state_marks = Table(
    "consent_state_marks",
    metadata,
    Column("purpose", String(100), primary_key=True),
    Column("last_event_id", BigInteger, nullable=False),
    Column("graph_version", String(64), nullable=False),
    Column("computed_at", Timestamp(), nullable=False),
)

profiles = Table(
    "profiles",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("merged_into", String(40)),
    Column("created_at", Timestamp(), nullable=False),
    Column("updated_at", Timestamp(), nullable=False),
)

profile_members = Table(
    "profile_members",
    metadata,
    Column("raw_id", Id, ForeignKey("raw_records.id"), primary_key=True, autoincrement=False),
    Column("profile_id", String(40), ForeignKey("profiles.id"), nullable=False),
    Column("linked_at", Timestamp(), nullable=False),
)

# Collected calls stored before their device was identified (an anonymous id, no user id): an
# identify or alias that names that anonymous id later gives them its user id.
collect_pending = Table(
    "collect_pending",
    metadata,
    Column("anonymous_id", String(200), primary_key=True),
    Column("raw_id", Id, ForeignKey("raw_records.id"), primary_key=True, autoincrement=False),
    # the call's consent restrictions (JSON), recorded for the person once a verified identify
    # names the device (see custos.service.collect_consent.record_pending)
    Column("signals", Text, nullable=True),
)

# Rows that changed after they were stored (an anonymous call that got its user id): the next
# incremental resolution considers them again, whatever their id.
identity_recheck = Table(
    "identity_recheck",
    metadata,
    Column("raw_id", Id, ForeignKey("raw_records.id"), primary_key=True, autoincrement=False),
)

# The words of each interaction's text that may be record ids (``loading.quoted_ids``): an
# index identity resolution keeps, so that an order arriving today finds the older call notes
# that quote its number. A hint, never evidence: the text decides (a stale row costs a look).
interaction_quotes = Table(
    "interaction_quotes",
    metadata,
    Column("raw_id", Id, ForeignKey("raw_records.id"), primary_key=True, autoincrement=False),
    Column("word", Text, primary_key=True),
    Index("ix_interaction_quotes_word", "word"),
)

# Earlier versions of a record or interaction: a row re-ingested under its record id with other
# values replaces the current one (raw_records and records/interactions keep the newest) and
# the one it replaces lands here, verbatim and normalised (JSON of the non-empty fields), for
# provenance and data-subject access. Erased with the record.
record_versions = Table(
    "record_versions",
    metadata,
    Column("raw_id", Id, ForeignKey("raw_records.id"), primary_key=True, autoincrement=False),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("file_name", Text),
    Column("line_no", Integer),
    Column("payload", Text, nullable=False),
    Column("fields", Text, nullable=False),
    Column("ingested_at", Timestamp(), nullable=False),
    Column("superseded_at", Timestamp(), nullable=False),
)

# The golden record of each profile: one JSON document (see custos.store.golden).
profile_golden = Table(
    "profile_golden",
    metadata,
    Column("profile_id", String(40), ForeignKey("profiles.id"), primary_key=True),
    Column("document", Text, nullable=False),
    sqlite_with_rowid=False,  # one B-tree keyed by the profile id
)

profile_identifiers = Table(
    "profile_identifiers",
    metadata,
    Column("kind", String(30), primary_key=True),
    Column("value", Text, primary_key=True),
    Column("profile_id", String(40), ForeignKey("profiles.id"), primary_key=True),
    sqlite_with_rowid=False,
)

merge_evidence = Table(
    "merge_evidence",
    metadata,
    Column("id", Id, primary_key=True),
    Column("profile_id", String(40), ForeignKey("profiles.id"), nullable=False),
    Column("left_raw_id", Id, ForeignKey("raw_records.id"), nullable=False),
    Column("right_raw_id", Id, ForeignKey("raw_records.id"), nullable=False),
    Column("rule", String(50), nullable=False),
    Column("weight", Text),
    Column("detail", Text),  # JSON: match weight per compared field, for probabilistic links
    Column("created_at", Timestamp(), nullable=False),
)

# Trained probabilistic matching models, one row per version: Splink's settings JSON (m and u
# probabilities, the prior, comparisons and blocking rules) and the term frequencies of the
# fields with frequency adjustments. A run reuses the newest model of the current design.
match_models = Table(
    "match_models",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("design", String(20), nullable=False),
    Column("trained_at", Timestamp(), nullable=False),
    Column("trained_on", Integer, nullable=False),
    Column("threshold", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("term_frequencies", Text, nullable=False),
)

profile_events = Table(
    "profile_events",
    metadata,
    Column("id", Id, primary_key=True),
    Column("at", Timestamp(), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(30), nullable=False),
    Column("profile_id", String(40), nullable=False),
    Column("other_profile_id", String(40)),
    Column("reason", Text, nullable=False),
)

# Decisions people made about the identity graph: "apart" (an unmerge: these two records are
# different people) and "together" (a forced merge). Resolution obeys the latest decision per
# pair, on every run, so an unmerge is never undone by the next import.
identity_decisions = Table(
    "identity_decisions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("decision", String(20), nullable=False),
    Column("left_raw_id", Id, ForeignKey("raw_records.id"), nullable=False),
    Column("right_raw_id", Id, ForeignKey("raw_records.id"), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", Timestamp(), nullable=False),
)

# Pairs that resolution scored but did not link, kept for people to review and for consent to
# act on conservatively: "possible" (a match weight between possible_match and match_threshold,
# or a link that lacked person-level evidence) and "conflict" (a link the household evidence
# would have made, refused because the two records show two persons). Rewritten by every full
# resolution; an incremental one adds the pairs it scores.
identity_candidates = Table(
    "identity_candidates",
    metadata,
    Column("id", Id, primary_key=True),
    Column("left_raw_id", Id, ForeignKey("raw_records.id"), nullable=False),
    Column("right_raw_id", Id, ForeignKey("raw_records.id"), nullable=False),
    Column("status", String(20), nullable=False),
    Column("weight", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("detail", Text),  # JSON: match weight per compared field
    Column("created_at", Timestamp(), nullable=False),
    Index("ix_identity_candidates_left", "left_raw_id"),
    Index("ix_identity_candidates_right", "right_raw_id"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Id, primary_key=True),
    Column("row_key", String(64), nullable=False, unique=True),
    Column("source_id", Integer, ForeignKey("sources.id"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("file_name", Text),
    Column("line_no", Integer),
    Column("record_id", String(200)),
    Column("field", String(100)),
    Column("reason", Text, nullable=False),
    Column("fix", Text),
    Column("raw", Text),
    Column("created_at", Timestamp(), nullable=False),
    # True: the row was stored, and this entry lists a field left out of it (or consent it
    # carried that could not be read), not a row that waits.
    Column("left_out", Boolean, nullable=False, server_default=false()),
    # Set when the row later lands (same source and record id, or re-read from the quarantine):
    # the entry is worked off; open entries are those without it.
    Column("closed_at", Timestamp()),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True),
    Column("at", Timestamp(), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(50), nullable=False),
    Column("purpose", String(100)),
    Column("subjects", Text),
    Column("detail", Text),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# Data-subject requests (GDPR Art. 15-20): one row per request, with the state of each step so a
# failed step can be run again. Ids and counts only, never a value of the person.
dsr_requests = Table(
    "dsr_requests",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("profile_id", String(40), nullable=False),
    Column("state", String(20), nullable=False),
    Column("steps", Text, nullable=False),  # JSON: [{name, state, at, detail}]
    Column("result", Text),  # JSON: files written, the erasure receipt, …
    Column("actor", String(200), nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    Column("updated_at", Timestamp(), nullable=False),
)

# What an erasure leaves behind so the person does not come back with the next import: a keyed
# hash (HMAC with the secret key, which lives outside the store) of each identifier, never the
# value.
suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", String(30), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("request_id", Id, nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    UniqueConstraint("kind", "digest", name="uq_suppressions_kind_digest"),
)

# Profiles whose processing is restricted (GDPR Art. 18): the guard refuses every purpose except
# those on legal obligation.
restrictions = Table(
    "restrictions",
    metadata,
    Column("profile_id", String(40), primary_key=True),
    Column("since", Timestamp(), nullable=False),
    Column("reason", Text, nullable=False),
    Column("request_id", Id, nullable=False),
)

# Sentiment of interaction texts (derived data): one row per interaction, with the engine and
# version that produced it, so a model change re-scores. Erased with the interaction.
interaction_sentiment = Table(
    "interaction_sentiment",
    metadata,
    Column("raw_id", Id, ForeignKey("raw_records.id"), primary_key=True, autoincrement=False),
    Column("engine", String(50), nullable=False),
    Column("engine_version", String(50), nullable=False),
    Column("label", String(20), nullable=False),
    Column("p_negative", Float),
    Column("p_neutral", Float),
    Column("p_positive", Float),
    Column("score", Float),
    Column("language", String(20), nullable=False),
    Column("scored_at", Timestamp(), nullable=False),
    # the probability of the label (calibrated where the engine is); below
    # CUSTOS_SENTIMENT_MIN_CONFIDENCE the label reads ``uncertain``
    Column("confidence", Float),
)

# Sentiment heads a company trained on its own labelled texts (``custos insight train``), one
# row per version: what it was trained on (counts per class and language), its cross-validated
# metrics, and the head itself (an .npz file). The newest active one scores; none active: the
# shipped head. No texts and no persons, only the fitted weights.
sentiment_heads = Table(
    "sentiment_heads",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("created_at", Timestamp(), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("trained_on", Text, nullable=False),  # JSON
    Column("metrics", Text, nullable=False),  # JSON
    Column("head", LargeBinary, nullable=False),
)

# Named, rule-based segments (the rule language of custos.insight.segments, never SQL).
segments = Table(
    "segments",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("rule", Text, nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    Column("created_by", String(200), nullable=False),
)

# Look-ups by identifier go through profile_identifiers (rebuilt by each resolution), so that
# bulk ingestion does not maintain secondary indexes on the records themselves.
Index("ix_profile_members_profile", profile_members.c.profile_id)
Index("ix_profile_identifiers_profile", profile_identifiers.c.profile_id)
Index("ix_merge_evidence_profile", merge_evidence.c.profile_id)
Index("ix_quarantine_source", quarantine.c.source_id)
Index("ix_quarantine_record", quarantine.c.source_id, quarantine.c.record_id)
Index("ix_consent_events_email", consent_events.c.email)
Index("ix_consent_events_purpose", consent_events.c.purpose, consent_events.c.id)
Index("ix_consent_events_phone", consent_events.c.phone)
Index("ix_consent_events_customer_id", consent_events.c.customer_id)
Index("ix_consent_events_social_handle", consent_events.c.social_handle)
Index("ix_consent_events_profile", consent_events.c.profile_id)
Index("ix_profiles_merged_into", profiles.c.merged_into)
#: The condition of the double-surname indexes: identity reads a name given whole ("Malte Grein
#: Groth") with the double surname that a record gives in its own column, and a partial load
#: (an incremental run) asks the store for those; a few rows have one.
DOUBLE_SURNAME = "last_name_key LIKE '% %'"
Index(
    "ix_records_double_surname",
    records.c.last_name_key,
    sqlite_where=text(DOUBLE_SURNAME),
    postgresql_where=text(DOUBLE_SURNAME),
)
Index(
    "ix_interactions_double_surname",
    interactions.c.last_name_key,
    sqlite_where=text(DOUBLE_SURNAME),
    postgresql_where=text(DOUBLE_SURNAME),
)
Index("ix_consent_states_recheck", consent_states.c.purpose, consent_states.c.recheck_at)
Index("ix_dsr_requests_profile", dsr_requests.c.profile_id)

# API keys of the REST and collection API: only a SHA-256 hash of each key is kept (the key is
# shown once), with its scope (read, write or admin) and the purposes its reads are bound to.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("prefix", String(20), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("scope", String(10), nullable=False),
    Column("purposes", Text, nullable=False),  # JSON list of purpose names
    Column("created_at", Timestamp(), nullable=False),
    Column("revoked_at", Timestamp()),
)

# Anonymous ids of collected events (Segment's anonymousId) and the user id an identify or alias
# call tied them to, so later anonymous events carry the user's id as their customer id.
collect_aliases = Table(
    "collect_aliases",
    metadata,
    Column("anonymous_id", String(200), primary_key=True),
    Column("user_id", String(200), nullable=False),
    Column("linked_at", Timestamp(), nullable=False),
)

# The register of de-identified releases (one row per release written, never per refusal): what
# each release let out, so the next release of the purpose is checked against it. Profile ids
# only (zlib + base64), never a value of a person.
releases = Table(
    "releases",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("purpose", String(100), nullable=False, index=True),
    Column("created_at", Timestamp(), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("linkable", Boolean, nullable=False),
    Column("quasi_identifiers", Text, nullable=False),  # JSON list
    Column("sensitive", Text, nullable=False),  # JSON list
    Column("generalisation", Text, nullable=False),  # JSON: column → {operator, level, shown}
    Column("k", Integer, nullable=False),
    Column("l", Integer, nullable=False),
    Column("reference_date", String(10), nullable=False),
    Column("persons", Integer, nullable=False),
    Column("suppressed", Integer, nullable=False),
    Column("persons_z", Text, nullable=False),  # released profile ids, zlib + base64
    Column("suppressed_z", Text, nullable=False),  # suppressed profile ids, zlib + base64
    # rows (k-anonymous extract) or aggregate (noisy counts, ε of the purpose's budget)
    Column("kind", String(20), nullable=False, server_default="rows"),
    Column("epsilon", Float, nullable=True),
)
