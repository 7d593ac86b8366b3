"""stripe events: the customer each names, indexed, for the chat views' "is one waiting?"

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 19:10:00.000000
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from billing.webhooks import customer_named

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_id", sa.String(length=255), nullable=True))
        batch_op.create_index("ix_stripe_events_customer_status", ["customer_id", "status"],
                              unique=False)
    # Only waiting events matter to the views; processed ones keep no customer.
    events = sa.table("stripe_events", sa.column("id", sa.String),
                      sa.column("status", sa.String), sa.column("payload", sa.JSON),
                      sa.column("customer_id", sa.String))
    bind = op.get_bind()
    waiting = bind.execute(sa.select(events.c.id, events.c.payload)
                           .where(events.c.status == "pending")).all()
    for event_id, payload in waiting:
        event = json.loads(payload) if isinstance(payload, str) else payload
        named = customer_named(event) if isinstance(event, dict) else None
        if named is not None:
            bind.execute(events.update().where(events.c.id == event_id)
                         .values(customer_id=named))


def downgrade() -> None:
    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        batch_op.drop_index("ix_stripe_events_customer_status")
        batch_op.drop_column("customer_id")
