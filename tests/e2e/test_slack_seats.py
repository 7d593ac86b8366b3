"""Teams on Slack (SPEC §6b.3, §6b.5, §7): assigning seats with a user picker, billing admins
and the billing channel, seat requests to every billing admin, audit lines.

The real slack-bolt app of Portier's SlackChannel against the fake Slack Web API, driven by
signed block_actions and view_submission requests; the Stripe sandbox behind billing. A
users_select in a modal submits `selected_user`, a conversations_select
`selected_conversation`, and a select in a message sends block_actions with the same field
(docs.slack.dev/reference/block-kit/block-elements/select-menu-element; "view_submission
payload": view.state.values).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from billing import teams
from tests.e2e.slack_world import Team, slack_team
from tests.fakes.slack_objects import SlackMessage, SlackUser
from tests.world import World


@pytest.fixture
async def team(world: World) -> AsyncIterator[Team]:
    """A workspace with an admin (Ada) and a member (Bob), Portier's Slack app installed."""
    async with slack_team(world) as t:
        yield t


def _quantity(team: Team, customer: str) -> int:
    subs = team.world.sandbox.store.all("subscription", lambda s: s["customer"] == customer)
    return int(subs[0]["items"]["data"][0]["quantity"])


async def _assigned(team: Team) -> list[str]:
    async with team.billing.db.session() as session:
        return await teams.assigned_seats(session, channel="slack", team_id=team.workspace.id)


async def _press_plan(team: Team, user: SlackUser, label: str) -> None:
    plan = await team.billing_command(user)
    assert (await team.driver.press(user, plan, label)).status == 200


async def _pick_in_modal(team: Team, user: SlackUser, picked: str) -> SlackMessage:
    """Submit the open modal's picker with `picked` and return the ephemeral answer."""
    modal = await team.slack.next_view(user)
    element = modal.button("value")
    assert element["type"] in ("users_select", "conversations_select"), element
    await team.driver.submit(user, modal, {"answer": {"value": picked}})
    return await team.slack.next_ephemeral(user)


async def test_assign_and_unassign_seats_with_a_user_picker(team: Team) -> None:
    """An admin assigns a free seat to a member picked in a users_select (modal, or in the
    message once the trigger expired) and takes it back among those holding one; each member
    is told by DM. No free seat offers the preview of adding one. A member pressing the
    admin's action, and another workspace's user in a picker or a button, change nothing."""
    customer = await team.buy(2)
    await _press_plan(team, team.admin, "Assign a seat")
    done = await _pick_in_modal(team, team.admin, team.member.id)
    assert "bob now holds a seat (1 of 2 assigned)" in done.content, done.content
    await team.world.settle()
    assert "gave you a seat" in (await team.slack.next_message(team.member)).content
    assert "You hold a seat" in (await team.billing_command(team.member)).content

    # A member pressing (or forging) the admin's action is refused.
    plan = await team.billing_command(team.admin)
    await team.driver.press(team.member, plan, "Assign a seat")
    assert "Only the workspace's admins" in (await team.slack.next_ephemeral(team.member)).content

    # Another workspace's user, picked in a forged submission, names nobody here.
    other = team.slack.workspace("globex")
    eve = team.slack.user(other, "eve")
    await _press_plan(team, team.admin, "Assign a seat")
    refused = await _pick_in_modal(team, team.admin, eve.id)
    assert "not a member of this workspace" in refused.content
    assert await _assigned(team) == [team.member.id]

    # The trigger expired: the picker comes in the message, its block_actions answers.
    plan = await team.billing_command(team.admin)
    team.slack.trigger_ttl = 0.0
    await team.driver.press(team.admin, plan, "Assign a seat")
    asked = await team.slack.next_ephemeral(team.admin)
    assert "Who gets a seat? 1 of 2 seats are free." in asked.content
    assert team.slack.open_view(team.admin) is None
    team.slack.trigger_ttl = 3.0
    await team.driver.press(team.admin, asked, "portier:pick", selected=team.admin.id)
    assert "ada now holds a seat (2 of 2 assigned)" in (
        await team.slack.next_ephemeral(team.admin)).content

    # Every seat is taken: adding one is previewed instead, and removing seats stops at 2.
    await _press_plan(team, team.admin, "Assign a seat")
    full = await team.slack.next_ephemeral(team.admin)
    assert "All 2 seats are assigned" in full.content
    preview = await team.slack.next_ephemeral(team.admin)
    assert "From 2 to 3 seats" in preview.content and preview.button("Confirm")
    await _press_plan(team, team.admin, "Add or remove seats")
    modal = await team.slack.next_view(team.admin)
    await team.driver.submit(team.admin, modal, {"answer": {"value": "1"}})
    assert "2 seats are assigned" in (await team.slack.next_ephemeral(team.admin)).content
    assert _quantity(team, customer) == 2

    # Unassign: pick among the members holding a seat; a forged id of elsewhere does nothing.
    await _press_plan(team, team.admin, "Unassign a seat")
    choose = await team.slack.next_ephemeral(team.admin)
    assert [b["text"]["text"] for b in choose.buttons()] == ["bob", "ada"]
    forged = await team.driver.press(team.admin, choose, "bob", value=f"team:unassign:{eve.id}")
    assert forged.status == 200
    assert "not a member of this workspace" in (
        await team.slack.next_ephemeral(team.admin)).content
    await team.driver.press(team.admin, choose, "bob")
    assert "bob no longer holds a seat" in (await team.slack.next_ephemeral(team.admin)).content
    await team.world.settle()
    assert "took back your seat" in (await team.slack.next_message(team.member)).content
    assert await _assigned(team) == [team.admin.id]
    assert _quantity(team, customer) == 2

    # Two admins assigning the last free seat at once: one gets it, the other is told.
    dan = team.slack.user(team.workspace, "dan", is_owner=True)
    cleo = team.slack.user(team.workspace, "cleo")
    await _press_plan(team, team.admin, "Assign a seat")
    await _press_plan(team, dan, "Assign a seat")
    modals = [await team.slack.next_view(team.admin), await team.slack.next_view(dan)]
    await asyncio.gather(
        team.driver.submit(team.admin, modals[0], {"answer": {"value": team.member.id}}),
        team.driver.submit(dan, modals[1], {"answer": {"value": cleo.id}}))
    answers = [(await team.slack.next_ephemeral(u)).content for u in (team.admin, dan)]
    assert sum("now holds a seat (2 of 2 assigned)" in a for a in answers) == 1, answers
    assert sum("All 2 seats are assigned" in a for a in answers) == 1, answers
    assert len(await _assigned(team)) == 2


async def test_a_request_reaches_every_billing_admin_and_the_first_decision_wins(
        team: Team) -> None:
    """A member's request goes to the DM of every billing admin — the workspace's admins and
    owners (users.list) and the members added as billing admins —; the first decision
    updates every copy (chat.update) and the later one changes nothing."""
    dan = team.slack.user(team.workspace, "dan", is_owner=True)
    await team.buy(2)
    assert "Team plan started" in (await team.slack.next_message(dan)).content  # an owner
    carol = team.slack.user(team.workspace, "carol")
    async with team.billing.db.session() as session:
        await teams.add_billing_admin(session, channel="slack", team_id=team.workspace.id,
                                      user_id=carol.id, added_by=team.admin.id)
    answer = await team.billing_command(team.member)
    await team.driver.press(team.member, answer, "Request a seat")
    await team.slack.next_ephemeral(team.member)
    await team.world.settle()
    copies = {user.name: await team.slack.next_message(user)
              for user in (team.admin, dan, carol)}
    assert all("bob asks for a seat" in c.content and "No seat is free" not in c.content
               for c in copies.values())
    await team.driver.press(carol, copies["carol"], "Approve")  # a billing admin decides
    for user in (team.admin, dan, carol):
        updated = await team.slack.next_message(user)
        assert (updated.ts, updated.edited) == (copies[user.name].ts, True)
        assert "Approved: the member now holds a seat" in updated.content, updated.content
        assert "The request of bob, decided by carol." in updated.content
        assert [b["value"] for b in updated.buttons()] == ["team:plan"]
    await team.driver.act(dan, copies["dan"], [{
        "action_id": "portier:act:1", "block_id": "x", "type": "button",
        "value": f"team:deny:{team.member.id}", "action_ts": "1"}])
    assert "already decided" in (await team.slack.next_ephemeral(dan)).content
    await team.world.settle()
    assert "approved" in (await team.slack.next_message(team.member)).content
    assert await _assigned(team) == [team.member.id]


async def test_each_copy_of_a_decided_request_keeps_its_readers_language(team: Team) -> None:
    """A German owner's copy of a request is written in German (users.info locale) and stays
    German when an English-speaking admin decides: each copy is updated in its own language,
    not the decider's."""
    dan = team.slack.user(team.workspace, "dan", is_owner=True)
    team.slack.update_user(dan, locale="de-DE")
    await team.buy(2)
    await team.slack.next_message(dan)  # the team plan's welcome
    answer = await team.billing_command(team.member)
    await team.driver.press(team.member, answer, "Request a seat")
    await team.slack.next_ephemeral(team.member)
    await team.world.settle()
    english, german = [await team.slack.next_message(user) for user in (team.admin, dan)]
    assert "bob asks for a seat" in english.content, english.content
    assert "bob bittet um einen Platz" in german.content, german.content
    await team.driver.press(team.admin, english, "Approve")
    decided = {user.name: await team.slack.next_message(user) for user in (team.admin, dan)}
    assert "Approved: the member now holds a seat" in decided["ada"].content
    assert (decided["dan"].ts, decided["dan"].edited) == (german.ts, True)
    assert "Genehmigt: Das Mitglied hat jetzt einen Platz." in decided["dan"].content
    assert "Die Anfrage von bob, entschieden von ada." in decided["dan"].content


async def test_billing_admins_and_the_billing_channel_with_audit_lines(team: Team) -> None:
    """An admin adds a billing admin (users_select) and sets the billing channel
    (conversations_select; one the app is not in is refused). Seat changes then post one
    audit line each in that channel, seat requests go there, and the billing admin can
    decide them until removed; a demoted workspace admin loses billing at once."""
    customer = await team.buy(1)
    carol = team.slack.user(team.workspace, "carol")
    eve = team.slack.user(team.workspace, "eve")
    await _press_plan(team, team.admin, "Billing admins")
    admins = await team.slack.next_ephemeral(team.admin)
    assert "No billing admin was added yet" in admins.content
    await team.driver.press(team.admin, admins, "Add a billing admin")
    assert "carol is now a billing admin" in (
        await _pick_in_modal(team, team.admin, carol.id)).content
    await team.world.settle()
    assert "made you a billing admin" in (await team.slack.next_message(carol)).content

    outside = team.slack.channel(team.workspace, "random", bot_member=False)
    billing = team.slack.channel(team.workspace, "billing", members=[team.admin, carol])
    await _press_plan(team, team.admin, "Billing channel")
    assert "can't post in that channel" in (
        await _pick_in_modal(team, team.admin, outside.id)).content
    await _press_plan(team, team.admin, "Billing channel")
    assert "now go to the billing channel" in (
        await _pick_in_modal(team, team.admin, billing.id)).content
    await team.world.settle()
    assert "made this the billing channel" in (await team.slack.next_message(billing)).content

    # A seat change: one audit line, with what the next invoice gets (Babel's money).
    await _press_plan(team, team.admin, "Add or remove seats")
    modal = await team.slack.next_view(team.admin)
    await team.driver.submit(team.admin, modal, {"answer": {"value": "3"}})
    preview = await team.slack.next_ephemeral(team.admin)
    await team.driver.press(team.admin, preview, "Confirm")
    assert "now has 3 seats" in (await team.slack.next_ephemeral(team.admin)).content
    await team.world.settle()
    line = await team.slack.next_message(billing)
    assert line.content.startswith("ada added 2 seats (1 → 3) — next invoice +€"), line.content

    await _press_plan(team, carol, "Assign a seat")  # the billing admin acts as an admin
    await _pick_in_modal(team, carol, eve.id)
    await team.world.settle()
    assert (await team.slack.next_message(billing)).content == "carol assigned a seat to eve."

    # The request goes to the billing channel; the billing admin approves it there.
    answer = await team.billing_command(team.member)
    await team.driver.press(team.member, answer, "Request a seat")
    await team.slack.next_ephemeral(team.member)
    await team.world.settle()
    asked = await team.slack.next_message(billing)
    assert "bob asks for a seat" in asked.content
    await team.driver.press(carol, asked, "Approve")
    updated = await team.slack.next_message(billing)
    assert updated.ts == asked.ts and "decided by carol" in updated.content
    await team.world.settle()
    assert (await team.slack.next_message(billing)).content == (
        "carol approved the seat request of bob.")
    assert _quantity(team, customer) == 3

    # Removed, the billing admin is a member again; demoted, the workspace admin too.
    await _press_plan(team, team.admin, "Billing admins")
    listed = await team.slack.next_ephemeral(team.admin)
    await team.driver.press(team.admin, listed, "Remove carol")
    assert "carol is no longer a billing admin" in (
        await team.slack.next_ephemeral(team.admin)).content
    plan = await team.billing_command(team.admin)
    await team.driver.press(carol, plan, "Assign a seat")
    assert "Only the workspace's admins" in (await team.slack.next_ephemeral(carol)).content
    team.slack.update_user(team.admin, is_admin=False)
    await team.driver.press(team.admin, plan, "Unassign a seat")
    assert "Only the workspace's admins" in (
        await team.slack.next_ephemeral(team.admin)).content
    assert sorted(await _assigned(team)) == sorted([eve.id, team.member.id])
