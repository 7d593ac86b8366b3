"""The console channel: a chat in the terminal, over the same handlers as Telegram.

Thin like the other adapters: a typed line becomes a portal call (`/command`, a button's
number, free text) and each neutral reply becomes a few lines of text with numbered buttons.
A URL button that leads to one of the Stripe sandbox's hosted pages is "opened" the way a
customer with a test card would (bot.console_sandbox), so the demo runs without a browser.

The person at the terminal plays one persona at a time (`:as NAME`): the Telegram customer,
or people of another chat app (bot.console_slack's workspace). Each persona has its own
latest buttons and open question; a message pushed to someone else waits until the person
switches to them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from starlette.routing import BaseRoute

from bot.channels import Pacing
from bot.console_sandbox import CARDS, SandboxBrowser
from handlers.apps import PlainApp
from handlers.context import Actor
from handlers.portal import Portal
from handlers.replies import Button, Reply

log = logging.getLogger(__name__)

PRESS = re.compile(r"^(\d{1,3})(?:\s+(\S+))?$")
HELP = """\
Type a /command, the number of a button, or a message. Helpers:
  :as NAME     play someone else: telegram (the customer), slack-admin or slack-member
               (a Slack workspace's admin and member); :as alone lists who is who
  :home        as a Slack person: open the app's App Home tab (a modal's user or channel
               picker takes a typed name: slack-member, max, billing)
  :time +30d   move Stripe's clock ahead (h, d, w or y) so renewals happen
  :card        list the test cards; "2 decline" presses button 2 paying with one
  :help        this help
  :quit        leave (Ctrl-D too)"""
TELEGRAM = "telegram"

Settle = Callable[[], Awaitable[None]]


def numbered(reply: Reply) -> list[Button]:
    """Return the reply's buttons in the order the console numbers them."""
    return [button for row in reply.buttons for button in row]


def render(reply: Reply, *, bold: bool = False) -> str:
    """Render a reply as terminal text: title, text, then numbered buttons."""
    lines: list[str] = []
    if reply.title:
        lines.append(f"\033[1m{reply.title}\033[0m" if bold else reply.title)
    lines += (reply.text or reply.toast or "").splitlines()
    if reply.image_url:
        lines.append(f"(image: {reply.image_url})")
    for number, button in enumerate(numbered(reply), start=1):
        link = " ↗ (link)" if button.url else ""
        lines.append(f"  [{number}] {button.label}{link}")
    if reply.expect_text:
        lines.append("(type your answer)")
    head, *rest = lines or [""]
    return "\n".join([f"bot › {head}", *(f"      {line}".rstrip() for line in rest)])


@dataclass
class Persona:
    """Someone the console's user plays, on the Telegram-like console chat: their actor, the
    buttons a typed number presses, and messages pushed to them while someone else typed.

    Another chat app's persona (bot.console_slack) overrides how lines reach the portal and
    how replies look there."""

    name: str
    actor: Actor
    about: str = "the Telegram customer"
    buttons: list[Button] = field(default_factory=list)
    expect_text: bool = False
    waiting: list[tuple[Reply, str]] = field(default_factory=list)  # and where it was sent
    settles = False  # wait for the notices each action causes before reading on
    first = "/start"  # what to type first

    @property
    def prompt(self) -> str:
        """Return what a typed line is echoed after."""
        return "you › "

    def view(self, reply: Reply, *, bold: bool, where: str) -> tuple[str, list[Button]]:
        """Return the reply as terminal text and the buttons its numbers press; `where` is
        "reply" (an answer), "pushed" (a notice) or "home" (a home tab)."""
        return render(reply, bold=bold), numbered(reply)

    def shown(self, reply: Reply) -> None:
        """Note what a reply shown to this persona asks of them (an answer, or not)."""
        self.expect_text = reply.expect_text

    async def command(self, portal: Portal, name: str, args: str) -> list[Reply] | str:
        """Answer a typed `/command` (or say why this chat app has no such command)."""
        return await portal.command(self.actor, name, args)

    async def press(self, portal: Portal, action: str) -> list[Reply]:
        """Answer the press of a button carrying `action`."""
        return await portal.button(self.actor, action)

    async def say(self, portal: Portal, text: str) -> list[Reply] | str:
        """Answer free text (or say why it goes nowhere)."""
        return await portal.text(self.actor, text)

    async def home(self, portal: Portal) -> list[Reply] | str:
        """Open the chat app's home tab, if it has one."""
        return "Only Slack has an App Home: :as slack-admin or :as slack-member first."

    def commands(self, portal: Portal) -> str:
        """Return the chat commands this persona can type, for :help."""
        menu = portal.command_menu(portal.default_locale)
        return "Chat commands:\n" + "".join(f"  /{command:<11} {text}\n"
                                            for command, text in menu)


class Console:
    """A console chat: reads the lines of whoever the user plays, prints the bot's replies.
    A channel (bot.channels) with no routes: the demo attaches it to the running service."""

    name = "console"
    pacing = Pacing(per_chat=0.0)  # one reader at a terminal: nothing to protect

    def __init__(self, portal: Portal, *, out: TextIO = sys.stdout, language: str = "en",
                 sandbox_url: str | None = None, settle: Settle | None = None) -> None:
        self.portal = portal
        self.out = out
        self.settle = settle
        self.browser = SandboxBrowser(sandbox_url=sandbox_url,
                                      portier_url=portal.billing.public_url)
        customer = Persona(TELEGRAM, Actor(channel="console", user_id="demo", chat_id="demo",
                                           private=True, language=language, name="Demo"))
        self.personas: dict[str, Persona] = {TELEGRAM: customer}
        self.persona = customer
        self._prompting = False

    @property
    def actor(self) -> Actor:
        """Return who is typing now."""
        return self.persona.actor

    @property
    def buttons(self) -> list[Button]:
        """Return the buttons a typed number presses now."""
        return self.persona.buttons

    @property
    def expect_text(self) -> bool:
        """Tell whether the bot waits for an answer from who is typing now."""
        return self.persona.expect_text

    def add(self, persona: Persona) -> None:
        """Let the user play another persona (`:as NAME`)."""
        self.personas[persona.name] = persona

    def routes(self, counted: Callable[[], None]) -> list[BaseRoute]:
        """Serve nothing: the console reads the terminal."""
        return []

    async def start(self) -> None:
        """Make the console known to the portal (no links of its own)."""
        self.portal.register(PlainApp(self.name, "the console"))

    async def stop(self) -> None:
        """Release the HTTP client."""
        await self.aclose()

    async def send(self, chat_id: str, reply: Reply, *,
                   issue: Callable[[], Awaitable[None]] | None = None) -> None:
        """Print a notice the worker pushes (the worker's sender for "console")."""
        await self.deliver(self.personas[TELEGRAM], reply, issue=issue)

    async def deliver(self, persona: Persona, reply: Reply, *,
                      issue: Callable[[], Awaitable[None]] | None = None,
                      where: str = "pushed", announce: bool = True) -> None:
        """Push a message to a persona: printed now if they are typing, else kept for when
        the user switches to them (with a line saying so, unless not to `announce`)."""
        if issue is not None:  # the outbox marks the notice `sending` now
            await issue()
        if self._prompting:
            self.out.write("\n")
        if persona is self.persona:
            self.show([reply], where=where)
        else:
            persona.waiting.append((reply, where))
            about = next(iter((reply.title or reply.text).splitlines()), "…")
            if announce:
                self.note(f"[to {persona.name}] a new message: “{about}” "
                          f"(:as {persona.name} to read it)")
        if self._prompting:
            self._prompt()

    def show(self, replies: list[Reply], *, where: str = "reply") -> None:
        """Print replies; the last one with buttons is what a typed number presses."""
        persona = self.persona
        for reply in replies:
            text, buttons = persona.view(reply, bold=self.out.isatty(), where=where)
            self.out.write(text + "\n")
            if buttons or reply.edit:  # an edit replaces the message and its buttons
                persona.buttons = buttons
            persona.shown(reply)
        self.out.flush()

    def _answer(self, answered: list[Reply] | str, *, where: str = "reply") -> None:
        if isinstance(answered, str):
            self.note(answered)
        else:
            self.show(answered, where=where)

    def note(self, text: str) -> None:
        """Print a line about what happened outside the chat (a page, the clock)."""
        self.out.write(f"  · {text}\n")
        self.out.flush()

    async def run(self, lines: AsyncIterator[str], *, echo: bool = True) -> None:
        """Handle lines until they end or the user quits; echo them for a transcript."""
        while True:
            if not echo:
                self._prompt()
            self._prompting = not echo
            line = await anext(lines, None)
            self._prompting = False
            if line is None:
                if not echo:
                    self.out.write("\n")  # end of input (Ctrl-D) left the cursor at the prompt
                return
            if echo and line.strip():
                self.out.write(f"{self.persona.prompt}{line}\n")
            try:
                if not await self.handle(line):
                    return
            except Exception:  # the console's one error handler, like PTB's add_error_handler
                log.exception("console: handling a line failed")
                self.note("That did not work (details in the log). Try again or :quit.")

    async def handle(self, line: str) -> bool:
        """Act on one typed line; return False when the user quits."""
        line = line.strip()
        press = PRESS.match(line)
        if not line:
            return True
        if line.startswith(":"):
            return await self._helper(line[1:])
        persona = self.persona
        if line.startswith("/"):
            name, _, args = line[1:].partition(" ")
            self._answer(await persona.command(self.portal, name, args))
        elif press and not self.expect_text:
            await self.press(int(press.group(1)), press.group(2))
        else:
            self._answer(await persona.say(self.portal, line))
        if persona.settles:
            await self._settle()  # what the act pushed to others (a DM) shows before the next line
        return True

    async def press(self, number: int, card: str | None = None) -> None:
        """Press button `number` of the latest message with buttons."""
        if not 1 <= number <= len(self.buttons):
            self.note(f"There is no button {number} here." if self.buttons
                      else f"No buttons to press yet: try {self.persona.first}.")
            return
        button = self.buttons[number - 1]
        self.note(f"pressed “{button.label}”")
        if button.url:
            await self.open(button.url, card)
        elif button.action:
            self.show(await self.persona.press(self.portal, button.action))
            if self.persona.settles:
                await self._settle()

    async def open(self, url: str, card: str | None = None) -> None:
        """Open a URL: complete a sandbox page as a test-card customer, print any other."""
        if await self.browser.open(url, card, self.note):
            await self._settle()

    async def _helper(self, line: str) -> bool:
        name, _, arg = line.strip().partition(" ")
        if name in ("quit", "q", "exit"):
            return False
        if name == "time":
            if await self.browser.advance(arg, self.note):
                await self._settle()
        elif name == "as":
            self._switch(arg.strip().lower())
        elif name == "home":
            self._answer(await self.persona.home(self.portal), where="home")
        elif name in ("card", "cards"):
            self.out.write("Test cards (type the name after a button's number, e.g. 2 decline):\n")
            for short, (token, label) in CARDS.items():
                self.out.write(f"  {short:<11} {label}  [{token}]\n")
        else:
            self.out.write(HELP + "\n" + self.persona.commands(self.portal))
        self.out.flush()
        return True

    def _switch(self, name: str) -> None:
        """Play another persona and print what was pushed to them meanwhile."""
        persona = self.personas.get(name)
        if persona is None:
            if name:
                self.out.write(f"There is no {name} here. ")
            self.out.write("Who you can play (:as NAME):\n")
            for known in self.personas.values():
                mark = "*" if known is self.persona else " "
                self.out.write(f" {mark}{known.name:<13} {known.about}\n")
            return
        self.persona = persona
        waiting, persona.waiting = persona.waiting, []
        self.note(f"You are {persona.name} now: {persona.about}."
                  + (f" {len(waiting)} new message(s) for you:" if waiting else ""))
        for reply, where in waiting:
            self.show([reply], where=where)

    async def _settle(self) -> None:
        # Let webhooks land and their notices print before the next line is read.
        if self.settle is not None:
            await self.settle()

    def _prompt(self) -> None:
        self.out.write(self.persona.prompt)
        self.out.flush()

    async def aclose(self) -> None:
        """Release the HTTP client."""
        await self.browser.aclose()


async def script_lines(path: str | Path) -> AsyncIterator[str]:
    """Yield a script's lines, skipping blank lines and `#` comments."""
    text = await asyncio.to_thread(Path(path).read_text, encoding="utf-8")
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            yield line


async def stdin_lines(stream: TextIO = sys.stdin) -> AsyncIterator[str]:
    """Yield lines typed on stdin without blocking the event loop."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def pump() -> None:
        # A daemon thread, not the default executor: a blocked read must not hold up exit.
        while True:
            line = stream.readline()
            try:
                loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\n") if line else None)
            except RuntimeError:  # the loop has closed
                return
            if not line:
                return

    threading.Thread(target=pump, name="console-stdin", daemon=True).start()
    while (line := await queue.get()) is not None:
        yield line

