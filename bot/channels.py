"""A channel is the unit the runtime knows: one chat app's adapter (Telegram, Slack, the
demo's console), started and stopped with the service.

A channel brings its HTTP routes (mounted on Portier's one server), sends a reply into a
chat — mapping its app's send errors to the outbox's outcomes (`Unreachable`, `RetryLater`,
`Rejected` from `bot.outbox`; returning means sent) — says how fast it may push (`Pacing`),
and registers its `handlers.apps.ChatApp` with the portal so that handlers can link to it.
A channel whose messages can be changed after they are sent is also `Editing` (Telegram:
the broadcast's progress message, bot.progress).
The service runs a list of them; nothing in the runtime names one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from starlette.routing import BaseRoute

from handlers.replies import Reply

Issue = Callable[[], Awaitable[None]]


def never_a_group(_chat_id: str) -> bool:
    """Tell no chat apart: every chat is paced as one conversation."""
    return False


@dataclass(frozen=True)
class Pacing:
    """How fast a channel's chats may get pushed messages (besides the global rate)."""

    per_chat: float = 1.0  # seconds between two messages to one chat
    group_per_minute: int = 20  # messages a minute to one group chat
    is_group: Callable[[str], bool] = never_a_group


class Channel(Protocol):
    """One chat app's adapter."""

    name: str  # the key stored with chat links and notices
    pacing: Pacing

    def routes(self, counted: Callable[[], None]) -> Sequence[BaseRoute]:
        """Return the HTTP routes the channel serves on Portier's server; `counted` is
        called for each update accepted (for /metrics)."""
        ...

    async def start(self) -> None:
        """Connect to the chat app (register webhooks, commands) and register the ChatApp."""
        ...

    async def stop(self) -> None:
        """Disconnect and release the channel's clients."""
        ...

    async def send(self, chat_id: str, reply: Reply, *, issue: Issue | None = None
                   ) -> str | None:
        """Send one reply into a chat; return the message's id if the app gives one. An
        outbox send passes `issue`, awaited right before the request leaves (the notice is
        `sending` only while it is in the air)."""
        ...


class NotModified(Exception):
    """The edit would change nothing: the message already shows it."""


class MessageGone(Exception):
    """The message to edit is no longer there (deleted), or can no longer be edited."""


@runtime_checkable
class Editing(Protocol):
    """A channel that can change a message it sent."""

    name: str

    async def send(self, chat_id: str, reply: Reply, *, issue: Issue | None = None
                   ) -> str | None:
        """Send one reply into a chat; return the message's id."""
        ...

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> None:
        """Replace a sent message's text and buttons with the reply's; raise NotModified,
        MessageGone, or the outbox's Unreachable, RetryLater and Rejected."""
        ...
