"""Scheduled scans of the local mirror: renewal reminders and expiring cards (SPEC §7).

Renewal reminders: for each of `[notices] renewal_days` (say 7 and 1) a subscription is due
when its renewal comes within that many days, and still more than the next smaller offset
away (a subscription 5 days before renewal gets the 7-day reminder; one 12 hours before, the
1-day one). Each scan looks only at subscriptions that crossed an offset within the last
`lookback` (a range on the indexed `current_period_end`), so a scan over a million mirrored
subscriptions touches only the few thousand that became due; dedupe keys
`renewal_reminder:<subscription>:<period end>:<days>d` make a second scan add nothing. A
subscription that crossed an offset longer than `lookback` ago (Portier down for longer, or
the mirror learnt of it late) gets the next smaller reminder only.

Expiring cards: a card expires when its expiry month ends; it is announced once, from
`card_expiry_days` before, to customers with a live subscription.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.catalog import Catalog, PriceBook
from billing.db import Database
from billing.mirror_models import MirrorCustomer, MirrorSubscription
from billing.models import ChatLink, Preference, utcnow
from billing.notices import add_many, expand_team_notices, recipient_key, send_time
from billing.team_notices import TO_EXPAND, TeamRoster, for_teams

LOOKBACK = timedelta(days=1)
CARD_LIVE = ("active", "trialing", "past_due")


@dataclass(frozen=True)
class Scan:
    """What one scan found and how many notices it added."""

    due: int
    added: int


def offsets(days: Sequence[int]) -> list[tuple[int, int]]:
    """Pair each reminder offset with the next smaller one: [7, 1] → [(7, 1), (1, 0)]."""
    ordered = sorted(set(days), reverse=True)
    return list(zip(ordered, [*ordered[1:], 0], strict=True))


def _plan_names(catalog: Catalog, prices: PriceBook | None) -> dict[str, str]:
    if prices is None:
        return {}
    names: dict[str, str] = {}
    for plan in catalog.plans:
        for key in plan.prices:
            price = prices.by_key.get(key)
            if price is not None:
                names[price.id] = plan.name
    return names


def _recipients() -> Any:
    return (ChatLink.channel, ChatLink.user_id, ChatLink.chat_id, Preference.timezone)


def _prefs_join() -> Any:
    return and_(Preference.channel == ChatLink.channel, Preference.user_id == ChatLink.user_id)


def _notice(kind: str, key: str, recipient: tuple[str, str, str, str | None],
            catalog: Catalog, now: datetime, params: dict[str, Any]) -> dict[str, Any]:
    """Return a notice row for one recipient (channel, user, chat, zone): deduplicated per
    recipient, due now or after the recipient's quiet hours."""
    channel, user_id, chat_id, zone = recipient
    return {"dedupe_key": recipient_key(key, channel, user_id), "channel": channel,
            "user_id": user_id, "chat_id": chat_id, "kind": kind,
            "send_after": send_time(kind, catalog.quiet_hours, zone, now), "params": params}


async def _renewals_due(session: AsyncSession, low: datetime, high: datetime) -> list[Any]:
    sub = MirrorSubscription
    return list((await session.execute(
        select(sub.id, sub.current_period_end, sub.price_id, sub.product_name, sub.unit_amount,
               sub.quantity, sub.next_amount, sub.currency, sub.interval, sub.interval_count,
               *_recipients())
        .join(ChatLink, ChatLink.customer_id == sub.customer_id)
        .outerjoin(Preference, _prefs_join())
        .where(sub.current_period_end > low, sub.current_period_end <= high,
               sub.status == "active", sub.cancel_at_period_end == false(),
               or_(sub.cancel_at.is_(None), sub.cancel_at > sub.current_period_end),
               sub.pause_behavior.is_(None),
               or_(Preference.reminders.is_(None), Preference.reminders.is_(True))))).all())


async def _add(session: AsyncSession, rows: list[dict[str, Any]],
               catalog: Catalog, now: datetime) -> tuple[list[dict[str, Any]], int]:
    """Add a scan's rows, each linked team's as its one waiting row (billing.team_notices);
    return the rows and how many of the people's were new."""
    rows = for_teams(rows, quiet_hours=catalog.quiet_hours, now=now)
    await add_many(session, [row for row in rows if row.get("status") == TO_EXPAND])
    return rows, await add_many(session, [row for row in rows
                                          if row.get("status") != TO_EXPAND])


async def scan_renewals(db: Database, catalog: Catalog, prices: PriceBook | None = None, *,
                        now: datetime | None = None, lookback: timedelta = LOOKBACK,
                        rosters: Mapping[str, TeamRoster] | None = None) -> Scan:
    """Queue the renewal reminders that became due; return how many were due and new."""
    now = now or utcnow()
    names = _plan_names(catalog, prices)
    rows: list[dict[str, Any]] = []
    async with db.session() as session:
        for days, smaller in offsets(catalog.renewal_days):
            low = max(now + timedelta(days=smaller), now + timedelta(days=days) - lookback)
            for (sub_id, end, price_id, product, unit, quantity, upcoming, currency, interval,
                 count, channel, user_id, chat_id, zone) in await _renewals_due(
                     session, low, now + timedelta(days=days)):
                renews = int(end.timestamp())
                key = f"renewal_reminder:{sub_id}:{renews}:{days}d"
                rows.append(_notice(
                    "renewal_reminder", key, (channel, user_id, chat_id, zone), catalog, now,
                    {"subscription": sub_id, "renews": renews, "days": days,
                     "plan": names.get(price_id) or product or price_id,
                     "amount": upcoming if upcoming is not None else unit * quantity,
                     "currency": currency, "interval": interval, "interval_count": count}))
        rows, added = await _add(session, rows, catalog, now)
    # The teams' admins are asked of the chat app now, with the scan's transaction closed.
    added += await expand_team_notices(db, rosters)
    return Scan(due=len(rows), added=added)


def expiring_months(now: datetime, days: int) -> list[tuple[int, int]]:
    """Return the (year, month) of cards that expire after `now` and within `days`."""
    months: list[tuple[int, int]] = []
    year, month = now.year, now.month
    horizon = now + timedelta(days=days)
    while True:
        ends = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)  # first moment after
        if ends > horizon:
            return months
        if ends > now:
            months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _paying(column: str) -> Any:
    """The paying card's column: the subscription's own card (Checkout's), else the customer's."""
    own = MirrorSubscription.card_id.is_not(None)
    return case((own, getattr(MirrorSubscription, column)),
                else_=getattr(MirrorCustomer, column)).label(column)


async def scan_cards(db: Database, catalog: Catalog, *, now: datetime | None = None,
                     rosters: Mapping[str, TeamRoster] | None = None) -> Scan:
    """Queue a notice for each card that pays a live subscription and expires within
    `card_expiry_days` (once per card, however many subscriptions it pays)."""
    now = now or utcnow()
    months = expiring_months(now, catalog.card_expiry_days)
    if not months:
        return Scan(due=0, added=0)
    cust, sub = MirrorCustomer, MirrorSubscription
    card_id, brand, last4, exp_month, exp_year = (_paying(c) for c in (
        "card_id", "card_brand", "card_last4", "card_exp_month", "card_exp_year"))
    paying = (select(cust.id.label("customer"), card_id, brand, last4, exp_month, exp_year)
              .join(sub, sub.customer_id == cust.id)
              .where(cust.deleted == false(), sub.status.in_(CARD_LIVE))
              .subquery())
    rows: dict[str, dict[str, Any]] = {}
    async with db.session() as session:
        found = (await session.execute(
            select(paying, *_recipients())
            .join(ChatLink, ChatLink.customer_id == paying.c.customer)
            .outerjoin(Preference, _prefs_join())
            .where(or_(*(and_(paying.c.card_exp_year == y, paying.c.card_exp_month == m)
                         for y, m in months))))).all()
        for (customer, card, brand_, last4_, month, year, channel, user_id, chat_id,
             zone) in found:
            key = f"card_expiring:{card or customer}:{year}-{month:02d}"
            rows[f"{key}:{channel}:{chat_id}"] = _notice(
                "card_expiring", key, (channel, user_id, chat_id, zone), catalog, now,
                {"customer": customer, "brand": brand_, "last4": last4_, "exp_month": month,
                 "exp_year": year})
        found_rows, added = await _add(session, list(rows.values()), catalog, now)
    added += await expand_team_notices(db, rosters)  # the transaction is closed: see above
    return Scan(due=len(found_rows), added=added)
