"""Cancel at period end with a reason, one save offer per subscription, resume and unpause.

The offer made is remembered in the subscription's metadata (`portier_offer`), so it is made
at most once however many replicas or restarts come between, and accepting it is allowed
only when that offer was made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing import mirror, revenue
from billing.catalog import Price
from billing.changes import DOWNGRADE, options_of
from billing.errors import BillingError, InvalidRequest, NotFound
from billing.gateway import idempotency_key
from billing.models import utcnow
from billing.services import Billing
from billing.shapes import item, ref_id, when
from billing.subscriptions import current_subscription, owned_subscription

REASONS = ("too_expensive", "missing_features", "switched_service", "unused",
           "customer_service", "too_complex", "low_quality", "other")
ASKS_COMMENT = ("other", "missing_features")
OFFER_KEY = "portier_offer"
DAY = 86400


class OfferNotMade(BillingError):
    """The save offer being accepted was not made to this subscription (or already used)."""

    code = "offer_not_made"


@dataclass(frozen=True)
class Offer:
    """The save offer fitted to a cancel reason; kind "none" when there is nothing to offer."""

    kind: str  # "coupon", "pause", "plan" or "none"
    subscription_id: str
    coupon_id: str | None = None
    percent_off: float | None = None
    amount_off: int | None = None
    currency: str | None = None
    duration: str | None = None
    duration_in_months: int | None = None
    pause_days: tuple[int, ...] = ()
    plan_key: str | None = None
    plan_name: str | None = None
    price: Price | None = None


@dataclass(frozen=True)
class Outcome:
    """What a cancel, resume, pause or discount left: the subscription and the day it names."""

    subscription_id: str
    until: datetime | None


def _period_end(subscription: dict[str, Any]) -> datetime | None:
    return when(item(subscription)["current_period_end"])


def _offered(subscription: dict[str, Any]) -> str | None:
    return str((subscription.get("metadata") or {}).get(OFFER_KEY) or "") or None


async def _coupon_offer(billing: Billing, subscription: dict[str, Any]) -> Offer | None:
    coupon_id = billing.catalog.save_coupon
    if not coupon_id:
        return None
    try:
        coupon = await billing.gateway.coupon(coupon_id)
    except NotFound:
        return None
    if not coupon.get("valid") or coupon.get("deleted"):
        return None
    return Offer(kind="coupon", subscription_id=subscription["id"], coupon_id=coupon["id"],
                 percent_off=coupon.get("percent_off"), amount_off=coupon.get("amount_off"),
                 currency=coupon.get("currency"), duration=coupon.get("duration"),
                 duration_in_months=coupon.get("duration_in_months"))


def _plan_offer(billing: Billing, subscription: dict[str, Any]) -> Offer | None:
    current, options = options_of(billing, subscription)
    cheaper = [o for o in options if o.direction == DOWNGRADE]
    if not cheaper:
        return None
    # The next plan down at the same interval, else the cheapest other choice.
    same = [o for o in cheaper if o.price.interval == current.interval]
    pick = max(same, key=lambda o: o.plan.rank) if same else min(
        cheaper, key=lambda o: o.price.unit_amount)
    return Offer(kind="plan", subscription_id=subscription["id"], plan_key=pick.plan.key,
                 plan_name=pick.plan.name, price=pick.price)


async def make_offer(billing: Billing, *, customer_id: str, reason: str) -> Offer:
    """Choose the save offer for a reason, once per subscription, and remember it was made."""
    if reason not in REASONS:
        raise InvalidRequest("reason")
    subscription = await current_subscription(billing, customer_id=customer_id)
    offer: Offer | None = None
    if _offered(subscription) is None and not subscription.get("cancel_at_period_end"):
        if reason == "too_expensive":
            offer = await _coupon_offer(billing, subscription) or _plan_offer(
                billing, subscription)
        elif reason == "unused" and billing.catalog.pause_days:
            offer = Offer(kind="pause", subscription_id=subscription["id"],
                          pause_days=billing.catalog.pause_days)
    if offer is None:
        return Offer(kind="none", subscription_id=subscription["id"])
    await billing.gateway.remember(subscription["id"], {OFFER_KEY: offer.kind},
                                   key=idempotency_key("offer", subscription["id"]))
    await revenue.offer_made(billing.db, subscription_id=subscription["id"], kind=offer.kind)
    return offer


def _accepting(subscription: dict[str, Any], kind: str) -> None:
    if _offered(subscription) != kind:
        raise OfferNotMade(kind)


async def accept_coupon(billing: Billing, *, customer_id: str) -> Outcome:
    """Apply the save coupon that was offered to this subscription."""
    subscription = await current_subscription(billing, customer_id=customer_id)
    _accepting(subscription, "coupon")
    coupon = billing.catalog.save_coupon
    if not coupon:
        raise OfferNotMade("coupon")
    read_at = utcnow()
    updated = await billing.gateway.apply_coupon(
        subscription["id"], coupon, metadata={OFFER_KEY: "coupon_accepted"},
        key=idempotency_key("coupon", subscription["id"], coupon))
    await mirror.written(billing, updated, read_at=read_at)  # /plan shows it at once
    await revenue.offer_accepted(billing.db, subscription_id=subscription["id"])
    return Outcome(subscription_id=subscription["id"], until=_period_end(subscription))


def pause_start(subscription: dict[str, Any]) -> int:
    """Return the moment a pause starts from: now, never before the current period began."""
    return max(int(time.time()), int(item(subscription)["current_period_start"]))


async def accept_pause(billing: Billing, *, customer_id: str, days: int) -> Outcome:
    """Pause collection for one of the catalog's pause lengths, as offered."""
    subscription = await current_subscription(billing, customer_id=customer_id)
    _accepting(subscription, "pause")
    if days not in billing.catalog.pause_days:
        raise OfferNotMade("pause")
    resumes_at = pause_start(subscription) + days * DAY
    read_at = utcnow()
    updated = await billing.gateway.pause(
        subscription["id"], resumes_at=resumes_at, metadata={OFFER_KEY: "pause_accepted"},
        key=idempotency_key("pause", subscription["id"], days))
    await mirror.written(billing, updated, read_at=read_at)  # /plan shows it at once
    await revenue.offer_accepted(billing.db, subscription_id=subscription["id"])
    return Outcome(subscription_id=subscription["id"], until=when(resumes_at))


async def cancel_at_period_end(billing: Billing, *, customer_id: str, reason: str,
                               comment: str | None, intent: str) -> Outcome:
    """Cancel at the period end, recording Stripe's feedback value and the comment."""
    if reason not in REASONS:
        raise InvalidRequest("reason")
    subscription = await current_subscription(billing, customer_id=customer_id)
    if subscription.get("cancel_at_period_end"):
        return Outcome(subscription_id=subscription["id"], until=_period_end(subscription))
    read_at = utcnow()
    schedule = subscription.get("schedule")
    schedule_id = ref_id(schedule)
    if schedule_id is not None and (not isinstance(schedule, dict) or schedule.get(
            "status") in ("active", "not_started")):
        # Stripe refuses cancel settings on a subscription a schedule manages; the queued
        # change is moot once the subscription ends, so release it first.
        await billing.gateway.release_schedule(
            schedule_id, key=idempotency_key("release", schedule_id))
    updated = await billing.gateway.cancel_at_period_end(
        subscription["id"], feedback=reason, comment=comment or "",
        key=idempotency_key("cancel", subscription["id"], reason, comment, intent))
    await mirror.written(billing, updated, read_at=read_at)  # /plan shows it at once
    return Outcome(subscription_id=updated["id"], until=_period_end(updated))


async def resume(billing: Billing, *, customer_id: str, subscription_id: str) -> Outcome:
    """Undo a pending cancel of the customer's subscription."""
    subscription = await owned_subscription(billing, customer_id=customer_id,
                                            subscription_id=subscription_id)
    if subscription.get("cancel_at_period_end") or subscription.get("cancel_at"):
        read_at = utcnow()
        updated = await billing.gateway.keep(
            subscription["id"],
            cancel_at=bool(subscription.get("cancel_at")
                           and not subscription.get("cancel_at_period_end")),
            key=idempotency_key("resume", subscription["id"], subscription.get("canceled_at")))
        await mirror.written(billing, updated, read_at=read_at)  # /plan shows it at once
    return Outcome(subscription_id=subscription["id"], until=_period_end(subscription))


async def unpause(billing: Billing, *, customer_id: str, subscription_id: str) -> Outcome:
    """Resume a paused subscription's collection now."""
    subscription = await owned_subscription(billing, customer_id=customer_id,
                                            subscription_id=subscription_id)
    pause = subscription.get("pause_collection")
    if pause is not None:
        read_at = utcnow()
        updated = await billing.gateway.unpause(
            subscription["id"], key=idempotency_key("unpause", subscription["id"],
                                                    pause.get("resumes_at")))
        await mirror.written(billing, updated, read_at=read_at)  # /plan shows it at once
    return Outcome(subscription_id=subscription["id"], until=_period_end(subscription))
