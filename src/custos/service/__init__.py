"""custos.service."""
