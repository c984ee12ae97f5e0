"""The server entry point: the app as ``custos serve`` runs it, in each worker process.

uvicorn builds the app from this factory's import string in every server process, so the
factory is where a server process is set up (:func:`custos.process.tune_server`: its garbage
collector and log levels; the limits of :mod:`custos.api.limits` that live on uvicorn's
protocol class). :func:`custos.api.app.create_app` itself changes nothing process-wide.
"""

from __future__ import annotations

from fastapi import FastAPI

from custos import process
from custos.api import limits
from custos.api.app import create_app


def server_app() -> FastAPI:
    """:func:`create_app` over the settings of the environment, in a process tuned for
    serving."""
    process.tune_server()
    app = create_app()
    limits.HeadTimeoutH11.seconds = app.state.custos.settings.api_header_timeout
    limits.PENALTIES.seconds = app.state.custos.settings.api_penalty_seconds
    return app
