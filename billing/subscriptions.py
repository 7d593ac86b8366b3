"""A customer's subscription as chat views show it, and the hosted pages that change it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing import mirror
from billing.catalog import Plan, Price
from billing.errors import NoSubscription, NotFound, NotYours
from billing.gateway import idempotency_key
from billing.mirror_models import MirrorCustomer, MirrorSubscription
from billing.mirror_values import customer_values, subscription_values
from billing.services import Billing
from billing.shapes import ref_id

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
    # A change queued for the period end by a subscription schedule, and a discount applied.
    schedule_id: str | None = None
    scheduled_price_id: str | None = None
    scheduled_plan_name: str | None = None
    scheduled_at: datetime | None = None
    discount_coupon: str | None = None
    discount_name: str | None = None


def _card(card: Mapping[str, Any] | None) -> Card | None:
    if not card or not (card.get("brand") and card.get("last4")):
        return None
    return Card(brand=str(card["brand"]), last4=str(card["last4"]),
                exp_month=int(card.get("exp_month") or 0), exp_year=int(card.get("exp_year") or 0))


def pick_current(subscriptions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Return the subscription a customer means by "my plan": the newest live one."""
    live = [s for s in subscriptions if s["status"] in LIVE_STATUSES]
    return max(live, key=lambda s: (s["created"], s["id"])) if live else None


def _current_row(rows: list[MirrorSubscription]) -> MirrorSubscription | None:
    live = [row for row in rows if row.status in LIVE_STATUSES]
    return max(live, key=lambda r: (r.created, r.id)) if live else None


async def current_subscription(billing: Billing, *, customer_id: str) -> dict[str, Any]:
    """Return the customer's current subscription as Stripe has it now (NoSubscription if none).

    The mirror (kept current by events, re-read when not fresh) says which one it is; one
    request reads it, with what the mirror and the changes need expanded.
    """
    _, rows = await mirror.view_rows(billing, customer_id)
    row = _current_row(rows)
    if row is None:
        raise NoSubscription("none")
    subscription = await billing.gateway.subscription(row.id)
    if ref_id(subscription["customer"]) != customer_id or (
            subscription["status"] not in LIVE_STATUSES):
        raise NoSubscription("none")
    return subscription


async def owned_subscription(billing: Billing, *, customer_id: str,
                             subscription_id: str) -> dict[str, Any]:
    """Return the customer's current subscription if it is the one named (NotYours otherwise)."""
    _, rows = await mirror.view_rows(billing, customer_id)
    current = _current_row(rows)
    if current is not None and current.id == subscription_id:
        return await current_subscription(billing, customer_id=customer_id)
    other = await billing.gateway.subscription(subscription_id)
    raise NotYours("subscription") if ref_id(other["customer"]) != customer_id else NotFound(
        "subscription")


def _plan_for(billing: Billing, price_id: str) -> tuple[Plan | None, Price | None]:
    price = billing.prices.by_id(price_id)
    if price is None:
        return None, None
    plan = next((p for p in billing.catalog.plans if price.lookup_key in p.prices), None)
    return plan, price


async def get_overview(billing: Billing, *, customer_id: str,
                       read: mirror.View | None = None) -> Overview | None:
    """Return the customer's current subscription, or None when there is none.

    Read from the local mirror when it is fresh (see `billing.mirror`), else re-read from
    Stripe into the mirror first: a busy bot spends no Stripe requests on `/plan`. `read` is
    the mirror as this update's first read found it (`mirror.read_view`), if it read it. The
    card shown is the one that pays: the subscription's own (where Checkout puts it), else
    the customer's default.
    """
    customer, rows = await mirror.view_rows(billing, customer_id, read=read)
    row = _current_row(rows)
    if customer is None or row is None:
        return None
    return await _from_mirror(billing, customer, row)


def paying_card(customer: MirrorCustomer, row: MirrorSubscription) -> Card | None:
    """Return the card that pays a subscription: its own default, else the customer's."""
    if row.card_id is not None:
        return _card({"brand": row.card_brand, "last4": row.card_last4,
                      "exp_month": row.card_exp_month, "exp_year": row.card_exp_year})
    return _card({"brand": customer.card_brand, "last4": customer.card_last4,
                  "exp_month": customer.card_exp_month, "exp_year": customer.card_exp_year})


def _name(billing: Billing, price_id: str | None, product_name: str | None) -> str | None:
    if price_id is None:
        return None
    plan, price = _plan_for(billing, price_id)
    return plan.name if plan else price.product_name if price else product_name or price_id


async def _from_mirror(billing: Billing, customer: MirrorCustomer,
                       row: MirrorSubscription) -> Overview:
    plan, _ = _plan_for(billing, row.price_id)
    paused = row.pause_behavior is not None
    return Overview(
        customer_id=customer.id,
        subscription_id=row.id,
        plan=plan,
        plan_name=plan.name if plan else row.product_name or row.price_id,
        amount=row.unit_amount,
        currency=row.currency,
        interval=row.interval,
        interval_count=row.interval_count,
        quantity=row.quantity,
        status="paused" if paused else row.status,
        cancel_at_period_end=row.cancel_at_period_end,
        ends_at=row.cancel_at or (row.current_period_end if row.cancel_at_period_end else None),
        current_period_end=row.current_period_end,
        trial_end=row.trial_end,
        paused_until=row.pause_resumes_at if paused else None,
        card=paying_card(customer, row),
        next_amount=row.next_amount,
        next_currency=row.currency if row.next_amount is not None else None,
        schedule_id=row.schedule_id,
        scheduled_price_id=row.scheduled_price_id,
        scheduled_plan_name=_name(billing, row.scheduled_price_id, None),
        scheduled_at=row.scheduled_at,
        discount_coupon=row.discount_coupon,
        discount_name=(await mirror.coupon_name(billing, row.discount_coupon)
                       if row.discount_coupon else None),
    )


async def live_overview(billing: Billing, *, customer_id: str) -> Overview | None:
    """Return the customer's current subscription read straight from Stripe (no mirror)."""
    gateway = billing.gateway
    subscription = pick_current(await gateway.customer_subscriptions(customer_id))
    if subscription is None:
        return None
    values = subscription_values(subscription, billing.prices)
    customer = customer_values(await gateway.customer_or_deleted(customer_id))
    ending = values["cancel_at_period_end"] or values["cancel_at"] is not None
    next_amount = None
    if not ending and values["status"] in ("active", "trialing", "past_due"):
        next_amount = await gateway.next_invoice_amount(customer_id, subscription["id"])
    row = MirrorSubscription(**values, next_amount=next_amount)
    return await _from_mirror(billing, MirrorCustomer(**customer), row)


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
        success_url=billing.return_url(session_id="{CHECKOUT_SESSION_ID}", lang=locale),
        cancel_url=billing.return_url(canceled="1", lang=locale),
        locale=locale,
        key=idempotency_key("checkout", channel, user_id, customer_id, price.id, hour),
    )
    if not session.get("url"):
        raise NotFound("checkout url")
    return str(session["url"])


async def card_update_url(billing: Billing, *, customer_id: str, locale: str) -> str:
    """Create a billing-portal session for updating the card and return its URL."""
    minute = int(time.time() // 60)  # portal sessions are short-lived; reuse within a minute
    session = await billing.gateway.create_card_update(
        customer_id=customer_id, return_url=billing.return_url(lang=locale), locale=locale,
        key=idempotency_key("card", customer_id, locale, minute))
    return str(session["url"])
