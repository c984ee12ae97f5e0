"""Alembic environment: custos always passes the connection in (see ``Store.migrate``)."""

from __future__ import annotations

from alembic import context

from custos.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when someone runs the alembic CLI by hand
    raise SystemExit("run migrations with `custos init`, which passes the connection in")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
context.run_migrations()
