"""The demo's Slack workspace, played at the console: a team admin and a member.

A line typed as one of them becomes the portal call bot.slack makes for the same act in
Slack — `/billing …` the slash command, a button's number its `block_actions` value, a
modal's answer its `view_submission` value — with the actor bot.slack builds ("T…:U…" on
channel "slack", private) and bot.slack_app's own SlackApp deciding roles and picks from
`users.info` and `conversations.info`, answered here from a small directory instead of
Slack's Web API. Replies are shown as the Block Kit bot.slack_render makes of them, turned
into text; a reply that asks for an answer opens a modal (a slash command or a button press
always has a trigger here), shown as a prompt — a user or channel picker takes a typed name.

The workspace is also the demo's "slack" channel: the outbox's DMs to its people and posts
in its #billing channel land in the console, for whichever of them they are meant; and, as
bot.slack's roster does from `users.list`, it names the team's billing admins.
"""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute

from billing import teams
from billing.team_notices import TeamAdmin
from bot.channels import Pacing
from bot.console import Console, Persona
from bot.outbox import Unreachable
from bot.slack_app import CHANNEL, SlackApp
from bot.slack_render import answer_modal, blocks
from handlers.context import Actor
from handlers.i18n import N_, pick_locale, translate
from handlers.portal import Portal
from handlers.replies import CONVERSATION, USER, Button, Reply

TEAM_ID = "T0DEMO"
TEAM_NAME = "Acme Team"
_BOLD = re.compile(r"^\*(.+)\*$")
PICKERS = {"users_select": "pick a person: type slack-member, a name or a U… id",
           "conversations_select": "pick a channel: type billing (or #billing)"}


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
# The workspace's channels, as conversations.info says: the app is in #billing only.
CHANNELS: dict[str, dict[str, Any]] = {
    "C0BILLING": {"id": "C0BILLING", "name": "billing", "is_channel": True, "is_member": True,
                  "is_archived": False, "is_im": False},
    "C0GENERAL": {"id": "C0GENERAL", "name": "general", "is_channel": True, "is_member": False,
                  "is_archived": False, "is_im": False}}


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
            picker = PICKERS.get(str((block.get("element") or {}).get("type")))
            shown = f"▾ ({picker})" if picker else "▁▁▁▁▁▁"
            lines.append(f"│ {block['label']['text']}: {shown}")
    lines.append(f"└ [{view['submit']['text']}]  (type your answer; a /command closes it)")
    return lines


def framed(tag: str, lines: list[str]) -> str:
    """Lay out a Slack message: `slack › tag`, then its lines indented."""
    return "\n".join([f"slack › {tag}", *(f"        {line}".rstrip() for line in lines)])


def picked(pick: str | None, typed: str) -> str:
    """Return what Slack's picker would send for a typed name: a user's or channel's id
    ("slack-member", "Max", "@max" → U0MEMBER; "#billing" → C0BILLING), else the text."""
    wanted = typed.strip().lstrip("@#").lower()
    if pick == USER:
        for person in PEOPLE:
            names = {person.persona, person.user_id.lower(), person.real_name.lower(),
                     person.real_name.split()[0].lower()}
            if wanted in names:
                return person.user_id
    elif pick == CONVERSATION:
        for channel in CHANNELS.values():
            if wanted in (channel["name"], channel["id"].lower()):
                return str(channel["id"])
    return typed


class SlackPersona(Persona):
    """A person of the demo workspace: their lines reach the portal as bot.slack's do."""

    settles = True  # a request or an approval DMs someone: show it before the next line
    first = "/billing"

    def __init__(self, person: Person, workspace: DemoWorkspace, *, language: str,
                 default_locale: str) -> None:
        actor = Actor(channel=CHANNEL, user_id=f"{TEAM_ID}:{person.user_id}",
                      chat_id=f"{TEAM_ID}:{person.user_id}", private=True,
                      language=language, name=person.real_name)
        role = "a workspace admin" if person.admin else "a member"
        super().__init__(person.persona, actor,
                         about=f"{person.real_name}, {role} of {TEAM_NAME} on Slack")
        self.workspace = workspace
        self.locale = pick_locale(language, default=default_locale)
        self.picking: str | None = None  # the open modal's picker (a user, a channel)

    @property
    def prompt(self) -> str:
        """Return what a typed line is echoed after: who typed it."""
        return f"you ({self.name}) › "

    def view(self, reply: Reply, *, bold: bool, where: str) -> tuple[str, list[Button]]:
        """Show the reply as Slack would: a modal where an answer asks for one (as
        bot.slack.answer opens it), else its Block Kit: ephemeral, a DM, a channel's post
        or the App Home."""
        if reply.expect_text and where == "reply":
            view = answer_modal(reply, title=translate(self.locale, N_("Billing")),
                                choose=translate(self.locale, N_("Choose")),
                                submit=translate(self.locale, N_("Continue")),
                                label=translate(self.locale, N_("Your answer")),
                                metadata={"channel": ""})
            head, *rest = modal_text(view, bold=bold)
            return framed(head, rest), []
        lines, buttons = block_text(blocks(reply), bold=bold)
        tag = {"pushed": "DM from Portier", "home": "App Home",
               "updated": "DM from Portier (updated)"}.get(where) or (
            f"in {where}" if where.startswith("#")
            else "only visible to you (updates the message)" if reply.edit
            else "only visible to you")
        return framed(tag, lines), buttons

    def shown(self, reply: Reply) -> None:
        """Note whether a modal is open, and whether it picks a user or a channel."""
        self.expect_text = reply.expect_text
        self.picking = reply.pick if reply.expect_text else None

    async def command(self, portal: Portal, name: str, args: str) -> list[Reply] | str:
        """Run `/billing …`, the app's one slash command; Slack refuses any other."""
        self.expect_text = False  # typing a command leaves the modal
        if name.lower() != "billing":
            return f"Slack: /{name} is not a valid command. This app's command is /billing."
        return await self.workspace.answered(self, await portal.command(
            self.actor, "billing", args))

    async def press(self, portal: Portal, action: str) -> list[Reply]:
        """Press a button, as Slack's `block_actions` with its value."""
        return await self.workspace.answered(self, await portal.button(self.actor, action))

    async def say(self, portal: Portal, text: str) -> list[Reply] | str:
        """Submit the open modal with the typed answer (Slack has nowhere else for text)."""
        if not self.expect_text:
            return ("In Slack this app reads no messages: type /billing, a button's number, "
                    "or :home.")
        self.expect_text = False  # submitting closes the modal
        answer = picked(self.picking, text)
        return await self.workspace.answered(self, await portal.text(self.actor, answer))

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
    registers bot.slack_app's SlackApp (on the directory) and prints their messages."""

    name = CHANNEL
    pacing = Pacing(per_chat=0.0)  # one reader at a terminal: nothing to protect

    def __init__(self, console: Console, *, language: str | None = None) -> None:
        self.console = console
        self.locale = pick_locale(language, default=console.portal.default_locale)
        self.users = {person.user_id: person.user(self.locale) for person in PEOPLE}
        self.people: dict[str, SlackPersona] = {}
        # a ref'd message: who got a copy, in which language
        self.copies: dict[str, list[tuple[SlackPersona, str | None]]] = {}
        for person in PEOPLE:
            persona = SlackPersona(person, self, language=self.locale,
                                   default_locale=console.portal.default_locale)
            self.people[persona.actor.chat_id] = persona
            console.add(persona)

    async def _user(self, team: str, member: str) -> dict[str, Any]:
        """Answer `users.info` from the directory (unknown ids are nobody)."""
        if team != TEAM_ID or member not in self.users:
            return {"deleted": True}
        return dict(self.users[member])

    async def _conversation(self, team: str, channel: str) -> dict[str, Any]:
        """Answer `conversations.info` (another workspace's channel: the app is not in it)."""
        found = CHANNELS.get(channel) if team == TEAM_ID else None
        return dict(found) if found else {"id": channel, "is_member": False}

    async def admins(self, team_id: str) -> list[TeamAdmin]:
        """Return the team's billing admins for its notices, as bot.slack's roster does: its
        admins (users.list) and the members made billing admins in Portier."""
        if team_id != TEAM_ID:
            return []
        async with self.console.portal.billing.db.session() as session:
            added = await teams.billing_admins(session, channel=CHANNEL, team_id=team_id)
        return [TeamAdmin(member_id=person.user_id, locale=self.locale, zone="UTC")
                for person in PEOPLE if person.admin or person.user_id in added]

    async def _admin_ids(self, team_id: str) -> list[str]:
        return [admin.member_id for admin in await self.admins(team_id)]

    def routes(self, counted: Callable[[], None]) -> list[BaseRoute]:
        """Serve nothing: the workspace is played at the terminal."""
        return []

    async def start(self) -> None:
        """Register Slack as handlers see it, on the directory, and who the team's notices
        go to."""
        self.console.portal.register(SlackApp(self._user, admins=self._admin_ids,
                                              conversation=self._conversation))
        self.console.portal.billing.rosters[CHANNEL] = self.admins

    async def stop(self) -> None:
        """Nothing to release."""
        return None

    async def send(self, chat_id: str, reply: Reply, *,
                   issue: Callable[[], Awaitable[None]] | None = None) -> None:
        """Deliver a DM ("T…:U…") to its person, or a post in a channel the app is in
        ("T…:C…") to everyone (both are in #billing)."""
        team, _, target = chat_id.partition(":")
        person = self.people.get(chat_id)
        found = CHANNELS.get(target) if team == TEAM_ID else None
        readers = [person] if person else list(self.people.values()) if (
            found and found["is_member"]) else []
        if not readers:
            raise Unreachable("no such chat in the demo workspace")
        if issue is not None:
            await issue()
        if reply.ref:
            self.copies.setdefault(reply.ref, []).extend((r, reply.locale) for r in readers)
        where = f"#{found['name']}" if found else "pushed"
        announced = False  # one "[to …]" line for a channel's post
        for reader in readers:
            await self.console.deliver(reader, reply, where=where, announce=not announced)
            announced = announced or reader is not self.console.persona

    async def answered(self, persona: SlackPersona, replies: list[Reply]) -> list[Reply]:
        """Update the other copies of a message a reply replaces (each admin's seat
        request, as bot.slack's chat.update does), and return the replies to show."""
        for reply in replies:
            copies = self.copies.pop(reply.replaces, []) if reply.replaces else []
            for other, locale in copies:
                if other is persona:
                    continue
                other.waiting = [(kept, where) for kept, where in other.waiting
                                 if kept.ref != reply.replaces]
                await self.console.deliver(other, reply.in_locale(locale), where="updated",
                                           announce=False)
        return replies
