"""custos.identity."""
