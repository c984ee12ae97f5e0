"""The composition root: workflows that cross domain packages, and the Python API."""

from __future__ import annotations

from custos.service.app import Custos

__all__ = ["Custos"]
