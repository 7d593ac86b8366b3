"""The demo's Slack workspace at the console: Block Kit as text, modals as prompts, personas
and the DMs that wait for them. (The whole team walk runs in tests/bot/test_demo.py.)"""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any, cast

import pytest

from bot.console import Console
from bot.console_slack import TEAM_ID, DemoWorkspace, block_text, modal_text, picked
from bot.outbox import Unreachable
from bot.slack_app import SlackApp
from bot.slack_render import answer_modal, blocks
from handlers.context import Actor
from handlers.flows.team import ADMIN, MEMBER, NOBODY
from handlers.replies import CONVERSATION, USER, Button, Reply, rows


class NoPortal:
    """Just what the console and the workspace ask of a portal before any update."""

    default_locale = "en"
    billing = SimpleNamespace(public_url="http://127.0.0.1:9", rosters={})

    def __init__(self) -> None:
        self.apps: dict[str, Any] = {}

    def register(self, app: Any) -> None:
        self.apps[app.name] = app


def output(console: Console) -> str:
    """Return everything the console printed so far, and start afresh."""
    out = cast(io.StringIO, console.out)
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text


@pytest.fixture
async def team() -> tuple[Console, DemoWorkspace, NoPortal]:
    """A console with the demo workspace's people, on no portal."""
    portal = NoPortal()
    console = Console(cast(Any, portal), out=io.StringIO())
    workspace = DemoWorkspace(console)
    await workspace.start()
    return console, workspace, portal


def test_block_kit_as_text() -> None:
    """Sections lose mrkdwn's escapes and stars; each actions block is one row of buttons,
    numbered across rows as Slack's elements are laid out."""
    reply = Reply("Max <asks> & waits", title="Seat request", buttons=rows(
        Button("Approve", action="team:approve:U1"), Button("Deny", action="team:deny:U1"),
        Button("Stripe", url="https://pay.example/1"), per_row=2))
    lines, buttons = block_text(blocks(reply))
    assert lines == ["Seat request", "Max <asks> & waits", "  [1] Approve   [2] Deny",
                     "  [3] Stripe ↗ (link)"]
    assert buttons == [Button("Approve", action="team:approve:U1"),
                       Button("Deny", action="team:deny:U1"),
                       Button("Stripe", url="https://pay.example/1")]
    assert block_text(blocks(Reply("x", title="T")), bold=True)[0][0] == "\033[1mT\033[0m"


def test_a_modal_is_a_prompt() -> None:
    """The modal bot.slack opens for a question: its title, the question, the input, submit."""
    view = answer_modal(Reply("How many seats?", title="Seats", expect_text=True),
                        title="Billing", submit="Continue", label="Your answer",
                        metadata={"channel": ""})
    assert modal_text(view) == ["modal “Seats”", "│ How many seats?", "│ Your answer: ▁▁▁▁▁▁",
                                "└ [Continue]  (type your answer; a /command closes it)"]


def test_a_picker_takes_a_typed_name() -> None:
    """A user or channel picker shows what to type; a typed name becomes the id Slack's
    picker would send, anything else is passed on as typed (SlackApp refuses it)."""
    view = answer_modal(Reply("Who gets a seat?", expect_text=True, pick=USER),
                        title="Billing", submit="Continue", label="Your answer",
                        metadata={"channel": ""})
    assert "│ Your answer: ▾ (pick a person: type slack-member, a name or a U… id)" in \
        modal_text(view)
    for typed in ("slack-member", "Max", "@max", "max member", "u0member"):
        assert picked(USER, typed) == "U0MEMBER"
    assert picked(CONVERSATION, "#billing") == picked(CONVERSATION, "billing") == "C0BILLING"
    assert picked(USER, "U0NOBODY") == "U0NOBODY" and picked(None, "max") == "max"


async def test_roles_come_from_the_directory_through_slacks_app(
        team: tuple[Console, DemoWorkspace, NoPortal]) -> None:
    """Slack's own ChatApp decides roles from the directory's users.info: Ada is an admin,
    Max a member, anyone else (or another workspace) nobody."""
    console, _, portal = team
    app = portal.apps["slack"]
    assert isinstance(app, SlackApp)
    admin, member = console.personas["slack-admin"], console.personas["slack-member"]
    assert admin.actor.user_id == f"{TEAM_ID}:U0ADMIN" and admin.actor.channel == "slack"
    assert app.team_of(member.actor) == (TEAM_ID, "U0MEMBER")
    assert await app.team_role(admin.actor) == ADMIN
    assert await app.team_role(member.actor) == MEMBER
    stranger = Actor("slack", "T0OTHER:U0ADMIN", "T0OTHER:U0ADMIN", True)
    assert await app.team_role(stranger) == NOBODY
    assert await portal.billing.rosters["slack"]("T0OTHER") == []  # the demo's team only


async def test_messages_wait_for_the_persona_they_are_for(
        team: tuple[Console, DemoWorkspace, NoPortal]) -> None:
    """A DM to someone else is announced with a [to …] line and shown, buttons pressable,
    once the user switches to them; a Telegram notice waits the same way."""
    console, workspace, _ = team
    await console.handle(":as slack-member")
    output(console)
    await workspace.send(f"{TEAM_ID}:U0ADMIN", Reply("Max asks for a seat.", title="Seat request",
                                                     buttons=rows(Button("Approve", action="x"))))
    await console.send("demo", Reply("You are subscribed.", title="Welcome!"))
    shown = output(console)
    assert "· [to slack-admin] a new message: “Seat request” (:as slack-admin" in shown
    assert "· [to telegram] a new message: “Welcome!”" in shown
    assert "Max asks" not in shown and console.buttons == []
    await console.handle(":as slack-admin")
    shown = output(console)
    assert "1 new message(s) for you:" in shown and "slack › DM from Portier" in shown
    assert "Max asks for a seat." in shown and console.buttons == [Button("Approve", action="x")]
    await console.handle(":as telegram")
    assert "bot › Welcome!" in output(console)
    await console.handle(":as slack-admin")
    assert "new message" not in output(console)  # shown once


async def test_slack_people_type_only_what_slack_takes(
        team: tuple[Console, DemoWorkspace, NoPortal]) -> None:
    """Slack has only /billing; free text without a modal goes nowhere; :as names who is
    who; a DM to a chat the workspace does not have is unreachable."""
    console, workspace, _ = team
    await console.handle(":as slack-admin")
    await console.handle("1")
    await console.handle("/plan")
    await console.handle("hello")
    await console.handle(":help")
    await console.handle(":as nobody")
    shown = output(console)
    assert "No buttons to press yet: try /billing." in shown
    assert "Slack: /plan is not a valid command. This app's command is /billing." in shown
    assert "In Slack this app reads no messages" in shown
    assert "/billing connect CODE" in shown and ":as NAME" in shown
    assert "There is no nobody here. Who you can play" in shown and "*slack-admin" in shown
    with pytest.raises(Unreachable):
        await workspace.send(f"{TEAM_ID}:U0NOBODY", Reply("hi"))
    await console.handle(":as telegram")
    await console.handle(":home")
    assert "Only Slack has an App Home" in output(console)


async def test_channel_posts_reach_everyone_and_copies_are_replaced(
        team: tuple[Console, DemoWorkspace, NoPortal]) -> None:
    """A post in #billing is shown to whoever types and waits for the other (announced
    once); #general, where the app is not, is unreachable. A reply that replaces a message
    sent to several people (a seat request) replaces the copy still waiting for the other."""
    console, workspace, _ = team
    await console.handle(":as slack-admin")
    output(console)
    await workspace.send(f"{TEAM_ID}:C0BILLING", Reply("Max asks for a seat.", ref="req:1",
                                                       buttons=rows(Button("Approve", "ok"))))
    shown = output(console)
    assert "slack › in #billing" in shown and shown.count("[to slack-member]") == 1
    with pytest.raises(Unreachable):
        await workspace.send(f"{TEAM_ID}:C0GENERAL", Reply("hi"))
    decided = Reply("Approved by Ada.", replaces="req:1", edit=True)
    admin = console.personas["slack-admin"]
    assert await workspace.answered(admin, [decided]) == [decided]  # type: ignore[arg-type]
    await console.handle(":as slack-member")
    shown = output(console)
    assert "Max asks" not in shown and "slack › DM from Portier (updated)" in shown
    assert "Approved by Ada." in shown and console.buttons == []
