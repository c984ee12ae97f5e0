"""custos.privacy."""
