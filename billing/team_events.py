"""Stripe events of teams: a completed team Checkout links the workspace that started it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billing.links import link_customer
from billing.models import utcnow
from billing.notices import enqueue, recipient_key
from billing.seats import CHANNEL, team_checkout
from billing.services import Billing
from billing.team_notices import for_teams
from billing.teams import team_key
from billing.webhooks import on


@on("checkout.session.completed")
async def link_team_after_checkout(billing: Billing, session: AsyncSession,
                                   event: dict[str, Any]) -> None:
    """Link the workspace whose admin paid for seats in Checkout and welcome each of its
    billing admins (their DMs; the payer, an admin, among them once)."""
    session_id = event["data"]["object"]["id"]
    checkout = await billing.gateway.checkout_session(session_id)  # re-read, never trust
    started = team_checkout(checkout)
    if started is None:
        return
    chat_id = f"{started.team_id}:{started.user_id}"  # the paying admin's DM
    team = team_key(started.team_id)
    await link_customer(session, channel=CHANNEL, user_id=team, chat_id=chat_id,
                        customer_id=started.customer_id)
    # The team's one waiting row (a second delivery finds its key taken); its admins' copies
    # are made after this transaction, the roster asked outside it (billing.team_notices).
    row = {"dedupe_key": recipient_key(f"team_welcome:{session_id}", CHANNEL, team),
           "channel": CHANNEL, "user_id": team, "chat_id": chat_id, "kind": "team_welcome",
           "params": {"customer": started.customer_id}}
    for one in for_teams([row], quiet_hours=None, now=utcnow()):
        await enqueue(session, **one)
