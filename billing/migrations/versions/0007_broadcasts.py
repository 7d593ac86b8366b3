"""broadcasts: an admin's message to a segment, sent as one outbox notice per recipient

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 15:35:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from billing.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("segment", sa.JSON(), nullable=False),
        sa.Column("button_url", sa.String(length=2048), nullable=True),
        sa.Column("button_plan", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=96), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("send_at", UTCDateTime(), nullable=False),
        sa.Column("canceled_at", UTCDateTime(), nullable=True),
        sa.Column("progress_channel", sa.String(length=16), nullable=True),
        sa.Column("progress_chat", sa.String(length=64), nullable=True),
        sa.Column("progress_message", sa.String(length=64), nullable=True),
        sa.Column("reported_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("broadcasts")
