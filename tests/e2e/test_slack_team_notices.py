"""Team notices and invoices on Slack (SPEC §6b.7, §7): a team's payment problems, renewals and
expiring cards go to every billing admin's DM, in their language, and their buttons act for
the team, for admins only.

The renewal fails the way Stripe's does (sandbox/renewals.py): at the period end Stripe
finalizes the renewal invoice and charges the default card; a decline leaves the invoice
open with `next_payment_attempt` set and sends `invoice.payment_failed`
(docs.stripe.com/billing/subscriptions/overview#failed-payments, "Smart Retries").
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from billing import teams
from billing.models import Notice, utcnow
from billing.reminders import scan_cards, scan_renewals
from tests.e2e.slack_world import Team, slack_team
from tests.fakes.slack_objects import SlackMessage, SlackUser
from tests.world import World

MONTH = 31 * 86400


@pytest.fixture
async def team(world: World) -> AsyncIterator[Team]:
    """A workspace with an admin (Ada), a German-speaking owner (Cleo) and a member (Bob)."""
    async with slack_team(world) as t:
        yield t


def _owner(team: Team) -> SlackUser:
    return team.slack.user(team.workspace, "cleo", is_owner=True, locale="de-DE")


async def _switch_card(team: Team, customer: str, card: str) -> None:
    """Save `card` as the team's card on Stripe's portal page, as an admin would."""
    billing = team.billing
    portal = await billing.gateway.create_card_update(
        customer_id=customer, return_url=team.world.url, locale="en",
        key=f"test-team-switch-{customer}-{card}")
    await asyncio.to_thread(team.world.sandbox.complete_portal, portal["id"], card)
    await team.world.settle()


async def _dm(team: Team, user: SlackUser, title: str) -> SlackMessage:
    message = await team.slack.next_message(user)
    assert message.content.startswith(f"{title}\n") or message.content.startswith(title), (
        message.content)
    return message


async def _send_now(team: Team) -> None:
    """Let the outbox send what a scan queued: the scans ran at a moment weeks ahead (the
    sandbox's clock), while the outbox runs on the real one."""
    async with team.billing.db.session() as session:
        await session.execute(update(Notice).where(Notice.status == "pending")
                              .values(send_after=utcnow()))
    assert team.world.service.outbox is not None
    team.world.service.outbox.kick()


async def _kinds(team: Team) -> list[tuple[str, str]]:
    """The admins' notices (not the team's own rows, each expanded into those)."""
    async with team.billing.db.session() as session:
        return [(n.kind, n.chat_id) for n in await session.scalars(
            select(Notice).where(Notice.kind != "team_welcome",
                                 Notice.user_id.not_like("team:%")).order_by(Notice.id))]


async def test_a_failed_team_renewal_reaches_every_admin_whose_buttons_recover_it(
        team: Team) -> None:
    """A team's renewal declines: each admin (a workspace admin, an owner, a member made
    billing admin) gets one DM, in their language; members none.
    Update card gives an admin a private card link and refuses a member; Pay now says why
    it fails; View invoices lists the open invoice to an admin only; a new card and Pay now
    recover."""
    cleo = _owner(team)
    dora = team.slack.user(team.workspace, "dora")  # a member made billing admin
    customer = await team.buy(3)
    await _dm(team, cleo, "*Team-Tarif gestartet*")  # the owner is welcomed too, in German
    async with team.billing.db.session() as session:
        await teams.add_billing_admin(session, channel="slack", team_id=team.workspace.id,
                                      user_id=dora.id, added_by=team.admin.id)
    await _switch_card(team, customer, "pm_card_chargeDeclinedInsufficientFunds")
    for admin in (team.admin, cleo, dora):  # the saved card is confirmed to each admin
        await _dm(team, admin, "*Karte geändert" if admin is cleo else "*Card updated")
    team.world.sandbox.advance_time(MONTH)
    await team.world.settle()
    failed = await _dm(team, team.admin, "*Payment failed*")
    assert "We could not charge €24.00 for your team plan." in failed.content
    assert "The card has insufficient funds." in failed.content
    assert [b["text"]["text"] for b in failed.buttons()] == [
        "Update card", "Pay €24.00 now", "View invoices"]
    german = await _dm(team, cleo, "*Zahlung fehlgeschlagen*")
    assert "24,00" in german.content, german.content
    theirs = await _dm(team, dora, "*Payment failed*")
    await team.slack.assert_no_message(team.member, within=0.2)
    await team.slack.assert_no_message(team.admin, within=0.1)  # one DM each, no more
    sent = [k for k in await _kinds(team) if k[0] == "team_payment_failed"]
    assert sorted(chat for _, chat in sent) == sorted(
        f"{team.workspace.id}:{u.id}" for u in (team.admin, cleo, dora))

    await team.driver.press(team.admin, failed, "Update card")
    private = await team.slack.next_ephemeral(team.admin)
    url = private.button("Update card")["url"]
    assert url.startswith(f"{team.world.url}/card/")
    opened = await team.world.http.get(url)
    assert opened.status_code == 302, opened.text
    assert team.world.sandbox.get(
        opened.headers["location"].rsplit("/", 1)[1])["customer"] == customer

    bob = await team.billing_command(team.member)
    for forged in ("team:card", "team:inv", f"team:pay:{_open(team, customer)['id']}"):
        await team.driver.press(team.member, bob, "Request a seat", value=forged)
        refused = await team.slack.next_ephemeral(team.member)
        assert "Only the workspace's admins" in refused.content, refused.content

    await team.driver.press(team.admin, failed, "Pay €24.00 now")
    declined = await team.slack.next_ephemeral(team.admin)
    assert "insufficient funds. Nothing was changed." in declined.content, declined.content

    await team.driver.press(team.admin, failed, "View invoices")
    listed = await team.slack.next_ephemeral(team.admin)
    assert "€24.00 · Open" in listed.content and "€24.00 · Paid" in listed.content, (
        listed.content)
    assert {"Pay €24.00 now", "PDF"} <= {b["text"]["text"] for b in listed.buttons()}

    await team.driver.press(dora, theirs, "View invoices")  # an added billing admin too
    assert "€24.00 · Open" in (await team.slack.next_ephemeral(dora)).content

    await team.world.follow(url, payment_method="pm_card_visa")  # the card page, a new card
    await team.world.settle()
    updated = await _dm(team, team.admin, "*Card updated: Visa •••• 4242*")
    await _dm(team, cleo, "*Karte geändert: Visa •••• 4242*")
    await _dm(team, dora, "*Card updated: Visa •••• 4242*")
    await team.driver.press(team.admin, updated, "Pay €24.00 now")
    paid = await team.slack.next_ephemeral(team.admin)
    assert "Paid €24.00. Thank you!" in paid.content, paid.content
    assert _open(team, customer, required=False) is None


def _open(team: Team, customer: str, *, required: bool = True) -> Any:
    found = team.world.sandbox.store.all(
        "invoice", lambda i: i["customer"] == customer and i["status"] == "open")
    assert found or not required
    return found[0] if found else None


async def test_renewal_reminders_and_expiring_cards_reach_the_admins(team: Team) -> None:
    """An admin's App Home lists the team's invoices, a member's has no such button. The
    scans find the team's renewal and its card: one reminder and one card notice per admin
    (Team plan / View invoices, Update card), none to members, none twice; an admin Slack
    no longer knows is marked unreachable."""
    cleo = _owner(team)
    customer = await team.buy(2)
    await _dm(team, cleo, "*Team-Tarif gestartet*")
    billing = team.billing
    await team.driver.app_home_opened(team.admin)  # the admin's App Home lists invoices
    home = await team.slack.wait_for_home(team.admin)
    await team.driver.press(team.admin, home, "Invoices")
    listed = await team.slack.next_message(team.admin)  # no response_url in a Home: a DM
    assert listed.content.startswith("*Invoices*") and "€16.00 · Paid" in listed.content
    assert {"PDF", "Team plan"} <= {b["text"]["text"] for b in listed.buttons()}
    await team.driver.app_home_opened(team.member)
    theirs = await team.slack.wait_for_home(team.member)
    assert "Invoices" not in {b["text"]["text"] for b in theirs.buttons()}
    sub = team.world.sandbox.store.all("subscription", lambda s: s["customer"] == customer)[0]
    ends = datetime.fromtimestamp(sub["items"]["data"][0]["current_period_end"], UTC)
    now = ends - timedelta(days=max(billing.catalog.renewal_days)) + timedelta(hours=1)
    for _ in range(2):
        await scan_renewals(billing.db, billing.catalog, billing.prices, now=now,
                            rosters=billing.rosters)
    await _send_now(team)
    reminder = await _dm(team, team.admin, "*Renewal reminder*")
    assert "renews on" in reminder.content and "€16.00 will be charged" in reminder.content
    assert [b["text"]["text"] for b in reminder.buttons()] == ["Team plan", "View invoices"]
    await _dm(team, cleo, "*Erinnerung an die Verlängerung*")

    card = team.world.sandbox.get(sub["default_payment_method"] or team.world.sandbox.get(
        customer)["invoice_settings"]["default_payment_method"])["card"]
    year, month = card["exp_year"], card["exp_month"]
    expires = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    due = expires - timedelta(days=billing.catalog.card_expiry_days) + timedelta(days=1)
    for _ in range(2):
        await scan_cards(billing.db, billing.catalog, now=due, rosters=billing.rosters)
    await _send_now(team)
    expiring = await _dm(team, team.admin, "*The team's card expires soon*")
    assert "Visa •••• 4242" in expiring.content
    await team.driver.press(team.admin, expiring, "Update card")
    assert "/card/" in (await team.slack.next_ephemeral(team.admin)).button(
        "Update card")["url"]
    await team.slack.next_message(cleo)
    await team.slack.assert_no_message(team.member, within=0.2)
    kinds = await _kinds(team)
    assert sorted(kinds) == sorted(
        (kind, f"{team.workspace.id}:{u.id}") for kind in ("team_renewal_reminder",
                                                          "team_card_expiring")
        for u in (team.admin, cleo))

    # The 1-day reminder: Slack says Cleo is gone (user_not_found): hers is unreachable, and
    # Ada's goes out all the same.
    team.slack.fail_next("chat.postMessage", status=200, error="user_not_found",
                         channel=cleo.id)
    await scan_renewals(billing.db, billing.catalog, billing.prices,
                        now=ends - timedelta(hours=23), rosters=billing.rosters)
    await _send_now(team)
    assert "renews on" in (await _dm(team, team.admin, "*Renewal reminder*")).content
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        async with billing.db.session() as session:
            last = {n.chat_id: (n.status, n.last_error) for n in await session.scalars(
                select(Notice).where(Notice.dedupe_key.like("renewal_reminder:%:1d@%"),
                                     Notice.user_id.not_like("team:%")))}  # the admins' copies
        if all(status not in ("pending", "sending") for status, _ in last.values()):
            break
        assert asyncio.get_running_loop().time() < deadline, last
        await asyncio.sleep(0.05)
    assert last == {f"{team.workspace.id}:{team.admin.id}": ("sent", None),
                    f"{team.workspace.id}:{cleo.id}": ("unreachable", "user_not_found")}


# -- seats changed ---------------------------------------------------------------------------
# A seat change is a customer.subscription.updated event whose `data.previous_attributes`
# holds the subscription's `items` as they were (Stripe puts a changed array there whole:
# https://docs.stripe.com/api/events/types#event_types-customer.subscription.updated,
# https://docs.stripe.com/api/events/object#event_object-data-previous_attributes); its
# `request` names the request that caused it, with the idempotency key sent
# (https://docs.stripe.com/api/events/object#event_object-request).

async def _dashboard_update(team: Team, customer: str, params: dict[str, Any]) -> str:
    """Change the team's subscription as Stripe's Dashboard would (a plain API request, not
    Portier's); return the subscription."""
    sub = team.world.sandbox.store.all("subscription", lambda s: s["customer"] == customer)[0]
    if "quantity" in params:
        params = {"items": [{"id": sub["items"]["data"][0]["id"],
                             "quantity": params.pop("quantity")}],
                  "proration_behavior": "create_prorations"} | params
    gateway = team.billing.gateway
    await gateway.call(gateway.v1.subscriptions.update_async, sub["id"], params)
    await team.world.settle()
    return str(sub["id"])


async def _billing_channel(team: Team) -> Any:
    where = team.slack.channel(team.workspace, "billing", members=[team.admin])
    async with team.billing.db.session() as session:
        await teams.set_billing_channel(session, channel="slack", team_id=team.workspace.id,
                                        conversation=where.id)
    return where


async def test_seats_changed_in_stripe_reach_each_admin_and_the_billing_channel(
        team: Team) -> None:
    """3 → 5 seats in Stripe's Dashboard: each billing admin gets one DM (in their language,
    with Team plan), the billing channel one line; the event delivered again, or a change of
    the subscription's metadata, tells nobody anything."""
    cleo = _owner(team)
    customer = await team.buy(3)
    await _dm(team, cleo, "*Team-Tarif gestartet*")
    billing = await _billing_channel(team)
    sub = await _dashboard_update(team, customer, {"quantity": 5})
    told = await _dm(team, team.admin, "*Seats changed*")
    assert "The team plan's seats were changed outside the chat: 3 → 5." in told.content
    assert "€40.00 per month" in told.content, told.content
    assert [b["text"]["text"] for b in told.buttons()] == ["Team plan"]
    german = await _dm(team, cleo, "*Plätze geändert*")
    assert "3 → 5" in german.content, german.content
    line = await team.slack.next_message(billing)
    assert line.content == "The team plan's seats were changed outside the chat: 3 → 5.", (
        line.content)
    await team.driver.press(team.admin, told, "Team plan")
    assert "5" in (await team.slack.next_ephemeral(team.admin)).content

    [event] = [e["id"] for e in team.world.sandbox.events("customer.subscription.updated")
               if e["data"]["object"]["id"] == sub
               and "items" in e["data"].get("previous_attributes", {})]
    team.world.sandbox.redeliver([event], times=2)
    await team.world.settle()
    await _dashboard_update(team, customer, {"metadata": {"po": "4711"}})
    await team.slack.assert_no_message(billing, within=0.3)
    for admin in (team.admin, cleo, team.member):
        await team.slack.assert_no_message(admin, within=0.1)
    assert sorted(chat for kind, chat in await _kinds(team) if kind == "team_seats_changed"
                  ) == sorted(f"{team.workspace.id}:{u.id}" for u in (team.admin, cleo))


async def test_seats_changed_with_confirm_post_only_the_audit_line(team: Team) -> None:
    """An admin confirms 3 → 4 seats in Slack: every billing admin gets the DM naming who,
    the billing channel exactly one line, the audit line."""
    cleo = _owner(team)
    customer = await team.buy(3)
    await _dm(team, cleo, "*Team-Tarif gestartet*")
    billing = await _billing_channel(team)
    plan = await team.billing_command(team.admin)
    assert (await team.driver.press(team.admin, plan, "Add or remove seats")).status == 200
    modal = await team.slack.next_view(team.admin)
    await team.driver.submit(team.admin, modal, {"answer": {"value": "4"}})
    preview = await team.slack.next_ephemeral(team.admin)
    await team.driver.press(team.admin, preview, "Confirm")
    assert "now has 4 seats" in (await team.slack.next_ephemeral(team.admin)).content
    await team.world.settle()
    line = await team.slack.next_message(billing)
    assert line.content.startswith("ada added a seat (3 → 4)"), line.content
    told = await _dm(team, team.admin, "*Seats changed*")
    assert "ada changed the team plan's seats: 3 → 4." in told.content, told.content
    german = await _dm(team, cleo, "*Plätze geändert*")
    assert "ada hat die Plätze des Team-Tarifs geändert: 3 → 4." in german.content
    await team.slack.assert_no_message(billing, within=0.3)  # one line, not two
    await team.slack.assert_no_message(team.admin, within=0.1)
    assert team.world.sandbox.store.all(
        "subscription", lambda s: s["customer"] == customer)[0]["items"]["data"][0][
            "quantity"] == 4


async def test_a_persons_quantity_change_tells_no_team(team: Team) -> None:
    """A Telegram customer's subscription changes quantity: no team notice is written."""
    user, customer = await team.world.linked_user()
    gateway = team.billing.gateway
    sub = team.world.sandbox.store.all("subscription",
                                       lambda s: s["customer"] == customer["id"])[0]
    await gateway.call(gateway.v1.subscriptions.update_async, sub["id"], {
        "items": [{"id": sub["items"]["data"][0]["id"], "quantity": 2}]})
    await team.world.settle()
    async with team.billing.db.session() as session:
        assert not (await session.scalars(select(Notice.kind).where(
            Notice.kind.like("%seats%")))).all()
    await team.world.telegram.assert_no_message(user, within=0.2)
