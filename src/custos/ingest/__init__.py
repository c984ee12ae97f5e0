"""custos.ingest."""
