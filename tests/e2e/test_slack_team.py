"""Teams on Slack (SPEC §6b): /billing for admins and members, connect, seats with a preview.

The real slack-bolt app of Portier's SlackChannel, against the fake Slack Web API, driven by
requests signed the way Slack signs them, with the Stripe sandbox behind billing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from billing import teams
from billing.models import Notice, StripeEvent
from billing.slack_models import ChatEvent, slack_bots
from billing.webhooks import record
from bot.service import bind, running
from bot.slack import SlackChannel
from tests.e2e.slack_world import Team, oauth_service, slack_team
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_driver import SlackDriver
from tests.world import API_KEY, World


@pytest.fixture
async def team(world: World) -> AsyncIterator[Team]:
    """A workspace with an admin (Ada) and a member (Bob), Portier's Slack app installed."""
    async with slack_team(world) as t:
        yield t


def _quantity(team: Team, customer: str) -> int:
    subs = team.world.sandbox.store.all("subscription", lambda s: s["customer"] == customer)
    return int(subs[0]["items"]["data"][0]["quantity"])


async def test_billing_for_an_admin_without_a_plan_starts_checkout(team: Team) -> None:
    """An admin's /billing offers the team plan; the seats modal takes a number within
    [team] min/max and answers with Checkout for that quantity (free text is refused); once
    paid, the workspace is linked, the admin is told by DM and /billing shows the plan."""
    answer = await team.billing_command(team.admin)
    assert "no team plan yet" in answer.content
    assert (await team.driver.press(team.admin, answer, "Start the team plan")).status == 200
    modal = await team.slack.next_view(team.admin)
    assert "How many seats" in modal.content
    await team.driver.submit(team.admin, modal, {"answer": {"value": "lots"}})
    again = await team.slack.next_view(team.admin)  # asked again, in a fresh modal
    assert "not a number" in again.content
    await team.driver.submit(team.admin, again, {"answer": {"value": "4"}})
    paid = await team.slack.next_ephemeral(team.admin)
    url = paid.button("Pay with Stripe")["url"]
    session = team.world.sandbox.get(url.rsplit("/", 1)[1])
    assert (session["amount_total"], session["metadata"]["portier_team"]) == (
        4 * 800, team.workspace.id)  # team_seat_monthly: EUR 8.00 a seat
    await team.world.follow(url)
    await team.world.settle()
    welcome = await team.slack.next_message(team.admin)  # a DM from the outbox
    assert "Team plan started" in welcome.content
    plan = await team.billing_command(team.admin)
    assert "4 seats purchased, 0 assigned" in plan.content, plan.content


async def test_every_billing_admin_is_welcomed_once_however_often_stripe_tells(
        team: Team) -> None:
    """A team Checkout welcomes each billing admin of the workspace by DM: the admin who
    paid (Ada) and an owner (Cleo, found in users.list), once each. Stripe delivering the
    events again (it may: docs.stripe.com/webhooks#handle-duplicate-events), and even a
    second event of the same Checkout, welcome nobody twice."""
    cleo = team.slack.user(team.workspace, "cleo", is_owner=True)
    await team.buy(2)  # Ada's welcome
    assert "Team plan started" in (await team.slack.next_message(cleo)).content
    sandbox, billing = team.world.sandbox, team.billing
    completed = [e["id"] for e in sandbox.store.all("event")
                 if e["type"] == "checkout.session.completed"]
    assert len(sandbox.redeliver(completed, times=2)) == 2
    await team.world.settle()
    async with billing.db.session() as session:
        event = await session.get(StripeEvent, completed[0])
        assert event is not None
        assert await record(session, event.payload | {"id": "evt_same_checkout_again"})
    await team.world.settle()
    await team.slack.assert_no_message(team.admin, within=0.2)
    await team.slack.assert_no_message(cleo, within=0.1)
    async with billing.db.session() as session:
        welcomes = sorted((n.chat_id, n.status) for n in await session.scalars(
            select(Notice).where(Notice.kind == "team_welcome")))
        handled = await session.scalar(select(func.count()).select_from(StripeEvent).where(
            StripeEvent.type == "checkout.session.completed",
            StripeEvent.status == "processed"))
    assert handled == 2  # the first delivery, and the second event of the same Checkout
    workspace = team.workspace.id
    assert welcomes == sorted([(f"{workspace}:{team.admin.id}", "expanded"),  # the team's
                               (f"{workspace}:{team.admin.id}", "sent"),
                               (f"{workspace}:{cleo.id}", "sent")])


async def test_billing_for_a_member_without_a_plan_points_to_the_admins(team: Team) -> None:
    """A member is told that an admin starts the plan and who the admins are (SPEC §6b.2:
    the workspace's admins and owners and the billing admins added; five names, then how
    many more), and gets no admin buttons."""
    for name in ("bea", "cid", "dan", "eli"):
        team.slack.user(team.workspace, name, is_owner=name == "dan", is_admin=name != "dan")
    carol, fay = team.slack.user(team.workspace, "carol"), team.slack.user(team.workspace, "fay")
    for added in (carol, fay):
        async with team.billing.db.session() as session:
            await teams.add_billing_admin(session, channel="slack", team_id=team.workspace.id,
                                          user_id=added.id, added_by=team.admin.id)
    answer = await team.billing_command(team.member)
    assert "admin or owner" in answer.content and answer.buttons() == []
    admins = answer.content.split("Your workspace's admins: ", 1)[1]
    assert admins == "ada, bea, cid, dan, eli, and 2 more.", answer.content


async def test_connect_with_a_token_links_the_workspace(team: Team) -> None:
    """`/billing connect <token>` by an admin links the workspace once; a member's does
    nothing; the token then shows the team plan to every admin."""
    customer = await team.world.customer_with_plan("team_seat_monthly")
    token = await team.world.mint(customer["id"])
    refused = await team.billing_command(team.member, f"connect {token}")
    assert "Only the workspace's admins" in refused.content
    assert await team.link_of() is None
    done = await team.billing_command(team.admin, f"connect {token}")
    assert "Connected" in done.content
    assert (await team.link_of()).customer_id == customer["id"]
    plan = await team.billing_command(team.admin)
    assert "1 seats purchased, 0 assigned" in plan.content


async def test_the_api_mints_a_token_a_workspace_admin_types(team: Team) -> None:
    """`POST /api/link-tokens` with `"channel": "slack"` answers the `/billing connect`
    command (Slack has no deep link) and the token links the workspace; an unknown channel
    is a 422 and mints nothing."""
    customer = await team.world.customer_with_plan("team_seat_monthly")
    url, auth = f"{team.world.url}/api/link-tokens", {"Authorization": f"Bearer {API_KEY}"}
    minted = await team.world.http.post(url, json={"customer": customer["id"],
                                                   "channel": "slack"}, headers=auth)
    assert minted.status_code == 201, minted.text
    body = minted.json()
    assert body["url"] is None and body["command"] == f"/billing connect {body['token']}"
    done = await team.billing_command(team.admin, body["command"].removeprefix("/billing "))
    assert "Connected" in done.content
    assert (await team.link_of()).customer_id == customer["id"]
    refused = await team.world.http.post(url, json={"customer": customer["id"],
                                                    "channel": "discord"}, headers=auth)
    assert refused.status_code == 422


async def test_add_seats_with_a_preview_then_confirm(team: Team) -> None:
    """Add seats: the modal's number → Stripe's preview → Confirm applies that quantity."""
    customer = await team.buy(3)
    plan = await team.billing_command(team.admin)
    assert "3 seats purchased" in plan.content
    await team.driver.press(team.admin, plan, "Add or remove seats")
    modal = await team.slack.next_view(team.admin)
    await team.driver.submit(team.admin, modal, {"answer": {"value": "5"}})
    preview = await team.slack.next_ephemeral(team.admin)
    assert "From 3 to 5 seats" in preview.content and "prorated" in preview.content
    await team.driver.press(team.admin, preview, "Confirm")
    done = await team.slack.next_ephemeral(team.admin)
    assert "now has 5 seats" in done.content
    assert _quantity(team, customer) == 5


async def test_seats_out_of_bounds_or_below_assigned_are_refused(team: Team) -> None:
    """0 or more than max seats, and fewer than the seats assigned, change nothing."""
    customer = await team.buy(3)
    async with team.billing.db.session() as session:
        for member in ("U1", "U2", "U3"):
            await teams.assign_seat(session, channel="slack", team_id=team.workspace.id,
                                    user_id=member)
    for typed, says in (("0", "from 1 to 500"), ("501", "from 1 to 500"),
                        ("2", "3 seats are assigned")):
        plan = await team.billing_command(team.admin)
        await team.driver.press(team.admin, plan, "Add or remove seats")
        modal = await team.slack.next_view(team.admin)
        await team.driver.submit(team.admin, modal, {"answer": {"value": typed}})
        refused = await team.slack.next_ephemeral(team.admin)
        assert says in refused.content and "Nothing was changed" in refused.content
    assert _quantity(team, customer) == 3


async def test_a_member_pressing_an_admin_action_changes_nothing(team: Team) -> None:
    """A member who presses (or forges) an admin's Confirm is refused; the seats stay."""
    customer = await team.buy(3)
    plan = await team.billing_command(team.admin)
    await team.driver.press(team.admin, plan, "Add or remove seats")
    modal = await team.slack.next_view(team.admin)
    await team.driver.submit(team.admin, modal, {"answer": {"value": "4"}})
    preview = await team.slack.next_ephemeral(team.admin)
    value = preview.button("Confirm")["value"]
    await team.driver.press(team.member, preview, "Confirm", value=value)
    refused = await team.slack.next_ephemeral(team.member)
    assert "Only the workspace's admins" in refused.content
    assert _quantity(team, customer) == 3
    team.slack.update_user(team.admin, is_admin=False)  # demoted: decided on every action
    await team.driver.press(team.admin, preview, "Confirm")
    assert "Only the workspace's admins" in (await team.slack.next_ephemeral(team.admin)).content
    assert _quantity(team, customer) == 3


async def test_another_workspaces_action_changes_nothing(team: Team) -> None:
    """An admin of another workspace sending this team's Confirm data changes nothing."""
    customer = await team.buy(3)
    plan = await team.billing_command(team.admin)
    await team.driver.press(team.admin, plan, "Add or remove seats")
    modal = await team.slack.next_view(team.admin)
    await team.driver.submit(team.admin, modal, {"answer": {"value": "4"}})
    preview = await team.slack.next_ephemeral(team.admin)
    value = preview.button("Confirm")["value"]
    other = team.slack.workspace("globex")
    eve = team.slack.user(other, "eve", is_owner=True)
    delivery = await team.driver.press(eve, preview, "Confirm", value=value)
    assert delivery.status == 200
    assert _quantity(team, customer) == 3
    assert await team.link_of(other) is None


async def test_forged_and_old_signatures_get_401_and_change_nothing(team: Team) -> None:
    """A request with a forged signature, or signed more than 5 minutes ago, gets 401."""
    customer = await team.world.customer_with_plan("team_seat_monthly")
    token = await team.world.mint(customer["id"])
    forged = await team.driver.command(team.admin, f"connect {token}", signature="v0=" + "0" * 64)
    old = await team.driver.command(team.admin, f"connect {token}",
                                    timestamp=int(time.time()) - 301)
    assert (forged.status, old.status) == (401, 401)
    await team.slack.assert_no_message(team.admin)
    assert team.slack.ephemerals(team.admin) == []
    assert await team.link_of() is None


async def test_a_retried_event_is_handled_once(team: Team) -> None:
    """Slack's retry of an event (X-Slack-Retry-Num) is acked and recorded once."""
    first = await team.driver.app_home_opened(team.admin, event_id="Ev0RETRY1")
    again = await team.driver.redeliver(first, retry_num=1)
    assert (first.status, again.status) == (200, 200)
    async with team.billing.db.session() as session:
        count = await session.scalar(select(func.count()).select_from(ChatEvent).where(
            ChatEvent.event_id == "Ev0RETRY1"))
    assert count == 1
    await team.slack.wait_for_home(team.admin)  # Bolt runs event listeners after the ack
    await team.world.settle()
    assert len(team.slack.calls("views.publish")) == 1  # the home was drawn once, not twice


async def test_every_interaction_is_acked_before_stripe_answers(team: Team) -> None:
    """Slack wants an ack within 3 seconds (https://api.slack.com/interactivity/handling
    #acknowledgment_response); with Stripe taking 2 s a request, the seats modal's submit is
    acked at once and the preview, which needs Stripe, follows."""
    await team.buy(3)
    plan = await team.billing_command(team.admin)
    await team.driver.press(team.admin, plan, "Add or remove seats")
    modal = await team.slack.next_view(team.admin)
    team.world.sandbox.latency = 2.0
    try:
        submitted = await team.driver.submit(team.admin, modal, {"answer": {"value": "5"}})
        preview = await team.slack.next_ephemeral(team.admin, timeout=15)
    finally:
        team.world.sandbox.latency = 0.0
    assert submitted.status == 200 and submitted.elapsed < 1.0, submitted.elapsed
    assert preview.at - submitted.sent_at > 2.0
    assert "prorated" in preview.content


async def test_a_member_requests_a_seat_once(team: Team) -> None:
    """A member without a seat can request one; a second request changes nothing."""
    await team.buy(3)
    team.world.service.worker.senders.pop("slack")  # the admin's DM is not looked at here
    answer = await team.billing_command(team.member)
    assert "don't hold a seat" in answer.content
    await team.driver.press(team.member, answer, "Request a seat")
    assert "went to the billing admins" in (await team.slack.next_ephemeral(team.member)).content
    again = await team.billing_command(team.member)
    await team.driver.press(team.member, again, "Request a seat")
    assert "already with the billing admins" in (
        await team.slack.next_ephemeral(team.member)).content


async def test_portier_serves_slack_when_configured(world: World) -> None:
    """With SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET, `portier run` serves POST /slack/events
    on its own server (Bolt's 401 for a forged signature) and sends Slack notices."""
    with FakeSlack() as slack:
        workspace = slack.workspace("acme")
        ada = slack.user(workspace, "ada", is_admin=True)
        assert workspace.bot_token
        settings = world.settings.model_copy(update={
            "slack_bot_token": SecretStr(workspace.bot_token),
            "slack_signing_secret": SecretStr(slack.signing_secret),
            "slack_api_base": slack.api_base, "telegram_bot_token": None})
        async with running(settings, sock=bind("127.0.0.1", 0)) as service, \
                SlackDriver(slack, service.url) as driver:
            assert (await driver.command(ada, signature="v0=" + "1" * 64)).status == 401
            assert (await driver.command(ada)).status == 200
            assert "no team plan yet" in (await slack.next_ephemeral(ada)).content
            assert "slack" in service.worker.senders
            channel = service.channel("slack")
            assert channel is not None and channel.pacing.per_chat == 1.0


async def test_an_expired_trigger_offers_a_button_that_opens_the_modal(team: Team) -> None:
    """When the trigger expired before the modal could open, the question comes with an
    Answer button whose fresh trigger opens it."""
    await team.buy(3)
    plan = await team.billing_command(team.admin)
    team.slack.trigger_ttl = 0.0
    await team.driver.press(team.admin, plan, "Add or remove seats")
    asked = await team.slack.next_ephemeral(team.admin)
    assert "How many should it have" in asked.content and team.slack.open_view(team.admin) is None
    team.slack.trigger_ttl = 3.0
    await team.driver.press(team.admin, asked, "Answer")
    modal = await team.slack.next_view(team.admin)
    await team.driver.submit(team.admin, modal, {"answer": {"value": "4"}})
    assert "From 3 to 4 seats" in (await team.slack.next_ephemeral(team.admin)).content


async def test_a_german_admin_is_answered_in_german(team: Team) -> None:
    """The Slack user's locale (users.info) picks the language of the answers."""
    team.slack.update_user(team.admin, locale="de-DE")
    answer = await team.billing_command(team.admin)
    assert "noch keinen Team-Tarif" in answer.content
    assert answer.button("Team-Tarif starten")


async def test_an_approved_request_buys_a_seat_only_when_none_is_free(team: Team) -> None:
    """A member's request reaches the billing admin's DM with Approve / Deny; approving
    with every seat taken buys one (quantity + 1), assigns it and tells the member by DM;
    the first decision wins."""
    customer = await team.buy(1)
    async with team.billing.db.session() as session:
        await teams.assign_seat(session, channel="slack", team_id=team.workspace.id,
                                user_id=team.admin.id)
    answer = await team.billing_command(team.member)
    await team.driver.press(team.member, answer, "Request a seat")
    await team.slack.next_ephemeral(team.member)
    await team.world.settle()
    asked = await team.slack.next_message(team.admin)
    assert "asks for a seat" in asked.content
    assert "No seat is free: approving adds one, €" in asked.content, asked.content
    assert "then €16.00 per month" in asked.content  # team_seat_monthly: EUR 8.00 a seat
    await team.driver.press(team.admin, asked, "Approve")
    decided = await team.slack.next_message(team.admin)  # the request's message, updated
    assert (decided.ts, decided.edited) == (asked.ts, True)
    assert "now holds a seat" in decided.content
    assert _quantity(team, customer) == 2
    await team.world.settle()
    told = await team.slack.next_message(team.member)
    assert "approved" in told.content
    again = await team.driver.act(team.admin, asked, [{
        "action_id": "portier:act:1", "block_id": "x", "type": "button",
        "value": f"team:deny:{team.member.id}", "action_ts": "1"}])
    assert again.status == 200
    assert "already decided" in (await team.slack.next_ephemeral(team.admin)).content
    mine = await team.billing_command(team.member)
    assert "You hold a seat" in mine.content
    assert _quantity(team, customer) == 2


async def test_a_denied_request_tells_the_member(team: Team) -> None:
    """Deny drops the request, buys nothing and tells the member by DM."""
    customer = await team.buy(2)
    answer = await team.billing_command(team.member)
    await team.driver.press(team.member, answer, "Request a seat")
    await team.slack.next_ephemeral(team.member)
    await team.world.settle()
    asked = await team.slack.next_message(team.admin)
    await team.driver.press(team.admin, asked, "Deny")
    assert "Declined" in (await team.slack.next_message(team.admin)).content
    await team.world.settle()
    assert "declined" in (await team.slack.next_message(team.member)).content
    assert _quantity(team, customer) == 2


async def test_app_home_shows_the_dashboard_or_the_seat(team: Team) -> None:
    """Opening the App Home publishes the team plan for an admin and the seat status, with
    Request a seat, for a member."""
    await team.buy(3)
    await team.driver.app_home_opened(team.admin)
    home = await team.slack.wait_for_home(team.admin)
    assert "3 seats purchased" in home.content and home.button("Add or remove seats")
    await team.driver.app_home_opened(team.member)
    theirs = await team.slack.wait_for_home(team.member)
    assert "don't hold a seat" in theirs.content and theirs.button("Request a seat")


async def test_oauth_install_stores_encrypted_tokens_and_uninstall_removes_them(
        world: World) -> None:
    """GET /slack/install → Slack's authorize page → /slack/oauth_redirect stores the
    installation in Portier's database with the bot token encrypted; the workspace is then
    served with its own token (rotated through the fake), its installer counting as a team
    admin; app_uninstalled removes it."""
    with FakeSlack(token_rotation=True, token_lifetime=3600) as slack:
        workspace = slack.workspace("acme", install=False)
        owner = slack.user(workspace, "olga")  # a plain member who installs the app
        async with oauth_service(world, slack) as service, \
                SlackDriver(slack, service.url) as driver:
            done = await driver.install(owner)
            assert done.status_code == 200, done.text
            db = service.runtime.billing.db
            async with db.session() as session:
                stored = (await session.execute(select(
                    slack_bots.c.bot_token, slack_bots.c.bot_refresh_token))).all()
            tokens = [token for row in stored for token in row]
            assert tokens and all(token and not token.startswith("xox") for token in tokens)
            assert all(workspace.bot_token not in token for token in tokens)
            assert (await driver.command(owner)).status == 200
            assert "Start the team plan" in (await slack.next_ephemeral(owner)).content
            assert (await driver.app_uninstalled(workspace)).status == 200
            channel = service.channel("slack")
            assert isinstance(channel, SlackChannel) and channel.store is not None
            deadline = asyncio.get_running_loop().time() + 5  # Bolt removes it after the ack
            while await channel.store.async_find_bot(enterprise_id=None, team_id=workspace.id):
                assert asyncio.get_running_loop().time() < deadline, "still installed"
                await asyncio.sleep(0.05)


async def test_only_an_admin_gets_the_card_link_and_it_opens_stripes_page(team: Team) -> None:
    """Update card gives an admin, ephemerally, Portier's card link, which opens Stripe's
    page for the team's customer; a member pressing it gets nothing."""
    customer = await team.buy(3)
    plan = await team.billing_command(team.admin)
    value = plan.button("Update card")["value"]
    await team.driver.press(team.admin, plan, "Update card")
    answer = await team.slack.next_ephemeral(team.admin)
    url = answer.button("Update card")["url"]
    assert url.startswith(f"{team.world.url}/card/")
    opened = await team.world.http.get(url)
    assert opened.status_code == 302, opened.text
    portal = team.world.sandbox.get(opened.headers["location"].rsplit("/", 1)[1])
    assert portal["customer"] == customer
    member = await team.billing_command(team.member)
    await team.driver.press(team.member, member, "Request a seat", value=value)
    refused = await team.slack.next_ephemeral(team.member)
    assert "Only the workspace's admins" in refused.content


async def test_removing_seats_previews_a_credit(team: Team) -> None:
    """Fewer seats (not below those assigned) preview a credit on the next invoice and,
    confirmed, lower the quantity."""
    customer = await team.buy(4)
    plan = await team.billing_command(team.admin)
    await team.driver.press(team.admin, plan, "Add or remove seats")
    modal = await team.slack.next_view(team.admin)
    await team.driver.submit(team.admin, modal, {"answer": {"value": "2"}})
    preview = await team.slack.next_ephemeral(team.admin)
    assert "From 4 to 2 seats" in preview.content and "credited" in preview.content
    await team.driver.press(team.admin, preview, "Confirm")
    assert "now has 2 seats" in (await team.slack.next_ephemeral(team.admin)).content
    assert _quantity(team, customer) == 2


async def test_tokens_revoked_removes_the_installation(world: World) -> None:
    """`tokens_revoked` for the bot's token removes the workspace's bot
    (https://api.slack.com/events/tokens_revoked); a command then gets only Bolt's own
    answer that the installation is no longer available."""
    with FakeSlack(token_rotation=True, token_lifetime=3600) as slack:
        workspace = slack.workspace("acme", install=False)
        owner = slack.user(workspace, "olga")
        async with oauth_service(world, slack) as service, \
                SlackDriver(slack, service.url) as driver:
            assert (await driver.install(owner)).status_code == 200
            channel = service.channel("slack")
            assert isinstance(channel, SlackChannel) and channel.store is not None
            assert await channel.store.async_find_bot(enterprise_id=None, team_id=workspace.id)
            assert (await driver.tokens_revoked(workspace)).status == 200
            deadline = asyncio.get_running_loop().time() + 5  # Bolt removes it after the ack
            while await channel.store.async_find_bot(enterprise_id=None, team_id=workspace.id):
                assert asyncio.get_running_loop().time() < deadline, "still installed"
                await asyncio.sleep(0.05)
            assert (await driver.command(owner)).status == 200
            assert "no longer available" in (await slack.next_ephemeral(owner)).content
            await slack.assert_no_message(owner)  # Bolt's answer only: no Portier reply
