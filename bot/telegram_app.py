"""Telegram as the neutral layer sees it: `t.me` links, the `?start=` payload, the menu."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from handlers.apps import PlainApp
from handlers.context import Actor

# A link token in a pasted deep link (https://t.me/<bot>?start=<token>), or bare. Not `\b` at
# its end: a token may end in "-", after which `\b` finds no boundary and cut the token short.
_DEEP_LINK = re.compile(r"[?&]start=([A-Za-z0-9_-]{1,64})(?![A-Za-z0-9_-])")


class TelegramApp(PlainApp):
    """Links into the bot's private chat, and the chat's command menu in a chosen language."""

    def __init__(self, username: str | None,
                 show_menu: Callable[[str, str], Awaitable[None]] | None = None) -> None:
        super().__init__("telegram", "Telegram")
        self.username = username
        self._show_menu = show_menu

    def private_chat_url(self) -> str | None:
        """Return the bot's chat, `https://t.me/<username>`."""
        return f"https://t.me/{self.username}" if self.username else None

    def link_url(self, token: str) -> str | None:
        """Return the deep link that starts the bot with the token (SPEC §6.1)."""
        return f"https://t.me/{self.username}?start={token}" if self.username else None

    def link_command(self, token: str) -> str | None:
        """Return what a user may type in the bot's chat instead: `/start <token>`."""
        return f"/start {token}"

    def token_in(self, text: str) -> str | None:
        """Return the token of a pasted deep link, or the text when it is a bare token."""
        found = _DEEP_LINK.search(text)
        return found.group(1) if found else super().token_in(text)

    async def language_chosen(self, actor: Actor, locale: str) -> None:
        """Show a private chat's command menu in the chosen language (a group's is shared)."""
        if actor.private and self._show_menu is not None:
            await self._show_menu(actor.chat_id, locale)
