"""message copies: the language each copy was written in, so that its update keeps it

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 20:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message_copies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message_copies", schema=None) as batch_op:
        batch_op.drop_column("locale")
