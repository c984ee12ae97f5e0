"""custos.web."""
