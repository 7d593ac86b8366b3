"""revenue: each subscription's state history, save offers, and the mirror's discount terms

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 14:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from billing.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revenue_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("price_id", sa.String(length=255), nullable=False),
        sa.Column("mrr_micro", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscription_id", "day", name="uq_revenue_states_day"),
    )
    op.create_index("ix_revenue_states_day", "revenue_states", ["day"], unique=False)
    op.create_table(
        "save_offers",
        sa.Column("subscription_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("offered_at", UTCDateTime(), nullable=False),
        sa.Column("accepted_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("subscription_id"),
    )
    op.create_index("ix_save_offers_offered_at", "save_offers", ["offered_at"], unique=False)
    with op.batch_alter_table("mirror_subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("discount_percent_off", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("discount_amount_off", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("discount_currency", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("discount_duration", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("discount_end", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mirror_subscriptions", schema=None) as batch_op:
        batch_op.drop_column("discount_end")
        batch_op.drop_column("discount_duration")
        batch_op.drop_column("discount_currency")
        batch_op.drop_column("discount_amount_off")
        batch_op.drop_column("discount_percent_off")
    op.drop_index("ix_save_offers_offered_at", table_name="save_offers")
    op.drop_table("save_offers")
    op.drop_index("ix_revenue_states_day", table_name="revenue_states")
    op.drop_table("revenue_states")
