"""What the neutral layer knows of a chat app: its name, where its private chat is, how a
link token travels in it, and what it does when a user picks a language.

Each channel adapter registers one with the Portal when it starts (Telegram knows its
`t.me` links and its `?start=` payload, Slack its `/billing connect`); handlers only ever
ask the app of the update in hand, so no chat app's conventions live in the neutral layer.
"""

from __future__ import annotations

import re
from typing import Protocol

from handlers.context import Actor

_BARE_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ChatApp(Protocol):
    """A chat app as handlers see it."""

    name: str  # the channel key stored with links and notices: "telegram", "slack", …
    label: str  # how users call it: "Telegram"

    def private_chat_url(self) -> str | None:
        """Return where a user opens a private chat with the bot (None when there is none)."""
        ...

    def link_url(self, token: str) -> str | None:
        """Return a link that, opened by a user, links their chat with a link token."""
        ...

    def link_command(self, token: str) -> str | None:
        """Return what a user types to link with a link token, where no link does it."""
        ...

    def token_in(self, text: str) -> str | None:
        """Return the link token in text a user pasted (a link, or the bare token)."""
        ...

    async def language_chosen(self, actor: Actor, locale: str) -> None:
        """Follow a language the user picked in /settings (e.g. the command menu)."""
        ...


class PlainApp:
    """A chat app with no links of its own (the demo's console, and a fallback)."""

    def __init__(self, name: str, label: str | None = None) -> None:
        self.name = name
        self.label = label or name.title()

    def private_chat_url(self) -> str | None:
        """Return no URL: there is no private chat to open."""
        return None

    def link_url(self, token: str) -> str | None:
        """Return no URL: tokens are typed in."""
        return None

    def link_command(self, token: str) -> str | None:
        """Return the token itself: it is typed in as it is."""
        return token

    def token_in(self, text: str) -> str | None:
        """Return the text itself when it has a token's shape."""
        text = text.strip()
        return text if _BARE_TOKEN.fullmatch(text) else None

    async def language_chosen(self, actor: Actor, locale: str) -> None:
        """Do nothing more: replies already follow the chosen language."""
        return None
