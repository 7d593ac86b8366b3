"""History that Stripe's objects lose: each subscription's revenue state, and save offers.

Stripe shows a subscription as it is now; MRR movements need what it was. Storing every
subscription every day would be 36.5 million rows a year for 100,000 subscriptions, nearly
all repeats, so the daily snapshot stores a subscription's row only on the day its state
(status, plan, currency, MRR) differs from its previous row: the state on any day is the
subscription's latest row on or before it.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billing.models import Base, UTCDateTime, utcnow


class RevenueState(Base):
    """A subscription's revenue state from `day` on, until its next row."""

    __tablename__ = "revenue_states"
    __table_args__ = (
        UniqueConstraint("subscription_id", "day", name="uq_revenue_states_day"),
        Index("ix_revenue_states_day", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[str] = mapped_column(String(255))
    customer_id: Mapped[str] = mapped_column(String(255))
    day: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(8))
    price_id: Mapped[str] = mapped_column(String(255))
    # Millionths of a minor unit a month: sums over many subscriptions are rounded once, at
    # the end, rather than once per subscription (a yearly 290.00 is 24.1666… a month).
    mrr_micro: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16), default="snapshot")  # or "invoices"


class SaveOffer(Base):
    """A save offer made in Portier's cancel flow, and whether the customer took it."""

    __tablename__ = "save_offers"

    subscription_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "coupon", "pause" or "plan"
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
