"""Team seats: the per-seat plan a workspace buys, previews of seat changes, applying them.

A team is one Stripe customer with one subscription to the catalog's `[team]` price; its
quantity is the number of seats purchased. A seat change is previewed with one proration date
and confirmed with that same date, so Stripe charges exactly what the preview said. Changes
use `create_prorations`: what they cost waits on the next invoice instead of an invoice per
change (Stripe allows a subscription 200 quantity updates an hour but 20 new invoices a day).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing import mirror
from billing.catalog import Price
from billing.errors import BillingError, NoSubscription, NotFound
from billing.gateway import idempotency_key
from billing.mirror_models import MirrorSubscription
from billing.models import utcnow
from billing.services import Billing
from billing.shapes import item, ref_id, when
from billing.subscriptions import LIVE_STATUSES, Card, checkout_reference, paying_card

CHANNEL = "slack"  # the channel that sells seats (SPEC §6b); named in Checkout's metadata
# A workspace, team or user id as chat apps write them (Slack: T…, E…, U…, W…).
_REFERENCE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class NoTeamPlan(NoSubscription):
    """The customer has no live subscription to the catalog's team price."""

    code = "no_team_plan"


class SeatsOutOfRange(BillingError):
    """The number of seats is outside the catalog's `[team]` min_seats..max_seats."""

    code = "seats_out_of_range"

    def __init__(self, seats: int, minimum: int, maximum: int) -> None:
        super().__init__(f"{seats} seats: allowed are {minimum} to {maximum}")
        self.seats, self.minimum, self.maximum = seats, minimum, maximum


class BelowAssigned(BillingError):
    """The number of seats is below the seats already assigned to members."""

    code = "below_assigned"

    def __init__(self, seats: int, assigned: int) -> None:
        super().__init__(f"{seats} seats but {assigned} are assigned")
        self.seats, self.assigned = seats, assigned


class SameSeats(BillingError):
    """The team already has exactly this many seats."""

    code = "same_seats"


class BadReference(BillingError):
    """A team or user id that is not one (empty, too long, or odd characters)."""

    code = "bad_reference"


@dataclass(frozen=True)
class TeamOverview:
    """What the team-plan dashboard shows: plan, seats, renewal, next invoice, card."""

    customer_id: str
    subscription_id: str
    plan_name: str
    price: Price
    seats: int
    status: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    next_amount: int | None
    currency: str
    card: Card | None


@dataclass(frozen=True)
class SeatPreview:
    """A seat change: what it adds to the next invoice (negative: a credit), then per period."""

    subscription_id: str
    current_seats: int
    seats: int
    proration_date: int
    prorated: int
    next_amount: int  # the whole next invoice, this change and earlier ones included
    per_period: int  # unit amount × seats, from the invoice after next
    currency: str
    interval: str
    interval_count: int
    next_invoice_at: datetime | None


@dataclass(frozen=True)
class SeatChange:
    """How a confirmed seat change ended: applied, or moved (the amount changed: a new preview)."""

    outcome: str
    preview: SeatPreview


def team_prices(billing: Billing) -> list[Price]:
    """Return the catalog's `[team]` prices that resolved to Stripe prices."""
    keys = billing.catalog.team_prices
    return [billing.prices.by_key[k] for k in keys if k in billing.prices.by_key]


def _team_price(billing: Billing, price_id: str | None) -> Price | None:
    return next((p for p in team_prices(billing) if p.id == price_id), None)


def _team_row(billing: Billing, rows: list[MirrorSubscription]) -> MirrorSubscription | None:
    live = [r for r in rows if r.status in LIVE_STATUSES and _team_price(billing, r.price_id)]
    return max(live, key=lambda r: (r.created, r.id)) if live else None


async def team_overview(billing: Billing, *, customer_id: str) -> TeamOverview | None:
    """Return the team's plan from the local mirror, or None without a team subscription."""
    customer, rows = await mirror.view_rows(billing, customer_id)
    row = _team_row(billing, rows)
    price = _team_price(billing, row.price_id) if row else None
    if customer is None or row is None or price is None:
        return None
    return TeamOverview(
        customer_id=customer.id, subscription_id=row.id,
        plan_name=price.product_name or row.product_name or price.lookup_key, price=price,
        seats=row.quantity, status="paused" if row.pause_behavior else row.status,
        current_period_end=row.current_period_end,
        cancel_at_period_end=row.cancel_at_period_end, next_amount=row.next_amount,
        currency=row.currency, card=paying_card(customer, row))


def check_seats(billing: Billing, seats: int, *, assigned: int = 0) -> None:
    """Refuse a seat count outside `[team]` min..max or below the seats assigned."""
    low, high = billing.catalog.min_seats, billing.catalog.max_seats
    if isinstance(seats, bool) or not isinstance(seats, int) or not low <= seats <= high:
        raise SeatsOutOfRange(seats, low, high)
    if seats < assigned:
        raise BelowAssigned(seats, assigned)


async def _team_subscription(billing: Billing, customer_id: str) -> dict[str, Any]:
    """Return the team subscription as Stripe has it now (one request; NoTeamPlan if none)."""
    _, rows = await mirror.view_rows(billing, customer_id)
    row = _team_row(billing, rows)
    if row is None:
        raise NoTeamPlan("team")
    subscription = await billing.gateway.subscription(row.id)
    if (ref_id(subscription["customer"]) != customer_id
            or subscription["status"] not in LIVE_STATUSES
            or _team_price(billing, item(subscription)["price"]["id"]) is None):
        raise NoTeamPlan("team")
    return subscription


def _is_proration(line: dict[str, Any]) -> bool:
    details = (line.get("parent") or {}).get("subscription_item_details") or {}
    return bool(details.get("proration"))


async def _preview(billing: Billing, subscription: dict[str, Any], seats: int,
                   proration_date: int | None) -> SeatPreview:
    first = item(subscription)
    current = int(first.get("quantity") or 0)
    if seats == current:
        raise SameSeats(str(seats))
    price = _team_price(billing, first["price"]["id"])
    if price is None:
        raise NoTeamPlan("team")
    invoice = await billing.gateway.preview_quantity(
        subscription["id"], item_id=first["id"], quantity=seats, proration_date=proration_date)
    prorations = [ln for ln in invoice["lines"]["data"] if _is_proration(ln)]
    # Without a date, Stripe prorates from its own now: where this change's lines start.
    # (Earlier changes' lines, still pending for the next invoice, start before it.) With
    # no line at all there is no time left to prorate: any date in the period serves.
    date = proration_date or max(
        (int(ln["period"]["start"]) for ln in prorations),
        default=max(int(time.time()), int(first["current_period_start"])))
    prorated = sum(int(ln["amount"]) for ln in prorations if ln["period"]["start"] == date)
    return SeatPreview(
        subscription_id=subscription["id"], current_seats=current, seats=seats,
        proration_date=date, prorated=prorated, next_amount=int(invoice["amount_due"]),
        per_period=price.unit_amount * seats, currency=price.currency, interval=price.interval,
        interval_count=price.interval_count, next_invoice_at=when(first["current_period_end"]))


async def preview_seats(billing: Billing, *, customer_id: str, seats: int, assigned: int,
                        proration_date: int | None = None) -> SeatPreview:
    """Preview changing the team's seats to `seats`, at one proration date."""
    check_seats(billing, seats, assigned=assigned)
    subscription = await _team_subscription(billing, customer_id)
    return await _preview(billing, subscription, seats, proration_date)


async def seat_to_buy(billing: Billing, *, customer_id: str,
                      assigned: int) -> SeatPreview | None:
    """Return the preview of buying one more seat, or None while a purchased seat is free."""
    subscription = await _team_subscription(billing, customer_id)
    purchased = int(item(subscription).get("quantity") or 0)
    if assigned < purchased:
        return None
    check_seats(billing, purchased + 1, assigned=assigned)
    return await _preview(billing, subscription, purchased + 1, None)


async def confirm_seats(billing: Billing, *, customer_id: str, seats: int, proration_date: int,
                        amount: int, assigned: int = 0, key: str | None = None,
                        resumed: bool = False, before: int | None = None) -> SeatChange:
    """Apply exactly the previewed seat change, or return a fresh preview if `amount` moved.

    Three Stripe requests: the subscription, the preview again at the same proration date
    (the amount must still hold), the update; the mirror is written from the update's answer.
    `key` is the update's idempotency key (billing.team_intents derives it from the intent
    that recorded the change); without one, two confirms of one preview send the same key
    made of the change itself, so Stripe changes the seats once. `assigned` is checked
    again: a seat assigned since the preview may forbid it now.

    `resumed` (an intent settled after a crash): a team that already has `seats` got them
    from this very change before the crash, so the update is sent again with its key and
    Stripe answers what it did then (docs.stripe.com/api/idempotent_requests: the same
    result for 24 hours) instead of changing anything twice; `before` is what it had.
    """
    check_seats(billing, seats, assigned=assigned)
    subscription = await _team_subscription(billing, customer_id)
    first = item(subscription)
    current = int(first.get("quantity") or 0)
    in_period = proration_date >= int(first["current_period_start"])
    if resumed and key is not None and current == seats and in_period:
        return SeatChange("applied", await _replay(billing, subscription, seats,
                                                   proration_date, amount, before, key))
    # A renewal since the preview started a new period: Stripe prorates only within it.
    if not in_period:
        return SeatChange("moved", await _preview(billing, subscription, seats, None))
    again = await _preview(billing, subscription, seats, proration_date)
    if again.prorated != amount:
        return SeatChange("moved", await _preview(billing, subscription, seats, None))
    read_at = utcnow()
    updated = await billing.gateway.change_quantity(
        subscription["id"], item_id=first["id"], quantity=seats, proration_date=proration_date,
        key=key or idempotency_key("seats", subscription["id"], first["id"],
                                   again.current_seats, seats, proration_date))
    next_amount = mirror.ASK_STRIPE if updated.get("discounts") else again.next_amount
    await mirror.written(billing, updated, read_at=read_at, next_amount=next_amount)
    return SeatChange("applied", again)


async def _replay(billing: Billing, subscription: dict[str, Any], seats: int,
                  proration_date: int, amount: int, before: int | None,
                  key: str) -> SeatPreview:
    """Send a seat change Stripe already applied again, with its key; return what it was."""
    first = item(subscription)
    price = _team_price(billing, first["price"]["id"])
    if price is None:
        raise NoTeamPlan("team")
    read_at = utcnow()
    updated = await billing.gateway.change_quantity(
        subscription["id"], item_id=first["id"], quantity=seats, proration_date=proration_date,
        key=key)
    await mirror.written(billing, updated, read_at=read_at)
    return SeatPreview(
        subscription_id=subscription["id"], current_seats=seats if before is None else before,
        seats=seats, proration_date=proration_date, prorated=amount, next_amount=0,
        per_period=price.unit_amount * seats, currency=price.currency, interval=price.interval,
        interval_count=price.interval_count, next_invoice_at=when(first["current_period_end"]))


def _reference(value: str, name: str) -> str:
    if not isinstance(value, str) or not _REFERENCE.match(value):
        raise BadReference(name)
    return value


async def start_team_checkout(billing: Billing, *, team_id: str, user_id: str, seats: int,
                              locale: str, customer_id: str | None = None) -> str:
    """Create a Checkout Session for `seats` seats of the team price and return its URL."""
    team_id, user_id = _reference(team_id, "team"), _reference(user_id, "user")
    check_seats(billing, seats)
    prices = team_prices(billing)
    if not prices:
        raise NotFound("team price")
    price = prices[0]
    hour = int(time.time() // 3600)  # a double tap within the hour reuses the same session
    metadata = {"portier_channel": CHANNEL, "portier_team": team_id, "portier_user": user_id}
    session = await billing.gateway.create_checkout(
        price_id=price.id, quantity=seats, customer_id=customer_id,
        client_reference_id=checkout_reference(CHANNEL, f"{team_id}-{user_id}"),
        metadata=metadata,
        success_url=billing.return_url(session_id="{CHECKOUT_SESSION_ID}", lang=locale),
        cancel_url=billing.return_url(canceled="1", lang=locale),
        locale=locale,
        key=idempotency_key("team-checkout", team_id, user_id, customer_id, price.id, seats,
                            hour))
    if not session.get("url"):
        raise NotFound("checkout url")
    return str(session["url"])


@dataclass(frozen=True)
class TeamCheckout:
    """Who started a completed team Checkout: the team, the user, and the customer it made."""

    team_id: str
    user_id: str
    customer_id: str


def team_checkout(session: dict[str, Any]) -> TeamCheckout | None:
    """Return the team and user a completed Checkout Session was started for, if it was."""
    metadata = session.get("metadata") or {}
    team_id, user_id = metadata.get("portier_team"), metadata.get("portier_user")
    customer = ref_id(session.get("customer"))
    if (metadata.get("portier_channel") != CHANNEL or session.get("status") != "complete"
            or not isinstance(team_id, str) or not isinstance(user_id, str) or not customer
            or not _REFERENCE.match(team_id) or not _REFERENCE.match(user_id)
            or session.get("client_reference_id")
            != checkout_reference(CHANNEL, f"{team_id}-{user_id}")):
        return None
    return TeamCheckout(team_id=team_id, user_id=user_id, customer_id=customer)
