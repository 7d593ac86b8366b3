"""The local mirror of Stripe objects that chat views and scheduled scans read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from billing.models import Base, UTCDateTime, utcnow


class MirrorCustomer(Base):
    """A Stripe customer and their default card (brand, last four, expiry)."""

    __tablename__ = "mirror_customers"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    card_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    card_brand: Mapped[str | None] = mapped_column(String(32), nullable=True)
    card_last4: Mapped[str | None] = mapped_column(String(4), nullable=True)
    card_exp_month: Mapped[int | None] = mapped_column(Integer, nullable=True)
    card_exp_year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MirrorSubscription(Base):
    """A Stripe subscription with its (first) item's price, quantity and period."""

    __tablename__ = "mirror_subscriptions"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(32))
    item_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    price_id: Mapped[str] = mapped_column(String(255))
    product_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    unit_amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(8))
    interval: Mapped[str] = mapped_column(String(8))
    interval_count: Mapped[int] = mapped_column(Integer, default=1)
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    current_period_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    current_period_end: Mapped[datetime | None] = mapped_column(
        UTCDateTime(), nullable=True, index=True)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    trial_end: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    pause_behavior: Mapped[str | None] = mapped_column(String(32), nullable=True)
    pause_resumes_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    schedule_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    scheduled_price_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    discount_coupon: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The subscription's own default card (Checkout puts the card here, not on the customer);
    # None means its invoices are paid with the customer's default card.
    card_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    card_brand: Mapped[str | None] = mapped_column(String(32), nullable=True)
    card_last4: Mapped[str | None] = mapped_column(String(4), nullable=True)
    card_exp_month: Mapped[int | None] = mapped_column(Integer, nullable=True)
    card_exp_year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    next_amount: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latest_invoice_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    # Stripe time of the newest state stored (event `created` or read time): older events
    # arriving late never overwrite newer state.
    stripe_seen_at: Mapped[int] = mapped_column(Integer, default=0)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The first discount's terms, for MRR (billing.revenue): what it takes off while it lasts.
    discount_percent_off: Mapped[float | None] = mapped_column(Float, nullable=True)
    discount_amount_off: Mapped[int | None] = mapped_column(Integer, nullable=True)
    discount_currency: Mapped[str | None] = mapped_column(String(8), nullable=True)
    discount_duration: Mapped[str | None] = mapped_column(String(16), nullable=True)
    discount_end: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class MirrorInvoice(Base):
    """A recent Stripe invoice."""

    __tablename__ = "mirror_invoices"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(255), index=True)
    subscription_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    number: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(32))
    billing_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    total: Mapped[int] = mapped_column(Integer)
    amount_due: Mapped[int] = mapped_column(Integer)
    amount_remaining: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(8))
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    next_payment_attempt: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    hosted_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    pdf_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    stripe_seen_at: Mapped[int] = mapped_column(Integer, default=0)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
