"""The REST API application: profile reads bound to purposes, and Segment-compatible collection.

``create_app(custos_or_settings)`` builds the FastAPI app over one store (the CLI may use the same
store at the same time); ``custos serve`` runs it with uvicorn (see :mod:`custos.api.server`). OpenAPI docs are at ``/docs``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from sqlalchemy import select

import custos
from custos import __version__
from custos.api import (
    audit,
    collect,
    dsr,
    errors,
    headers,
    limits,
    overview,
    preferences,
    profiles,
    quarantine,
    review,
)
from custos.api.deps import Reader
from custos.api.writer import GroupWriter
from custos.core.settings import Settings
from custos.service.app import Custos

WEB_STATIC = Path(custos.__file__).parent / "web" / "static"


class Me(BaseModel):
    """The key a request authenticated with (never the key itself)."""

    name: str
    scope: str
    purposes: list[str]


class Health(BaseModel):
    """The store answers."""

    status: Literal["ok"]


def create_app(custos_or_settings: Custos | Settings | None = None) -> FastAPI:
    """The API over a custos instance (kept open by the caller), or over the store of these
    settings (opened now, closed when the app shuts down)."""
    owned = not isinstance(custos_or_settings, Custos)
    custos = (
        custos_or_settings
        if isinstance(custos_or_settings, Custos)
        else Custos.open(None, custos_or_settings or Settings())
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            custos.close()

    app = FastAPI(
        title="custos",
        version=__version__,
        description="A consent-first customer data platform: profiles read under a purpose, "
        "and a Segment-compatible collection API.",
        lifespan=lifespan,
        responses=errors.responses(*errors.COMMON),
        docs_url=None,  # served by headers.install, its assets from a package (no CDN)
        redoc_url=None,
    )
    app.state.custos = custos
    app.state.collect_gate = collect.Gate(custos.settings.collect_max_concurrent)
    app.state.collect_writer = GroupWriter(custos)
    errors.install(app)
    app.add_middleware(limits.Limits, settings=custos.settings, collect_paths=collect.PATHS)
    # outermost: every answer carries the security headers, a 413 before authentication too
    headers.install(app)
    app.include_router(profiles.router)
    app.include_router(preferences.router)
    app.include_router(collect.router)
    app.include_router(dsr.router)
    app.include_router(overview.router)
    app.include_router(review.router)
    app.include_router(audit.router)
    app.include_router(quarantine.router)

    @app.get("/v1/me", tags=["meta"], response_model=None, responses=errors.answers(Me, 401, 403))
    def me(key: Reader) -> dict[str, Any]:
        """The key this request authenticated with: name, scope and purposes (never the key)."""
        return {"name": key.name, "scope": key.scope, "purposes": list(key.purposes)}

    # The web UI is static files over this API (the browser sends the key like any client), so
    # it needs no code of its own here: custos/web/static is served as it is.
    app.mount("/ui", StaticFiles(directory=WEB_STATIC, html=True), name="ui")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        """The web UI."""
        return RedirectResponse("/ui/")

    @app.get("/health", tags=["meta"], response_model=None, responses=errors.answers(Health))
    def health() -> dict[str, str]:
        """Liveness: the store answers."""
        with custos.store.read() as conn:
            conn.execute(select(1))
        return {"status": "ok"}

    return app
