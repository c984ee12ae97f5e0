"""custos — a consent-first customer data platform.

The public Python API: open a store, ingest files, resolve identities, read profiles.
"""

from __future__ import annotations

__version__ = "0.1.0"
