"""Handlers of the Stripe event types Portier acts on.

`billing.mirror_events` is imported first: the local mirror's handlers register (and, being
registered with `first=True`, always run) before the others, which read what they wrote.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

import billing.mirror_events  # noqa: F401 - registers the mirror's handlers first
import billing.team_events  # noqa: F401 - a team Checkout links its workspace
from billing.links import link_customer
from billing.notices import enqueue
from billing.services import Billing
from billing.shapes import ref_id
from billing.subscriptions import get_overview
from billing.webhooks import on


@on("checkout.session.completed")
async def link_after_checkout(billing: Billing, session: AsyncSession,
                              event: dict[str, Any]) -> None:
    """Link the chat user who paid in Checkout and greet them with their plan."""
    session_id = event["data"]["object"]["id"]
    checkout = await billing.gateway.checkout_session(session_id)  # re-read, never trust
    metadata = checkout.get("metadata") or {}
    channel, user_id = metadata.get("portier_channel"), metadata.get("portier_user")
    chat_id = metadata.get("portier_chat")
    customer = ref_id(checkout.get("customer"))
    if (checkout.get("status") != "complete" or not customer or not channel or not user_id
            or not chat_id or checkout.get("client_reference_id") != f"{channel}-{user_id}"):
        return
    await link_customer(session, channel=channel, user_id=user_id, chat_id=chat_id,
                        customer_id=customer)
    overview = await get_overview(billing, customer_id=customer)
    params: dict[str, Any] = {"customer": customer}
    if overview is not None:
        params |= {"plan": overview.plan_name, "amount": overview.amount,
                   "currency": overview.currency, "interval": overview.interval,
                   "renews": int(overview.current_period_end.timestamp())
                   if overview.current_period_end else None}
    await enqueue(session, dedupe_key=f"welcome:{session_id}", channel=channel, user_id=user_id,
                  chat_id=chat_id, kind="welcome", params=params)
