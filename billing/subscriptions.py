"""A customer's subscription as chat views show it, and the hosted pages that change it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe

from billing.catalog import Plan, Price
from billing.errors import NotFound
from billing.gateway import idempotency_key
from billing.services import Billing

LIVE_STATUSES = ("active", "trialing", "past_due", "unpaid", "paused", "incomplete")


@dataclass(frozen=True)
class Card:
    """The brand, last four digits and expiry of a card."""

    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class Overview:
    """Everything `/plan` shows about a customer's current subscription."""

    customer_id: str
    subscription_id: str
    plan: Plan | None
    plan_name: str
    amount: int
    currency: str
    interval: str
    interval_count: int
    quantity: int
    status: str
    cancel_at_period_end: bool
    ends_at: datetime | None
    current_period_end: datetime | None
    trial_end: datetime | None
    paused_until: datetime | None
    card: Card | None
    next_amount: int | None
    next_currency: str | None


def _when(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value else None


def _card(method: Any) -> Card | None:
    card = None if method is None or isinstance(method, str) else getattr(method, "card", None)
    if card is None:
        return None
    return Card(brand=card.brand, last4=card.last4, exp_month=card.exp_month,
                exp_year=card.exp_year)


def pick_current(subscriptions: list[stripe.Subscription]) -> stripe.Subscription | None:
    """Return the subscription a customer means by "my plan": the newest live one."""
    live = [s for s in subscriptions if s.status in LIVE_STATUSES]
    return max(live, key=lambda s: s.created) if live else None


def _plan_for(billing: Billing, price_id: str) -> tuple[Plan | None, Price | None]:
    price = billing.prices.by_id(price_id)
    if price is None:
        return None, None
    plan = next((p for p in billing.catalog.plans if price.lookup_key in p.prices), None)
    return plan, price


async def get_overview(billing: Billing, *, customer_id: str) -> Overview | None:
    """Return the customer's current subscription, or None when there is none."""
    gateway = billing.gateway
    subscription = pick_current(await gateway.subscriptions(customer_id))
    if subscription is None:
        return None
    item = subscription["items"].data[0]
    plan, _ = _plan_for(billing, item.price.id)
    card = _card(subscription.default_payment_method)
    customer = subscription.customer
    if card is None and not isinstance(customer, str) and customer.invoice_settings:
        card = _card(customer.invoice_settings.default_payment_method)
    next_amount: int | None = None
    next_currency: str | None = None
    ending = subscription.cancel_at_period_end or subscription.cancel_at is not None
    if not ending and subscription.status in ("active", "trialing", "past_due"):
        upcoming = await gateway.upcoming_invoice(customer_id, subscription.id)
        next_amount, next_currency = upcoming.amount_due, upcoming.currency
    pause = subscription.pause_collection
    recurring = item.price.recurring
    product = item.price.product
    return Overview(
        customer_id=customer_id,
        subscription_id=subscription.id,
        plan=plan,
        plan_name=plan.name if plan else getattr(product, "name", None) or item.price.id,
        amount=item.price.unit_amount or 0,
        currency=item.price.currency,
        interval=recurring.interval if recurring else "month",
        interval_count=recurring.interval_count if recurring else 1,
        quantity=item.quantity or 1,
        status="paused" if pause is not None else subscription.status,
        cancel_at_period_end=subscription.cancel_at_period_end,
        ends_at=_when(subscription.cancel_at) or (
            _when(item.current_period_end) if subscription.cancel_at_period_end else None),
        current_period_end=_when(item.current_period_end),
        trial_end=_when(subscription.trial_end),
        paused_until=_when(pause.resumes_at) if pause is not None else None,
        card=card,
        next_amount=next_amount,
        next_currency=next_currency,
    )


def checkout_reference(channel: str, user_id: str) -> str:
    """Return the `client_reference_id` that ties a Checkout Session to a chat user."""
    return f"{channel}-{user_id}"


async def start_checkout(billing: Billing, *, channel: str, user_id: str, chat_id: str,
                         price: Price, customer_id: str | None, locale: str) -> str:
    """Create a Checkout Session for the price and return its URL."""
    hour = int(time.time() // 3600)  # a double tap within the hour reuses the same session
    metadata = {"portier_channel": channel, "portier_user": user_id, "portier_chat": chat_id}
    session = await billing.gateway.create_checkout(
        price_id=price.id,
        customer_id=customer_id,
        client_reference_id=checkout_reference(channel, user_id),
        metadata=metadata,
        success_url=billing.return_url(session_id="{CHECKOUT_SESSION_ID}"),
        cancel_url=billing.return_url(canceled="1"),
        locale=locale,
        key=idempotency_key("checkout", channel, user_id, customer_id, price.id, hour),
    )
    if not session.url:
        raise NotFound("checkout url")
    return session.url


async def card_update_url(billing: Billing, *, customer_id: str, locale: str) -> str:
    """Create a billing-portal session for updating the card and return its URL."""
    minute = int(time.time() // 60)  # portal sessions are short-lived; reuse within a minute
    session = await billing.gateway.create_card_update(
        customer_id=customer_id, return_url=billing.return_url(), locale=locale,
        key=idempotency_key("card", customer_id, minute))
    return session.url
