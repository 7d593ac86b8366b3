"""teams: billing channel, billing admins, and the copies of a message sent to many chats

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 09:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from billing.models import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "team_settings",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("billing_channel", sa.String(length=64), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "team_id"),
    )
    op.create_table(
        "billing_admins",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "team_id", "user_id"),
    )
    op.create_table(
        "message_copies",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=128), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "ref", "chat_id", "message_id"),
    )
    op.create_index("ix_message_copies_sent_at", "message_copies", ["sent_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_message_copies_sent_at", table_name="message_copies")
    op.drop_table("message_copies")
    op.drop_table("billing_admins")
    op.drop_table("team_settings")
