"""A crash after the ack (SPEC §6b: "ack first, then work"): an approval or a seat change is
recorded before Stripe is called, and the resumer (billing.team_intents.resume, the
scheduler's job) settles what a crash left pending, exactly once.

The crash is the replica dying at one point of the work: the step after it is made to raise
once, in the real Slack listener against the fake Slack and the Stripe sandbox, so nothing
after that point runs. The resumer then sends the same Stripe update with the same
idempotency key; Stripe answers a repeated key with the result it saved the first time,
for 24 hours, without applying it again (https://docs.stripe.com/api/idempotent_requests;
the sandbox replays it too, with `Idempotent-Replayed: true`: sandbox/app.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import select

from billing import team_intents, teams
from billing.slack_models import TeamIntent
from tests.e2e.slack_world import Team, slack_team
from tests.fakes.slack_objects import SlackMessage
from tests.world import World


@pytest.fixture
async def team(world: World) -> AsyncIterator[Team]:
    """A workspace with an admin (Ada) and a member (Bob), Portier's Slack app installed."""
    async with slack_team(world) as t:
        yield t


def _subscription(team: Team, customer: str) -> dict[str, Any]:
    return team.world.sandbox.store.all("subscription", lambda s: s["customer"] == customer)[0]


def _quantity(team: Team, customer: str) -> int:
    return int(_subscription(team, customer)["items"]["data"][0]["quantity"])


def _updates(team: Team, customer: str) -> tuple[int, int]:
    """Return (quantity updates Stripe applied, update requests sent) for the subscription."""
    sub = _subscription(team, customer)["id"]
    sandbox = team.world.sandbox
    sent = [p for method, p in sandbox.requests if method == "POST"
            and p == f"/v1/subscriptions/{sub}"]
    return len(sandbox.store.quantity_updates.get(sub, [])), len(sent)


async def _intents(team: Team) -> list[tuple[str, str, int]]:
    async with team.billing.db.session() as session:
        rows = (await session.scalars(select(TeamIntent).order_by(TeamIntent.id))).all()
        return [(row.kind, row.status, row.attempts) for row in rows]


async def _state(team: Team) -> tuple[list[str], list[str]]:
    """Return (members holding a seat, members waiting for one)."""
    async with team.billing.db.session() as session:
        ws = team.workspace.id
        return (await teams.assigned_seats(session, channel="slack", team_id=ws),
                await teams.seat_requests(session, channel="slack", team_id=ws))


def _crash_once(monkeypatch: pytest.MonkeyPatch, step: str) -> asyncio.Event:
    """Make `team_intents.<step>` raise once, as if the replica died when it began."""
    crashed = asyncio.Event()
    real: Callable[..., Any] = getattr(team_intents, step)

    async def die(*_args: Any, **_kwargs: Any) -> Any:
        monkeypatch.setattr(team_intents, step, real)
        crashed.set()
        raise RuntimeError(f"the replica died before {step}")

    monkeypatch.setattr(team_intents, step, die)
    return crashed


async def _press_and_die(team: Team, monkeypatch: pytest.MonkeyPatch, step: str,
                         where: SlackMessage, label: str) -> None:
    """Press `label` in `where` with the replica dying at `team_intents.<step>`; return once
    the listener has unwound (the ack came first)."""
    crashed = _crash_once(monkeypatch, step)
    assert (await team.driver.press(team.admin, where, label)).status == 200
    await asyncio.wait_for(crashed.wait(), 10)
    await asyncio.sleep(0.05)  # the listener unwinds


async def _resume(team: Team) -> int:
    """One resumer pass (pending for any time at all), then the outbox sends what it queued."""
    settled = await team_intents.resume(team.billing, older_than=0)
    outbox = team.world.service.outbox
    if outbox is not None:
        outbox.kick()
    return settled


async def _told(team: Team, where: Any, text: str) -> SlackMessage:
    """Wait for the message in `where` that says `text`, skipping others (the webhooks' own
    "Seats changed" notice to the admins, say)."""
    while True:
        message = await team.slack.next_message(where)
        if text in message.content:
            return message


def _count(team: Team, where: Any, text: str) -> int:
    return sum(text in m.content for m in team.slack.messages(where))


async def _full_team(team: Team) -> tuple[str, Any]:
    """One seat, held by the admin (approving buys one); a billing channel for audit lines."""
    customer = await team.buy(1)
    billing = team.slack.channel(team.workspace, "billing", members=[team.admin])
    async with team.billing.db.session() as session:
        ws = team.workspace.id
        await teams.assign_seat(session, channel="slack", team_id=ws, user_id=team.admin.id)
        await teams.set_billing_channel(session, channel="slack", team_id=ws,
                                        conversation=billing.id)
    return customer, billing


async def _asked(team: Team, billing: Any) -> SlackMessage:
    """The member asks for a seat; return the request as the billing channel shows it."""
    answer = await team.billing_command(team.member)
    await team.driver.press(team.member, answer, "Request a seat")
    await team.slack.next_ephemeral(team.member)
    await team.world.settle()
    asked = await team.slack.next_message(billing)
    assert "bob asks for a seat" in asked.content and "No seat is free" in asked.content
    return asked


async def test_a_crash_after_stripe_bought_the_seat_is_resumed_once(
        team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    """The replica dies after Stripe's quantity update of an approval: the request is
    claimed, Stripe has +1, no seat is assigned. One resumer pass sends the update again with
    the intent's key (Stripe replays it: still +1 once), assigns the seat, posts one audit
    line, DMs the member once and tells the admin; a second pass finds nothing."""
    customer, billing = await _full_team(team)
    asked = await _asked(team, billing)
    await _press_and_die(team, monkeypatch, "complete", asked, "Approve")
    assert _quantity(team, customer) == 2 and _updates(team, customer) == (1, 1)
    assert await _state(team) == ([team.admin.id], [])  # claimed, not assigned
    assert await _intents(team) == [("approve", "pending", 0)]

    assert await _resume(team) == 1
    assert await _state(team) == ([team.admin.id, team.member.id], [])
    assert _quantity(team, customer) == 2
    assert _updates(team, customer) == (1, 2)  # sent again, applied once: replayed
    assert await _intents(team) == [("approve", "done", 1)]
    assert "approved" in (await team.slack.next_message(team.member)).content
    line = await team.slack.next_message(billing)
    assert line.content.startswith("ada approved the seat request of bob. ada added a seat "
                                   "(1 → 2) — next invoice +€"), line.content
    await _told(team, team.admin, "Approved: the member now holds a seat")
    assert await _resume(team) == 0
    await team.slack.assert_no_message(team.member)
    await asyncio.sleep(0.2)
    assert _count(team, team.member, "approved") == 1
    assert _count(team, billing, "approved the seat request") == 1


async def test_a_crash_before_stripe_is_resumed_and_the_admin_hears_back(
        team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    """A seat change confirmed, the replica dies before Stripe is asked: the resumer applies
    it once (one quantity update), posts its audit line and tells the admin it is done."""
    customer, billing = await _full_team(team)
    plan = await team.billing_command(team.admin)
    await team.driver.press(team.admin, plan, "Add or remove seats")
    modal = await team.slack.next_view(team.admin)
    await team.driver.submit(team.admin, modal, {"answer": {"value": "3"}})
    preview = await team.slack.next_ephemeral(team.admin)
    await _press_and_die(team, monkeypatch, "_stripe", preview, "Confirm")
    assert _quantity(team, customer) == 1 and _updates(team, customer) == (0, 0)
    assert await _intents(team) == [("seats", "pending", 0)]

    assert await _resume(team) == 1
    assert _quantity(team, customer) == 3 and _updates(team, customer) == (1, 1)
    assert await _intents(team) == [("seats", "done", 1)]
    line = await team.slack.next_message(billing)
    assert line.content.startswith("ada added 2 seats (1 → 3) — next invoice +€"), line.content
    await _told(team, team.admin, "Done: the team now has 3 seats.")
    assert await _resume(team) == 0
    await asyncio.sleep(0.2)
    assert _count(team, billing, "added 2 seats") == 1

    # The same Confirm pressed again names the same intent: nothing more is changed.
    await team.driver.press(team.admin, preview, "Confirm")
    assert "now has 3 seats" in (await team.slack.next_ephemeral(team.admin)).content
    assert _updates(team, customer) == (1, 1)


async def test_a_refused_stripe_call_changes_nothing_and_the_request_waits_again(
        team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    """The resumed approval's update is refused (the subscription's 200 quantity updates an
    hour are spent: Stripe answers 429 rate_limit, docs.stripe.com/rate-limits): the intent
    fails, the seat stays unbought and unassigned, the request waits again, and the admin is
    told that nothing was changed."""
    customer, billing = await _full_team(team)
    asked = await _asked(team, billing)
    await _press_and_die(team, monkeypatch, "_stripe", asked, "Approve")
    assert await _state(team) == ([team.admin.id], [])
    sandbox = team.world.sandbox
    sub = _subscription(team, customer)["id"]
    sandbox.store.quantity_updates[sub] = [sandbox.store.now()] * 200

    assert await _resume(team) == 1
    assert await _intents(team) == [("approve", "failed", 1)]
    assert _quantity(team, customer) == 1
    assert await _state(team) == ([team.admin.id], [team.member.id])
    told = await _told(team, team.admin, "did not go through")
    assert "Nothing was changed; the request waits again." in told.content, told.content
    await team.slack.assert_no_message(team.member)
    assert _count(team, billing, "approved") == 0

    # The request is back: approving it again (the limit over) buys the seat.
    sandbox.store.quantity_updates[sub] = []
    await team.driver.press(team.admin, asked, "Approve")
    await _told(team, billing, "Approved: the member now holds a seat")
    assert await _state(team) == ([team.admin.id, team.member.id], [])
    assert _quantity(team, customer) == 2


async def test_two_resumers_at_once_settle_an_intent_once(
        team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two resumers (two replicas, each its own session) pass over one pending approval at
    once: one takes it, the seat is bought and assigned once, one DM, one audit line."""
    customer, billing = await _full_team(team)
    asked = await _asked(team, billing)
    await _press_and_die(team, monkeypatch, "_stripe", asked, "Approve")

    settled = await asyncio.gather(*(team_intents.resume(team.billing, older_than=0)
                                     for _ in range(2)))
    assert sorted(settled) == [0, 1]
    team.world.service.outbox.kick()  # type: ignore[union-attr]
    assert await _intents(team) == [("approve", "done", 1)]
    assert await _state(team) == ([team.admin.id, team.member.id], [])
    assert _quantity(team, customer) == 2 and _updates(team, customer)[0] == 1
    await _told(team, team.member, "approved")
    await _told(team, billing, "approved the seat request of bob")
    await asyncio.sleep(0.2)
    assert _count(team, team.member, "approved") == 1
    assert _count(team, billing, "approved the seat request") == 1
