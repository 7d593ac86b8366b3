"""teams: delivered chat event ids (Slack retries), assigned seats, seat requests

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 15:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from billing.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chat_events",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "event_id"),
    )
    op.create_index("ix_chat_events_received_at", "chat_events", ["received_at"], unique=False)
    op.create_table(
        "team_seats",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("assigned_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "team_id", "user_id"),
    )
    op.create_table(
        "seat_requests",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "team_id", "user_id"),
    )


def downgrade() -> None:
    op.drop_table("seat_requests")
    op.drop_table("team_seats")
    op.drop_index("ix_chat_events_received_at", table_name="chat_events")
    op.drop_table("chat_events")
