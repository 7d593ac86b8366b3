"""A customer's subscription as chat views show it, and the hosted pages that change it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe

from billing import mirror
from billing.catalog import Plan, Price
from billing.errors import NoSubscription, NotFound, NotYours
from billing.gateway import idempotency_key
from billing.mirror_models import MirrorCustomer, MirrorSubscription
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
    # A change queued for the period end by a subscription schedule, and a discount applied.
    schedule_id: str | None = None
    scheduled_price_id: str | None = None
    scheduled_plan_name: str | None = None
    scheduled_at: datetime | None = None
    discount_coupon: str | None = None
    discount_name: str | None = None


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


def _scheduled(billing: Billing, subscription: stripe.Subscription
               ) -> tuple[str | None, str | None, str | None, datetime | None]:
    """Return schedule id, next price id, its plan name and start, if a schedule changes it."""
    schedule = subscription.schedule
    if schedule is None:
        return None, None, None, None
    if isinstance(schedule, str):
        return schedule, None, None, None
    end = schedule.current_phase.end_date if schedule.current_phase else None
    later = [p for p in schedule.phases if end is not None and p.start_date >= end]
    if schedule.status != "active" or not later:
        return schedule.id, None, None, None
    price_id = str(later[0]["items"][0].price)
    plan, price = _plan_for(billing, price_id)
    name = plan.name if plan else price.product_name if price else price_id
    return schedule.id, price_id, name, _when(later[0].start_date)


def _discount(subscription: stripe.Subscription) -> tuple[str | None, str | None]:
    """Return the coupon id and a short name of the subscription's first discount."""
    for discount in subscription.discounts or []:
        if isinstance(discount, str):
            continue
        coupon = discount.source.coupon if discount.source else None
        if coupon is None:
            continue
        if isinstance(coupon, str):
            return coupon, coupon
        if coupon.percent_off:
            off = f"{coupon.percent_off:g}%"
        else:
            off = None
        return coupon.id, coupon.name or (f"{off} ({coupon.id})" if off else coupon.id)
    return None, None


async def current_subscription(billing: Billing, *, customer_id: str) -> stripe.Subscription:
    """Return the customer's current subscription, or raise NoSubscription."""
    subscription = pick_current(await billing.gateway.subscriptions(customer_id))
    if subscription is None:
        raise NoSubscription("none")
    return subscription


async def owned_subscription(billing: Billing, *, customer_id: str,
                             subscription_id: str) -> stripe.Subscription:
    """Return the customer's current subscription if it is the one named (NotYours otherwise)."""
    current = await current_subscription(billing, customer_id=customer_id)
    if current.id == subscription_id:
        return current
    other = await billing.gateway.subscription(subscription_id)
    owner = other.customer if isinstance(other.customer, str) else other.customer.id
    raise NotYours("subscription") if owner != customer_id else NotFound("subscription")


def _plan_for(billing: Billing, price_id: str) -> tuple[Plan | None, Price | None]:
    price = billing.prices.by_id(price_id)
    if price is None:
        return None, None
    plan = next((p for p in billing.catalog.plans if price.lookup_key in p.prices), None)
    return plan, price


async def get_overview(billing: Billing, *, customer_id: str) -> Overview | None:
    """Return the customer's current subscription, or None when there is none.

    Read from the local mirror when it is fresh (see `billing.mirror`), else re-read from
    Stripe into the mirror first: a busy bot spends no Stripe requests on `/plan`.
    """
    customer, rows = await mirror.view_rows(billing, customer_id)
    live = [row for row in rows if row.status in LIVE_STATUSES]
    if customer is None or not live:
        return None
    row = max(live, key=lambda r: (r.created, r.id))
    if row.card_id is not None and row.card_id != customer.card_id:
        # The subscription pays with a card other than the customer's default: the mirror
        # keeps only the default card's details, so read this rare case from Stripe.
        return await live_overview(billing, customer_id=customer_id)
    return await _from_mirror(billing, customer, row)


def _mirrored_card(customer: MirrorCustomer) -> Card | None:
    if not (customer.card_brand and customer.card_last4 and customer.card_exp_month
            and customer.card_exp_year):
        return None
    return Card(brand=customer.card_brand, last4=customer.card_last4,
                exp_month=customer.card_exp_month, exp_year=customer.card_exp_year)


async def _from_mirror(billing: Billing, customer: MirrorCustomer,
                       row: MirrorSubscription) -> Overview:
    plan, _ = _plan_for(billing, row.price_id)
    scheduled_plan, scheduled_price = (_plan_for(billing, row.scheduled_price_id)
                                       if row.scheduled_price_id else (None, None))
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
        card=_mirrored_card(customer),
        next_amount=row.next_amount,
        next_currency=row.currency if row.next_amount is not None else None,
        schedule_id=row.schedule_id,
        scheduled_price_id=row.scheduled_price_id,
        scheduled_plan_name=(scheduled_plan.name if scheduled_plan else
                             scheduled_price.product_name if scheduled_price else
                             row.scheduled_price_id),
        scheduled_at=row.scheduled_at,
        discount_coupon=row.discount_coupon,
        discount_name=(await mirror.coupon_name(billing, row.discount_coupon)
                       if row.discount_coupon else None),
    )


async def live_overview(billing: Billing, *, customer_id: str) -> Overview | None:
    """Return the customer's current subscription read straight from Stripe."""
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
    schedule_id, scheduled_price_id, scheduled_plan_name, scheduled_at = _scheduled(
        billing, subscription)
    discount_coupon, discount_name = _discount(subscription)
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
        schedule_id=schedule_id,
        scheduled_price_id=scheduled_price_id,
        scheduled_plan_name=scheduled_plan_name,
        scheduled_at=scheduled_at,
        discount_coupon=discount_coupon,
        discount_name=discount_name,
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
        success_url=billing.return_url(session_id="{CHECKOUT_SESSION_ID}", lang=locale),
        cancel_url=billing.return_url(canceled="1", lang=locale),
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
        customer_id=customer_id, return_url=billing.return_url(lang=locale), locale=locale,
        key=idempotency_key("card", customer_id, minute))
    return session.url
