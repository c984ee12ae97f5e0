"""custos.consent."""
