"""The demo's Slack workspace, played at the console: a team admin and a member.

A line typed as one of them becomes the portal call bot.slack makes for the same act in
Slack — `/billing …` the slash command, a button's number its `block_actions` value, a
modal's answer its `view_submission` text — with the actor bot.slack builds ("T…:U…" on
channel "slack", private) and the role bot.slack's own SlackApp reads from `users.info`,
answered here from a small directory instead of Slack's Web API. Replies are shown as the
Block Kit bot.slack_render makes of them, turned into text; a reply that asks for an answer
opens a modal (a slash command or a button press always has a trigger here), shown as a
prompt. The workspace is also the demo's "slack" channel: the outbox's DMs to its people
land in the console, for whichever of them they are meant; and, as bot.slack's roster
does from `users.list`, it names the team's billing admins for the team's notices.
"""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute

from billing.team_notices import TeamAdmin
from bot.channels import Pacing
from bot.console import Console, Persona
from bot.outbox import Unreachable
from bot.slack import CHANNEL, SlackApp
from bot.slack_render import answer_modal, blocks
from handlers.context import Actor
from handlers.i18n import N_, pick_locale, translate
from handlers.portal import Portal
from handlers.replies import Button, Reply

TEAM_ID = "T0DEMO"
TEAM_NAME = "Acme Team"
_BOLD = re.compile(r"^\*(.+)\*$")


@dataclass(frozen=True)
class Person:
    """A member of the demo workspace, as `users.info` would describe them."""

    persona: str  # what `:as` calls them
    user_id: str
    real_name: str
    admin: bool

    def user(self, locale: str) -> dict[str, Any]:
        """Return their `users.info` user object (the fields bot.slack reads)."""
        return {"id": self.user_id, "team_id": TEAM_ID, "name": self.real_name.split()[0].lower(),
                "real_name": self.real_name, "is_admin": self.admin, "is_owner": False,
                "is_primary_owner": False, "is_restricted": False, "is_ultra_restricted": False,
                "is_bot": False, "deleted": False, "locale": locale, "tz": "UTC"}


PEOPLE = (Person("slack-admin", "U0ADMIN", "Ada Admin", admin=True),
          Person("slack-member", "U0MEMBER", "Max Member", admin=False))


def _mrkdwn(text: str, *, bold: bool) -> list[str]:
    """Turn a section's mrkdwn back into lines: a starred line is bold, escapes undone."""
    lines = []
    for line in text.splitlines():
        found = _BOLD.match(line)
        if found:
            line = f"\033[1m{found.group(1)}\033[0m" if bold else found.group(1)
        lines.append(html.unescape(line))
    return lines


def block_text(shown: Sequence[dict[str, Any]], *, bold: bool = False
               ) -> tuple[list[str], list[Button]]:
    """Render Block Kit blocks as lines: sections as text, each actions block as one row of
    numbered buttons; return the lines and the buttons in their numbering."""
    lines: list[str] = []
    buttons: list[Button] = []
    for block in shown:
        kind = block.get("type")
        if kind == "section":
            lines += _mrkdwn(str((block.get("text") or {}).get("text") or ""), bold=bold)
        elif kind == "actions":
            row = []
            for element in block.get("elements") or []:
                label = str((element.get("text") or {}).get("text") or "")
                if element.get("type") != "button":
                    row.append(f"({element.get('type')}: {label})")
                    continue
                buttons.append(Button(label, action=element.get("value"),
                                      url=element.get("url")))
                link = " ↗ (link)" if element.get("url") else ""
                row.append(f"[{len(buttons)}] {label}{link}")
            lines.append("  " + "   ".join(row))
        else:
            lines.append(f"({kind})")
    return lines, buttons


def modal_text(view: dict[str, Any], *, bold: bool = False) -> list[str]:
    """Render a modal view as a prompt: its title, question, input and submit button."""
    lines = [f"modal “{view['title']['text']}”"]
    for block in view.get("blocks") or []:
        if block.get("type") == "section":
            lines += [f"│ {line}" for line in _mrkdwn(block["text"]["text"], bold=bold)]
        elif block.get("type") == "input":
            lines.append(f"│ {block['label']['text']}: ▁▁▁▁▁▁")
    lines.append(f"└ [{view['submit']['text']}]  (type your answer; a /command closes it)")
    return lines


def framed(tag: str, lines: list[str]) -> str:
    """Lay out a Slack message: `slack › tag`, then its lines indented."""
    return "\n".join([f"slack › {tag}", *(f"        {line}".rstrip() for line in lines)])


class SlackPersona(Persona):
    """A person of the demo workspace: their lines reach the portal as bot.slack's do."""

    settles = True  # a request or an approval DMs someone: show it before the next line
    first = "/billing"

    def __init__(self, person: Person, *, language: str, default_locale: str) -> None:
        actor = Actor(channel=CHANNEL, user_id=f"{TEAM_ID}:{person.user_id}",
                      chat_id=f"{TEAM_ID}:{person.user_id}", private=True,
                      language=language, name=person.real_name)
        role = "a workspace admin" if person.admin else "a member"
        super().__init__(person.persona, actor,
                         about=f"{person.real_name}, {role} of {TEAM_NAME} on Slack")
        self.locale = pick_locale(language, default=default_locale)

    @property
    def prompt(self) -> str:
        """Return what a typed line is echoed after: who typed it."""
        return f"you ({self.name}) › "

    def view(self, reply: Reply, *, bold: bool, where: str) -> tuple[str, list[Button]]:
        """Show the reply as Slack would: a modal where an answer asks for one (as
        bot.slack.answer opens it), else its Block Kit: ephemeral, a DM or the App Home."""
        if reply.expect_text and where == "reply":
            view = answer_modal(reply, title=translate(self.locale, N_("Billing")),
                                submit=translate(self.locale, N_("Continue")),
                                label=translate(self.locale, N_("Your answer")),
                                metadata={"channel": ""})
            head, *rest = modal_text(view, bold=bold)
            return framed(head, rest), []
        lines, buttons = block_text(blocks(reply), bold=bold)
        tag = {"pushed": "DM from Portier", "home": "App Home"}.get(where) or (
            "only visible to you (updates the message)" if reply.edit
            else "only visible to you")
        return framed(tag, lines), buttons

    async def command(self, portal: Portal, name: str, args: str) -> list[Reply] | str:
        """Run `/billing …`, the app's one slash command; Slack refuses any other."""
        self.expect_text = False  # typing a command leaves the modal
        if name.lower() != "billing":
            return f"Slack: /{name} is not a valid command. This app's command is /billing."
        return await portal.command(self.actor, "billing", args)

    async def say(self, portal: Portal, text: str) -> list[Reply] | str:
        """Submit the open modal with the typed answer (Slack has nowhere else for text)."""
        if not self.expect_text:
            return ("In Slack this app reads no messages: type /billing, a button's number, "
                    "or :home.")
        self.expect_text = False  # submitting closes the modal
        return await portal.text(self.actor, text)

    async def home(self, portal: Portal) -> list[Reply] | str:
        """Open the App Home tab: the same replies as `/billing` (bot.slack.on_home)."""
        return await portal.command(self.actor, "billing", "")

    def commands(self, portal: Portal) -> str:
        """Return what a Slack user types."""
        return ("Slack commands:\n"
                "  /billing              the team plan: seats, requests, card\n"
                "  /billing connect CODE connect a subscription (portier link --slack)\n"
                "  :home                 the app's App Home tab\n")


class DemoWorkspace:
    """The demo's Slack workspace: its people at the console, and the "slack" channel that
    registers bot.slack's SlackApp (roles from the directory) and prints their DMs."""

    name = CHANNEL
    pacing = Pacing(per_chat=0.0)  # one reader at a terminal: nothing to protect

    def __init__(self, console: Console, *, language: str | None = None) -> None:
        self.console = console
        locale = pick_locale(language, default=console.portal.default_locale)
        self.locale = locale
        self.users = {person.user_id: person.user(locale) for person in PEOPLE}
        self.people: dict[str, SlackPersona] = {}
        for person in PEOPLE:
            persona = SlackPersona(person, language=locale,
                                   default_locale=console.portal.default_locale)
            self.people[persona.actor.chat_id] = persona
            console.add(persona)

    async def _user(self, team: str, member: str) -> dict[str, Any]:
        """Answer `users.info` from the directory (unknown ids are nobody)."""
        if team != TEAM_ID or member not in self.users:
            return {"deleted": True}
        return dict(self.users[member])

    def routes(self, counted: Callable[[], None]) -> list[BaseRoute]:
        """Serve nothing: the workspace is played at the terminal."""
        return []

    async def admins(self, team_id: str) -> list[TeamAdmin]:
        """Return the team's billing admins for its notices (bot.slack asks `users.list`)."""
        if team_id != TEAM_ID:
            return []
        return [TeamAdmin(member_id=person.user_id, locale=self.locale, zone="UTC")
                for person in PEOPLE if person.admin]

    async def start(self) -> None:
        """Register Slack as handlers see it, with the directory as `users.info`, and who
        the team's notices go to."""
        self.console.portal.register(SlackApp(self._user))
        self.console.portal.billing.rosters[CHANNEL] = self.admins

    async def stop(self) -> None:
        """Nothing to release."""
        return None

    async def send(self, chat_id: str, reply: Reply, *,
                   issue: Callable[[], Awaitable[None]] | None = None) -> None:
        """Deliver a DM ("T…:U…") to its person at the console."""
        persona = self.people.get(chat_id)
        if persona is None:
            raise Unreachable("no such chat in the demo workspace")
        await self.console.deliver(persona, reply, issue=issue)
