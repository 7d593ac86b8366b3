"""subscription cards: the details of each subscription's own default card

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 14:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mirror_subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("card_brand", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("card_last4", sa.String(length=4), nullable=True))
        batch_op.add_column(sa.Column("card_exp_month", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("card_exp_year", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mirror_subscriptions", schema=None) as batch_op:
        batch_op.drop_column("card_exp_year")
        batch_op.drop_column("card_exp_month")
        batch_op.drop_column("card_last4")
        batch_op.drop_column("card_brand")
