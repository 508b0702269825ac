"""Feedback records carry their own id, so a record replayed from the spool is stored once.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cds_feedback", sa.Column("uuid", sa.String(36), nullable=True))
    op.create_index("ux_cds_feedback_uuid", "cds_feedback", ["uuid"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_cds_feedback_uuid", "cds_feedback")
    with op.batch_alter_table("cds_feedback") as batch:  # SQLite rebuilds the table
        batch.drop_column("uuid")
