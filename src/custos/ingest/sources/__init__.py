"""Sources that are no files: each maps what it receives to rows for the ingestion sink."""
