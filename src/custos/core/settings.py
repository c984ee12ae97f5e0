"""Typed settings, read once (environment variables ``CUSTOS_*``) and passed down explicitly."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DB_URL = "sqlite:///custos.db"


class Settings(BaseSettings):
    """Everything custos can be configured with; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="CUSTOS_", extra="ignore")

    db: str = Field(
        default=DEFAULT_DB_URL,
        description="Store URL: a SQLite file path or URL, or a postgresql:// URL.",
    )
    default_region: str | None = Field(
        default=None,
        description="Region (ISO 3166 alpha-2) for phone numbers written without a country code "
        "when neither the row (its country) nor the map file (phone_region) names one. Unset "
        "(the default), such a number is never given a country: it is kept as its national "
        "digits and compared on them.",
    )
    batch_size: int = Field(
        default=10000, ge=1, description="Rows per ingestion batch (one transaction each)."
    )
    workers: int = Field(
        default=0,
        ge=0,
        description="Processes that normalise rows in parallel; 0 picks one per CPU core for "
        "large files and none for small ones.",
    )
    max_persons_per_identifier: int = Field(
        default=3,
        ge=1,
        description="An identifier (e.g. a family phone) carried by records of more distinct "
        "persons than this is ignored for linking and reported.",
    )
    max_records_per_identifier: int = Field(
        default=200,
        ge=2,
        description="An identifier seen on more records than this is ignored for linking and "
        "reported (a shop's placeholder e-mail, a call-centre's own number).",
    )
    resolve_rows_in_memory: int = Field(
        default=2_000_000,
        ge=0,
        description="A full resolution of at most this many records and interactions keeps "
        "their rows in memory for the golden records (about 0.5 GB per million); a larger one "
        "reads them again from the store, a batch at a time (less memory, a slower write).",
    )
    probabilistic_matching: bool = Field(
        default=True,
        description="Link records by names, date of birth and address with a trained "
        "Fellegi-Sunter model (Splink) besides exact identifiers.",
    )
    match_threshold: float = Field(
        default=2.0,
        description="Match weight (log2 odds) from which a probabilistic link joins two records; "
        "higher trades recall for precision.",
    )
    possible_match: float = Field(
        default=-5.0,
        description="Match weight from which a pair that is not linked counts as a possible "
        "match: it waits in the review queue (custos profile review), and withdrawals, "
        "objections, restrictions and erasure suppression of either side act on the other "
        "(grants never do). Lower is more conservative.",
    )
    training_sample: int = Field(
        default=150_000,
        ge=1000,
        description="Records drawn at random to train the matching model when there are more.",
    )
    engine: Literal["duckdb", "spark"] = Field(
        default="duckdb",
        description="Where a full resolution scores candidate pairs: DuckDB in process, or "
        "Apache Spark (pip install 'custos[spark]', Java 17). Attaching new records "
        "(incremental resolution) always scores in process.",
    )
    duckdb_memory_limit: str = Field(
        default="1GB",
        pattern=r"^\d+(\.\d+)?\s*(MB|GB|TB|MiB|GiB|TiB)$",
        description="Memory DuckDB may use while a full resolution scores pairs in process "
        "(engine=duckdb); past it, DuckDB spills to disk. Raise it for millions of records "
        "where the machine has room: at 3 million, 4GB scored in half the time of 1GB.",
    )
    spark_master: str = Field(
        default="local[2]",
        description="Spark master URL for engine=spark: local[N] (N cores of this machine), "
        "spark://host:7077, yarn, k8s://...",
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict,
        description='Extra Spark settings for engine=spark, as JSON (e.g. {"spark.executor.'
        'memory": "8g"}); custos sets the UI off, 8 shuffle partitions and 4g driver memory '
        "unless given here.",
    )
    engine_location: str | None = Field(
        default=None,
        description="Where engine=spark writes the snapshot and scored pairs (Parquet) and a "
        "run's work: a local path for local[N], a path or Hadoop URI (hdfs://, s3a://) that "
        "driver and executors share for a cluster. Unset: a folder in the system's "
        "temporary directory.",
    )
    pii_policy: Literal["redact", "pseudonymise", "keep"] = Field(
        default="redact",
        description="What ingestion does with free text (call notes, posts, comments) when "
        "neither --pii nor the map file says: replace personal data with its type (redact), "
        "with a keyed pseudonym (pseudonymise), or keep it.",
    )
    bad_fields: Literal["quarantine", "implausible", "drop"] = Field(
        default="drop",
        description="A row whose e-mail, phone, birth date, social handle or country (or an "
        "interaction's timestamp) cannot be read or cannot be true: 'drop' (default): store "
        "the row without that field; 'implausible': that only when the value reads but cannot "
        "be true (a birth date before 1900 or in the future, a phone number of impossible "
        "length), quarantine the row when the value cannot be read at all; 'quarantine': "
        "quarantine the whole row either way. A left-out field is listed with the quarantine "
        "(reason and fix); the row as received keeps it. Rows without a record id or unreadable "
        "as a whole are always quarantined, and so are consent events without purpose, status "
        "or time, or without any identifier left.",
    )
    sentiment_engine: str = Field(
        default="e5-head",
        description="The sentiment engine of `insight score` and of analyses that find texts "
        "not scored yet: e5-head (accurate) or lexicon (fast).",
    )
    sentiment_min_confidence: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Below this probability of its label a text's sentiment reads 'uncertain' "
        "(its score stays); trends, impact, moods and segments leave uncertain texts out. "
        "0 abstains never.",
    )
    sentiment_language: Literal["en", "de"] | None = Field(
        default=None,
        description="The language (en or de) a text is scored in when neither its record "
        'states one nor the text shows any ("Super Bowl"); unset: such texts are unknown.',
    )
    source_priority: list[str] = Field(
        default_factory=list,
        description="Sources in order of trust for the golden record (first wins); sources not "
        "listed come after, by recency.",
    )
    taxonomy: str | None = Field(
        default=None,
        description="A YAML file that extends or overrides the shipped taxonomy of purposes and "
        "data categories.",
    )
    purpose: str = Field(
        default="customer_service",
        description="The purpose the CLI reads under when a command takes --purpose and none is "
        "given (exports always need --purpose).",
    )
    golden_rule: str = Field(
        default="priority",
        pattern="^(priority|recent|frequent)$",
        description="How a golden attribute is chosen: priority (source priority, then most "
        "recent), recent (most recent), or frequent (most frequent value, then most recent).",
    )
    secret_key_file: str = Field(
        default="~/.config/custos/secret.key",
        description="The secret key (32 random bytes, hex) behind the keyed hashes of erased "
        "persons' identifiers and the pseudonyms of de-identified releases; kept outside the "
        "store and created with mode 0600 on first use.",
    )
    audit_key_file: str | None = Field(
        default=None,
        description="The key (32 random bytes, hex) behind the audit log's keyed hashes and its "
        "signed checkpoints; kept outside the store, created with mode 0600 on first use. "
        "Unset: audit.key beside the secret key file.",
    )
    audit_checkpoint_file: str | None = Field(
        default=None,
        description="Where the head of the audit log (newest entry id and hash, signed with "
        "the audit key) is kept, outside the store; it only moves forward. Unset: a file named "
        "after the store (a hash of its URL) in the folder audit/ beside the audit key.",
    )
    retention_policy: str = Field(
        default="The controller has not stated a retention period: personal data is kept until "
        "the person asks for erasure or the controller deletes it; the audit log keeps profile "
        "ids only.",
        description="How long personal data is kept, or the criteria that decide it (GDPR Art. "
        "15(1)(d)); stated in every access report.",
    )
    release_epsilon_budget: float = Field(
        default=3.0,
        gt=0,
        description="The privacy budget of each purpose: the total ε its aggregate releases "
        "(custos release --aggregate) may spend; a release that would exceed it is refused.",
    )
    collect_max_event_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        le=4 * 1024 * 1024,
        description="The largest single call of a Segment client (bytes of JSON, after gzip "
        "decompression; Segment's limit is 32 KB): a larger call in a batch is quarantined "
        "alone, a larger single call is answered 400. RudderStack clients' calls may fill the "
        "request.",
    )
    collect_segment_max_batch_bytes: int = Field(
        default=500 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="The largest request of a Segment client (bytes, after gzip decompression; "
        "Segment's limit is 500 KB); a larger one is answered 413.",
    )
    collect_max_batch_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="The largest request body the collection API reads from any client (bytes, "
        "as sent and after gzip decompression; RudderStack's gateway takes 4 MB); a larger one "
        "is answered 413 before it is read whole.",
    )
    collect_max_concurrent: int = Field(
        default=16,
        ge=1,
        description="Collection requests served at once; more are answered 429 with Retry-After.",
    )
    api_page_size: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="Default page size of the REST API's lists (a request may ask for up to 1000).",
    )
    api_max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        le=4 * 1024 * 1024,
        description="The largest request body of the other REST routes (profiles, data-subject "
        "requests, review); a larger one is answered 413 before it is read whole.",
    )
    api_body_timeout: float = Field(
        default=15.0,
        gt=0,
        description="Seconds a client has to send a request's whole body, from the end of its "
        "headers; a slower one is answered 408 and disconnected.",
    )
    api_header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a connection of `custos serve` has to send a request's headers "
        "(after it opens, or after the previous answer on it); then it is closed.",
    )
    api_max_uploads_per_client: int = Field(
        default=8,
        ge=1,
        description="Request bodies one client address may be sending at once (per server "
        "process); another is answered 429 with Retry-After, unread.",
    )
    api_penalty_seconds: float = Field(
        default=10.0,
        ge=0,
        description="Seconds a client address that sent three oversized or late bodies within "
        "that time has each new connection held unread, then closed unanswered (0: never).",
    )
    api_max_connections: int = Field(
        default=1000,
        ge=1,
        description="Connections (and requests) one `custos serve` process holds at once; past "
        "it, new requests are answered 503.",
    )
