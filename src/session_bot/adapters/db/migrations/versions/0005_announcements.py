"""announcements: mailings without a session, numbered on their own

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 (issue 17)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_WHERE = sa.text("session_id IS NULL")


def _session_id_nullable(nullable: bool) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        # SQLite rebuilds the table, and dropping the old one would orphan the deliveries that
        # point at it (foreign_keys=OFF has no effect inside the migration's transaction): they
        # wait in a copy meanwhile.
        op.execute("CREATE TEMPORARY TABLE _deliveries_keep AS SELECT * FROM deliveries")
        op.execute("DELETE FROM deliveries")
    with op.batch_alter_table("mailings") as batch:
        batch.alter_column("session_id", existing_type=sa.Integer(), nullable=nullable)
    if sqlite:
        op.execute("INSERT INTO deliveries SELECT * FROM _deliveries_keep")
        op.execute("DROP TABLE _deliveries_keep")


def upgrade() -> None:
    _session_id_nullable(True)
    op.create_index(
        "uq_mailing_announcement",
        "mailings",
        ["kind", "sequence"],
        unique=True,
        sqlite_where=_WHERE,
        postgresql_where=_WHERE,
    )


def downgrade() -> None:
    op.drop_index("uq_mailing_announcement", table_name="mailings")
    # Announcements have no session to keep them under a NOT NULL column: they go first.
    ids = "SELECT id FROM mailings WHERE session_id IS NULL"
    op.execute(f"DELETE FROM deliveries WHERE mailing_id IN ({ids})")
    op.execute("DELETE FROM mailings WHERE session_id IS NULL")
    _session_id_nullable(False)
