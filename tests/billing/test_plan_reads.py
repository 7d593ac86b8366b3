"""`/plan` through the portal: the chat user's profile and the mirror read in one snapshot."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from billing.links import link_customer
from billing.webhooks import process_pending, record
from handlers.context import Actor
from handlers.portal import Portal
from tests.billing.conftest import Shop

ACTOR = Actor(channel="telegram", user_id="41", chat_id="41", private=True, language="en")


async def _linked(shop: Shop) -> tuple[Portal, str]:
    customer = shop.customer()
    for stored in shop.sandbox.events():
        async with shop.billing.db.session() as session:
            await record(session, stored)
    while await process_pending(shop.billing):
        pass
    async with shop.billing.db.session() as session:
        await link_customer(session, channel="telegram", user_id="41", chat_id="41",
                            customer_id=customer)
    portal = Portal(shop.billing)
    await portal.command(ACTOR, "plan")  # the language is remembered on the first update
    return portal, customer


async def test_plan_is_one_read_and_no_stripe_request(shop: Shop) -> None:
    """A fresh mirror answers `/plan` in one read of the database (profile, link and the
    customer's rows in one snapshot) and no Stripe request."""
    portal, _ = await _linked(shop)
    reads: list[Any] = []
    statements: list[str] = []
    engine = shop.billing.db.rows_sync_engine
    event.listen(engine, "checkout", lambda *args: reads.append(args))
    event.listen(engine, "before_cursor_execute", lambda _c, _k, sql, *_: statements.append(sql))
    before = len(shop.sandbox.requests)
    [reply] = await portal.command(ACTOR, "plan")
    assert "Visa •••• 4242" in reply.text
    assert (len(reads), shop.sandbox.requests[before:]) == (1, [])
    assert len([sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]) == 1
    [again] = await portal.button(ACTOR, "plan")
    assert (again.text, len(reads)) == (reply.text, 2)


async def test_plan_asks_stripe_while_an_event_about_the_customer_waits(shop: Shop) -> None:
    """The rows read with the profile are stale while an event naming the customer waits:
    `/plan` reads Stripe and shows the new card (billing.mirror's freshness rule 3)."""
    portal, customer = await _linked(shop)
    seen = len(shop.sandbox.events())
    await shop.switch_card(customer, "pm_card_mastercard")
    for stored in shop.sandbox.events()[seen:]:  # stored, not processed yet
        async with shop.billing.db.session() as session:
            await record(session, stored)
    before = len(shop.sandbox.requests)
    [reply] = await portal.command(ACTOR, "plan")
    assert "Mastercard •••• 4444" in reply.text
    assert ("GET", f"/v1/customers/{customer}") in shop.sandbox.requests[before:]


async def test_plan_in_a_group_reads_no_mirror(shop: Shop) -> None:
    """In a group `/plan` only points to the private chat: the mirror is not read."""
    portal, _ = await _linked(shop)
    statements: list[str] = []
    event.listen(shop.billing.db.rows_sync_engine, "before_cursor_execute",
                 lambda _c, _cur, sql, *rest: statements.append(sql))
    group = Actor(channel="telegram", user_id="41", chat_id="-100", private=False)
    [reply] = await portal.command(group, "plan")
    assert "private chat" in reply.text
    assert not any("mirror_" in sql for sql in statements)
