"""mailing details and a Zoom re-check flag per session

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 (updates, cancellations and Zoom drift)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mailings") as batch:
        batch.add_column(sa.Column("details", sa.Text(), nullable=True))
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("check_zoom_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("check_zoom_at")
    with op.batch_alter_table("mailings") as batch:
        batch.drop_column("details")
