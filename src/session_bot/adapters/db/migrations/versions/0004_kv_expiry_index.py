"""an index on kv.expires_at: clearing expired rate-limit counters costs what expired

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 (issue 18)
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_kv_expires_at", "kv", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_kv_expires_at", table_name="kv")
