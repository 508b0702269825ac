"""Shadow mode's differences: a live call whose result a candidate rule table would change.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shadow_difference",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("live_rule_set", sa.String(64), nullable=False),
        sa.Column("shadow_rule_set", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("before", sa.Text, nullable=False),
        sa.Column("after", sa.Text, nullable=False),
        sa.Column("transitions", sa.Text, nullable=False),
    )
    op.create_index("ix_shadow_difference_at", "shadow_difference", ["at"])


def downgrade() -> None:
    op.drop_index("ix_shadow_difference_at", "shadow_difference")
    op.drop_table("shadow_difference")
