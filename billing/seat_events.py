"""A team's seat changes told from Stripe's events (SPEC §7: "seats changed" to every billing
admin's DM, and to the billing channel).

Unlike the other notices of billing.notice_events, a seat change is told to every billing
admin wherever it was made (one admin pressed Confirm, the others hear of it); only the
billing channel's line is left to Portier's own audit line then.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import mirror, teams
from billing.gateway import idempotency_key, ref_id
from billing.models import utcnow
from billing.notice_events import Event, made_by_portier, request_key
from billing.notices import enqueue, recipient_key, recipients, send_time
from billing.services import Billing
from billing.slack_models import TeamIntent
from billing.subscriptions import LIVE_STATUSES
from billing.team_notices import SEATS_LINE, for_teams, team_of
from billing.webhooks import on

WHO_WINDOW = timedelta(days=1)  # Stripe keeps an idempotency key 24 hours: no older intent


def _team_price_ids(billing: Billing) -> set[str]:
    return {billing.prices.by_key[key].id for key in billing.catalog.team_prices
            if key in billing.prices.by_key}


def _team_item(sub: dict[str, Any], prices: set[str], item_id: str | None = None
               ) -> dict[str, Any] | None:
    """Return the subscription's item of a team price (that item, when `item_id` names one
    of its items)."""
    items = [i for i in (sub.get("items") or {}).get("data") or []
             if ref_id(i.get("price")) in prices]
    return next((i for i in items if i.get("id") == item_id), None) or (
        items[0] if items else None)


def seat_change(prices: set[str], previous: dict[str, Any], seen: dict[str, Any]
                ) -> tuple[str, int, int] | None:
    """Return (item, seats before, seats after) when a customer.subscription.updated event
    changed the quantity of the item of a team price, else None.

    `previous_attributes` names only what changed; when an item changed, it holds the whole
    `items` list as it was (Stripe: "If an array attribute has any updated elements, this
    object contains the entire array"). The item is matched by id, else by its price.
    """
    if not isinstance(previous.get("items"), dict):
        return None
    now = _team_item(seen, prices)
    if now is None:
        return None
    was_items = previous["items"].get("data") or []
    was = next((i for i in was_items if i.get("id") == now.get("id")), None) or next(
        (i for i in was_items if ref_id(i.get("price")) == ref_id(now.get("price"))), None)
    if was is None:
        return None
    before, after = int(was.get("quantity") or 0), int(now.get("quantity") or 0)
    return (str(now["id"]), before, after) if before != after else None


async def _changed_by(session: AsyncSession, team: str, key: str) -> str | None:
    """Return who asked for a seat change Portier made: the team intent (recorded before
    Stripe was called, billing.team_intents) whose idempotency key the event names."""
    rows = await session.execute(
        select(TeamIntent.id, TeamIntent.params).where(
            TeamIntent.team_id == team, TeamIntent.created_at >= utcnow() - WHO_WINDOW))
    for intent_id, params in rows:
        if idempotency_key("team-intent", intent_id) == key:  # team_intents.Intent.key
            return str((params or {}).get("by") or "") or None
    return None


@on("customer.subscription.updated")
async def seats_changed(billing: Billing, session: AsyncSession, event: Event) -> None:
    """Tell a team's billing admins (each in their DM) that its seats changed, before → after,
    and, for a change made outside Portier (Stripe's Dashboard, another app), its billing
    channel in one line. A change Portier made (its seat Confirm, an approval: idempotency
    keys `portier-…`, Stripe's `request.idempotency_key`) has its audit line in the channel
    already: the channel gets no second line, and the DMs name who asked for it (the team
    intent under that key). One notice per event (`seats_changed:<subscription>:<event>`),
    shown only while Stripe still has the event's number of seats (a later event speaks for
    a newer one)."""
    prices = _team_price_ids(billing)
    seen = event["data"]["object"]
    found = seat_change(prices, event["data"].get("previous_attributes") or {}, seen)
    if found is None:
        return
    item_id, before, after = found
    customer = ref_id(seen.get("customer"))
    chats = [to for to in await recipients(session, customer) if team_of(to.user_id)] \
        if customer else []
    if not chats:
        return  # not a linked team's subscription (a person's seats are no team's news)
    now = await mirror.read_subscription(billing, session, seen["id"])
    item = _team_item(now, prices, item_id)
    if (now.get("status") not in LIVE_STATUSES or ref_id(now.get("customer")) != customer
            or item is None or int(item.get("quantity") or 0) != after):
        return
    ours = made_by_portier(event)
    price = item.get("price") or {}
    recurring = price.get("recurring") or {}
    params: dict[str, Any] = {
        "subscription": now["id"], "before": before, "after": after, "outside": not ours,
        "amount": int(price.get("unit_amount") or 0) * after,
        "currency": price.get("currency") or "eur",
        "interval": recurring.get("interval") or "month",
        "interval_count": int(recurring.get("interval_count") or 1)}
    key, at, quiet = f"seats_changed:{now['id']}:{event['id']}", utcnow(), \
        billing.catalog.quiet_hours
    rows = []
    for to in chats:
        team = str(team_of(to.user_id))
        by = await _changed_by(session, team, request_key(event)) if ours else None
        rows.append({"dedupe_key": recipient_key(key, to.channel, to.user_id),
                     "channel": to.channel, "user_id": to.user_id, "chat_id": to.chat_id,
                     "kind": "seats_changed", "params": params | {"by": by},
                     "send_after": send_time("seats_changed", quiet, to.timezone, at)})
        where = None if ours else await teams.billing_channel(
            session, channel=to.channel, team_id=team)
        if where is not None:  # the channel's line, as the audit line would have been
            chat = f"{team}:{where}"
            await enqueue(session, dedupe_key=recipient_key(
                f"{SEATS_LINE}:{now['id']}:{event['id']}", to.channel, chat),
                channel=to.channel, user_id=chat, chat_id=chat, kind=SEATS_LINE,
                params=params | {"team": team},
                send_after=send_time(SEATS_LINE, quiet, to.timezone, at))
    for one in for_teams(rows, quiet_hours=quiet, now=at):  # each team's waiting row
        await enqueue(session, **one)
