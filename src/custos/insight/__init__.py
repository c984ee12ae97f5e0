"""custos.insight."""
