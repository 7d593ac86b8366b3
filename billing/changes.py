"""Plan and interval changes: options, previews with a fixed proration date, applying them.

An upgrade is invoiced at once (`always_invoice`) and applied only if that invoice is paid
(`pending_if_incomplete`). A downgrade follows the catalog: `now` credits the unused time
(`create_prorations`); `period_end` queues the new price with a subscription schedule.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from billing import mirror
from billing.catalog import Plan, Price
from billing.errors import BillingError, NotFound, NotYours
from billing.gateway import idempotency_key
from billing.models import utcnow
from billing.services import Billing
from billing.shapes import item, ref_id
from billing.subscriptions import current_subscription

UPGRADE, DOWNGRADE = "upgrade", "downgrade"
NOW, PERIOD_END = "now", "period_end"


class AlreadyOnPlan(BillingError):
    """The chosen plan and interval is the one the customer already has."""

    code = "already_on_plan"


@dataclass(frozen=True)
class Option:
    """A plan and price the customer can switch to."""

    plan: Plan
    price: Price
    direction: str


@dataclass(frozen=True)
class ChangePreview:
    """What a change costs: today, on the next invoice, and from when the new price runs."""

    subscription_id: str
    plan: Plan
    price: Price
    direction: str
    timing: str  # NOW or PERIOD_END
    proration_date: int  # for PERIOD_END: the period end the change waits for
    amount_today: int
    next_amount: int
    currency: str
    starts_at: datetime


@dataclass(frozen=True)
class ChangeResult:
    """How a confirmed change ended: applied, scheduled, declined, or moved (a new preview)."""

    outcome: str
    preview: ChangePreview
    invoice_id: str | None = None
    amount_paid: int = 0


def _when(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _plan_of(billing: Billing, price: Price) -> Plan | None:
    return next((p for p in billing.catalog.plans if price.lookup_key in p.prices), None)


def direction(billing: Billing, current: Price, target: Price) -> str:
    """Say whether going from one price to another is an upgrade (by rank, then price)."""
    here, there = _plan_of(billing, current), _plan_of(billing, target)
    rank_here = here.rank if here else -1
    rank_there = there.rank if there else -1
    if rank_there != rank_here:
        return UPGRADE if rank_there > rank_here else DOWNGRADE
    return UPGRADE if target.unit_amount > current.unit_amount else DOWNGRADE


def _current_price(billing: Billing, subscription: dict[str, Any]) -> Price:
    price = billing.prices.by_id(item(subscription)["price"]["id"])
    if price is None:
        raise NotFound("price")  # a price outside the catalog: changes go through support
    return price


async def list_options(billing: Billing, *, customer_id: str) -> tuple[Price, list[Option]]:
    """Return the current price and every other catalog price, upgrades first."""
    return options_of(billing, await current_subscription(billing, customer_id=customer_id))


def options_of(billing: Billing, subscription: dict[str, Any]) -> tuple[Price, list[Option]]:
    """Return a subscription's price and every other catalog price, upgrades first."""
    current = _current_price(billing, subscription)
    options = []
    for plan in billing.catalog.plans:
        for key in plan.prices:
            price = billing.prices.by_key.get(key)
            if price is not None and price.id != current.id:
                options.append(Option(plan, price, direction(billing, current, price)))
    options.sort(key=lambda o: (o.direction != UPGRADE, -o.plan.rank if o.direction == DOWNGRADE
                                else o.plan.rank, o.price.interval != "month"))
    return current, options


def find_price(billing: Billing, plan_key: str, interval: str) -> tuple[Plan, Price]:
    """Return the catalog plan and its price for an interval (NotFound for anything else)."""
    plan = billing.catalog.plan(plan_key)
    prices = [billing.prices.by_key[k] for k in plan.prices if k in billing.prices.by_key] \
        if plan else []
    price = next((p for p in prices if p.interval == interval), None)
    if plan is None or price is None:
        raise NotFound("plan")
    return plan, price


def timing(billing: Billing, change: str) -> str:
    """Return when a change of this direction takes effect."""
    return NOW if change == UPGRADE else billing.catalog.downgrade


def _behavior(change: str) -> str:
    return "always_invoice" if change == UPGRADE else "create_prorations"


def _is_proration(line: dict[str, Any]) -> bool:
    details = (line.get("parent") or {}).get("subscription_item_details") or {}
    return bool(details.get("proration"))


def _stripe_now(invoice: dict[str, Any]) -> int | None:
    """Return the proration date Stripe used: where this change's proration lines start."""
    starts = [ln["period"]["start"] for ln in invoice["lines"]["data"]
              if _is_proration(ln) and ln.get("period")]
    return max(starts) if starts else None


async def preview(billing: Billing, *, customer_id: str, plan_key: str, interval: str,
                  proration_date: int | None = None) -> ChangePreview:
    """Preview switching to a plan and interval, at a fixed proration date once known."""
    plan, price = find_price(billing, plan_key, interval)
    subscription = await current_subscription(billing, customer_id=customer_id)
    return await _preview(billing, subscription, plan, price, proration_date)


async def _preview(billing: Billing, subscription: dict[str, Any], plan: Plan,
                   price: Price, proration_date: int | None) -> ChangePreview:
    current = _current_price(billing, subscription)
    if current.id == price.id:
        raise AlreadyOnPlan(plan.key)
    change = direction(billing, current, price)
    first = item(subscription)
    quantity = first.get("quantity") or 1
    common: dict[str, Any] = dict(subscription_id=subscription["id"], plan=plan, price=price,
                                  direction=change, currency=price.currency)
    if timing(billing, change) == PERIOD_END:
        end = int(first["current_period_end"])
        return ChangePreview(**common, timing=PERIOD_END, proration_date=end, amount_today=0,
                             next_amount=price.unit_amount * quantity, starts_at=_when(end))
    invoice = await billing.gateway.preview_change(
        subscription["id"], items=[{"id": first["id"], "price": price.id, "quantity": quantity}],
        proration_behavior=_behavior(change), proration_date=proration_date)
    date = proration_date or _stripe_now(invoice) or int(time.time())
    # Stripe invoices at once for always_invoice and for any switch of billing interval.
    invoiced_now = change == UPGRADE or price.interval != current.interval or (
        price.interval_count != current.interval_count)
    full = [ln for ln in invoice["lines"]["data"] if not _is_proration(ln)]
    starts = max((ln["period"]["start"] for ln in full), default=first["current_period_end"])
    if invoiced_now:  # an interval switch restarts the period today; the next one starts later
        starts = max((ln["period"]["end"] for ln in full), default=starts)
    return ChangePreview(
        **common, timing=NOW, proration_date=date,
        amount_today=invoice["amount_due"] if invoiced_now else 0,
        next_amount=price.unit_amount * quantity if invoiced_now else invoice["amount_due"],
        starts_at=_when(starts))


def _next_amount(subscription: dict[str, Any], preview: ChangePreview) -> Any:
    """The next invoice after a change, as its preview said; with a discount, ask Stripe."""
    return mirror.ASK_STRIPE if subscription.get("discounts") else preview.next_amount


async def confirm(billing: Billing, *, customer_id: str, plan_key: str, interval: str,
                  proration_date: int, amount_today: int, next_amount: int) -> ChangeResult:
    """Apply exactly the previewed change, or return a fresh preview if the amounts moved.

    Three Stripe requests in the common case: the subscription, the preview again (the
    amounts must still hold), the update; the mirror is written from the update's answer.
    """
    plan, price = find_price(billing, plan_key, interval)
    subscription = await current_subscription(billing, customer_id=customer_id)
    first = item(subscription)
    # A renewal since the preview started a new period: Stripe prorates only within it.
    # (A scheduled change's "date" is the period end, never before the period start.)
    if proration_date < first["current_period_start"]:
        fresh = await _preview(billing, subscription, plan, price, None)
        return ChangeResult(outcome="moved", preview=fresh)
    again = await _preview(billing, subscription, plan, price, proration_date)
    if (again.proration_date, again.amount_today, again.next_amount) != (
            proration_date, amount_today, next_amount):
        fresh = await _preview(billing, subscription, plan, price, None)
        return ChangeResult(outcome="moved", preview=fresh)
    read_at = utcnow()
    await _release(billing, subscription)
    quantity = first.get("quantity") or 1
    if again.timing == PERIOD_END:
        schedule = await billing.gateway.schedule_price(
            subscription["id"], price_id=price.id, quantity=quantity,
            key=idempotency_key("schedule", subscription["id"], price.id, proration_date))
        await mirror.written(billing, dict(subscription, schedule=schedule), read_at=read_at,
                             next_amount=_next_amount(subscription, again))
        return ChangeResult(outcome="scheduled", preview=again)
    updated = await billing.gateway.change_items(
        subscription["id"], item_id=first["id"], price_id=price.id, quantity=quantity,
        proration_behavior=_behavior(again.direction), proration_date=proration_date,
        key=idempotency_key("change", subscription["id"], price.id, proration_date))
    invoice = updated.get("latest_invoice")
    invoice_id = ref_id(invoice)
    if updated.get("pending_update") is not None:
        # Stripe keeps the old plan and the update's invoice open; it voids that invoice and
        # drops the update when `pending_update.expires_at` passes (at most 23 hours).
        return ChangeResult(outcome="declined", preview=again, invoice_id=invoice_id)
    await mirror.written(billing, updated, read_at=read_at,  # /plan shows the change at once
                         next_amount=_next_amount(updated, again))
    paid = 0
    if again.amount_today and isinstance(invoice, dict):
        paid = int(invoice.get("amount_paid") or 0)
    return ChangeResult(outcome="applied", preview=again, invoice_id=invoice_id,
                        amount_paid=paid)


async def _release(billing: Billing, subscription: dict[str, Any]) -> None:
    """Drop a change queued by a schedule: the newer choice replaces it."""
    schedule = subscription.get("schedule")
    schedule_id = ref_id(schedule)
    if schedule_id is None:
        return
    if isinstance(schedule, dict) and schedule.get("status") not in ("active", "not_started"):
        return
    await billing.gateway.release_schedule(
        schedule_id, key=idempotency_key("release", schedule_id))


async def undo_scheduled(billing: Billing, *, customer_id: str, schedule_id: str) -> Price:
    """Release the subscription's schedule so the queued change never happens."""
    subscription = await current_subscription(billing, customer_id=customer_id)
    if ref_id(subscription.get("schedule")) != schedule_id:
        other = await billing.gateway.schedule(schedule_id)
        owner = ref_id(other.get("customer"))
        raise NotYours("schedule") if owner != customer_id else NotFound("schedule")
    read_at = utcnow()
    await _release(billing, subscription)
    await mirror.written(billing, dict(subscription, schedule=None), read_at=read_at)
    return _current_price(billing, subscription)
