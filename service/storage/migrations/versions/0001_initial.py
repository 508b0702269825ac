"""Cards issued, feedback, audit events.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cds_card",
        sa.Column("uuid", sa.String(64), primary_key=True),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("indicator", sa.String(16), nullable=False),
        sa.Column("rules", sa.String(255), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "cds_feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("card_uuid", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("override_system", sa.String(255)),
        sa.Column("override_code", sa.String(100)),
        sa.Column("has_comment", sa.Boolean, nullable=False),
        sa.Column("accepted_suggestions", sa.Integer, nullable=False),
        sa.Column("outcome_at", sa.String(40), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_cds_feedback_card_uuid", "cds_feedback", ["card_uuid"])
    op.create_table(
        "audit_event",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("caller", sa.String(255), nullable=False),
        sa.Column("rule_set", sa.String(64), nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("input_ids", sa.Text, nullable=False),
        sa.Column("output_ids", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("risk", sa.String(16), nullable=False),
    )
    op.create_index("ix_audit_event_at", "audit_event", ["at"])


def downgrade() -> None:
    op.drop_table("audit_event")
    op.drop_index("ix_cds_feedback_card_uuid", "cds_feedback")
    op.drop_table("cds_feedback")
    op.drop_table("cds_card")
