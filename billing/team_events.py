"""Stripe events of teams: a completed team Checkout links the workspace that started it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billing.links import link_customer
from billing.notices import enqueue
from billing.seats import CHANNEL, team_checkout
from billing.services import Billing
from billing.teams import team_key
from billing.webhooks import on


@on("checkout.session.completed")
async def link_team_after_checkout(billing: Billing, session: AsyncSession,
                                   event: dict[str, Any]) -> None:
    """Link the workspace whose admin paid for seats in Checkout and tell them (their DM)."""
    session_id = event["data"]["object"]["id"]
    checkout = await billing.gateway.checkout_session(session_id)  # re-read, never trust
    started = team_checkout(checkout)
    if started is None:
        return
    chat_id = f"{started.team_id}:{started.user_id}"  # the admin's DM
    await link_customer(session, channel=CHANNEL, user_id=team_key(started.team_id),
                        chat_id=chat_id, customer_id=started.customer_id)
    await enqueue(session, dedupe_key=f"team_welcome:{session_id}", channel=CHANNEL,
                  user_id=chat_id, chat_id=chat_id, kind="team_welcome",
                  params={"customer": started.customer_id})
