"""JWT ids already used, shared by every worker and replica (replay refusal across processes).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jwt_replay",
        sa.Column("iss", sa.String(255), primary_key=True),
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("exp", sa.Float, nullable=False),
    )
    op.create_index("ix_jwt_replay_exp", "jwt_replay", ["exp"])


def downgrade() -> None:
    op.drop_index("ix_jwt_replay_exp", "jwt_replay")
    op.drop_table("jwt_replay")
