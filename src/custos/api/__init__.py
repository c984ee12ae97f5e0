"""custos.api."""
