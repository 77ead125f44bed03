"""Alembic environment: runs on the connection session-bot hands over (no alembic.ini needed)."""

from __future__ import annotations

from alembic import context

from session_bot.adapters.db.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only for `alembic` invoked by hand
    raise RuntimeError("run migrations through `session-bot db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
