"""custos — a consent-first customer data platform.

The public Python API: ``Custos.open(db)``, its ``ingest`` and ``resolve``, and its typed
sub-facades (``custos.profiles``, ``.consent``, ``.dsr``, ``.insight``, ``.collect``, ``.audit``,
``.admin``; see ``custos.service.facades``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Custos", "__version__"]

if TYPE_CHECKING:
    from custos.service import Custos


def __getattr__(name: str) -> Any:
    # Imported lazily so that `import custos.core` stays light.
    if name == "Custos":
        from custos.service import Custos

        return Custos
    raise AttributeError(name)
