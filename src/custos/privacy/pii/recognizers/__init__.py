"""custos's PII recognizers, one per module; ``custos.privacy.pii.registry`` lists them."""
