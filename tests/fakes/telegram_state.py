"""The fake Bot API's memory, shared by the server thread and the test's event loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .telegram_objects import BotMessage, FakeUser

# Update types Telegram delivers when allowed_updates is empty
# (https://core.telegram.org/bots/api#getupdates: all except these three).
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


class ApiError(Exception):
    """An error answer: HTTP status, Telegram's description, optional retry_after."""

    def __init__(self, status: int, description: str, retry_after: int | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        """Return the JSON body Telegram answers with."""
        body: dict[str, Any] = {
            "ok": False, "error_code": self.status, "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(reason: str) -> ApiError:
    """Return a 400 error with Telegram's "Bad Request: " prefix."""
    return ApiError(400, f"Bad Request: {reason}")


@dataclass(frozen=True)
class Webhook:
    """The webhook the bot registered with setWebhook."""

    url: str
    secret_token: str | None
    allowed_updates: tuple[str, ...]
    max_connections: int
    drop_pending_updates: bool


@dataclass(frozen=True)
class Call:
    """One Bot API request the fake served, with the HTTP status it answered."""

    method: str
    params: dict[str, Any]
    status: int
    description: str | None
    at: float


@dataclass
class Failure:
    """An error to answer instead of serving the next matching calls."""

    method: str
    error: ApiError
    chat_id: int | str | None
    remaining: int


def update_type(update: dict[str, Any]) -> str:
    """Return the kind of an Update ("message", "callback_query", …)."""
    return next(key for key in update if key != "update_id")


class TelegramState:
    """Chats, messages, webhook, commands, queued updates and the call log, under one lock."""

    def __init__(self, token: str, username: str, first_name: str) -> None:
        self.lock = threading.RLock()
        self.token = token
        self.bot_user: dict[str, Any] = {
            "id": int(token.split(":", 1)[0]), "is_bot": True,
            "first_name": first_name, "username": username,
        }
        self.chats: dict[int, dict[str, Any]] = {}
        self.users: dict[int, FakeUser] = {}
        self.webhook: Webhook | None = None
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.call_log: list[Call] = []
        self.answered_callbacks: list[dict[str, Any]] = []
        self.pending_callbacks: dict[str, dict[str, Any]] = {}
        self.listeners: list[Callable[[BotMessage], None]] = []
        self.closing = False
        self._update_id = 100_000
        self._query_id = 0
        self._file_id = 0
        self._last_message_id: dict[int, int] = {}
        self._user_messages: set[tuple[int, int]] = set()
        self._current: dict[tuple[int, int], BotMessage] = {}
        self._deleted: dict[int, list[int]] = {}
        self._history: dict[int, list[BotMessage]] = {}
        self._cursor: dict[int, int] = {}
        self._queue: list[dict[str, Any]] = []
        self._allowed_updates: tuple[str, ...] = ()
        self._failures: list[Failure] = []

    # -- ids -------------------------------------------------------------------------------

    def new_update_id(self) -> int:
        """Return the next update_id."""
        with self.lock:
            self._update_id += 1
            return self._update_id

    def new_message_id(self, chat_id: int, *, from_user: bool = False) -> int:
        """Return the next message_id in a chat (users and the bot share the counter)."""
        with self.lock:
            message_id = self._last_message_id.get(chat_id, 0) + 1
            self._last_message_id[chat_id] = message_id
            if from_user:
                self._user_messages.add((chat_id, message_id))
            return message_id

    def new_query(self, update: dict[str, Any]) -> str:
        """Return a fresh callback query id, waiting for answerCallbackQuery."""
        with self.lock:
            self._query_id += 1
            query_id = f"{self.bot_user['id']}{self._query_id:08d}"
            self.pending_callbacks[query_id] = update
            return query_id

    def new_file_id(self) -> str:
        """Return a fresh file_id for an uploaded file."""
        with self.lock:
            self._file_id += 1
            return f"AgACAgFake{self._file_id:06d}"

    # -- chats and messages ----------------------------------------------------------------

    def chat(self, chat_id: int | str) -> dict[str, Any]:
        """Return a known chat by id or @username, or raise "chat not found"."""
        with self.lock:
            for chat in self.chats.values():
                if chat_id in (chat["id"], str(chat["id"])) or (
                    isinstance(chat_id, str) and chat_id == f"@{chat.get('username')}"
                ):
                    return chat
        raise bad_request("chat not found")

    def record(self, message: BotMessage) -> None:
        """Store a sent or edited bot message and tell the listeners."""
        with self.lock:
            self._current[(message.chat_id, message.message_id)] = message
            self._history.setdefault(message.chat_id, []).append(message)
            listeners = list(self.listeners)
        for listener in listeners:
            listener(message)

    def current(self, chat_id: int, message_id: int) -> BotMessage | None:
        """Return the bot message as it is now, or None when unknown or deleted."""
        with self.lock:
            return self._current.get((chat_id, message_id))

    def is_user_message(self, chat_id: int, message_id: int) -> bool:
        """Tell whether a message was sent by a user (and not deleted)."""
        with self.lock:
            return (chat_id, message_id) in self._user_messages

    def delete(self, chat_id: int, message_id: int) -> bool:
        """Delete a bot or user message; tell whether it existed."""
        with self.lock:
            key = (chat_id, message_id)
            if self._current.pop(key, None) is None:
                if key not in self._user_messages:
                    return False
                self._user_messages.discard(key)
            self._deleted.setdefault(chat_id, []).append(message_id)
            return True

    def messages(self, chat_id: int) -> list[BotMessage]:
        """Return the bot messages of a chat as they are now, oldest first."""
        with self.lock:
            found = [m for (chat, _), m in self._current.items() if chat == chat_id]
        return sorted(found, key=lambda m: m.message_id)

    def history(self, chat_id: int) -> list[BotMessage]:
        """Return every send and edit in a chat, in order."""
        with self.lock:
            return list(self._history.get(chat_id, []))

    def deleted(self, chat_id: int) -> list[int]:
        """Return the ids of messages deleted in a chat."""
        with self.lock:
            return list(self._deleted.get(chat_id, []))

    def pop_event(self, chat_id: int) -> BotMessage | None:
        """Consume the oldest send or edit in a chat not yet consumed."""
        with self.lock:
            events = self._history.get(chat_id, [])
            cursor = self._cursor.get(chat_id, 0)
            if cursor >= len(events):
                return None
            self._cursor[chat_id] = cursor + 1
            return events[cursor]

    # -- updates for getUpdates ------------------------------------------------------------

    def enqueue(self, update: dict[str, Any]) -> None:
        """Queue an update for getUpdates."""
        with self.lock:
            self._queue.append(update)

    def pending_update_count(self) -> int:
        """Return how many updates wait for getUpdates."""
        with self.lock:
            return len(self._queue)

    def drop_updates(self) -> None:
        """Forget the queued updates (drop_pending_updates)."""
        with self.lock:
            self._queue.clear()

    def take_updates(
        self, offset: int, limit: int, allowed: tuple[str, ...] | None
    ) -> list[dict[str, Any]]:
        """Confirm updates below offset and return up to limit of the rest."""
        with self.lock:
            if allowed is not None:
                self._allowed_updates = allowed
            if offset < 0:
                self._queue = self._queue[offset:]
            elif offset:
                self._queue = [u for u in self._queue if u["update_id"] >= offset]
            self._queue = [u for u in self._queue if self.allows(update_type(u))]
            return self._queue[:limit]

    def allows(self, kind: str, allowed: tuple[str, ...] | None = None) -> bool:
        """Tell whether an update type passes the allowed_updates filter."""
        chosen = self._allowed_updates if allowed is None else allowed
        return kind in chosen if chosen else kind not in OPT_IN_UPDATES

    # -- failures and the call log ---------------------------------------------------------

    def add_failure(self, failure: Failure) -> None:
        """Arrange for the next matching calls to fail."""
        with self.lock:
            self._failures.append(failure)

    def take_failure(self, method: str, chat_id: Any) -> ApiError | None:
        """Return the error to answer this call with, if one was arranged."""
        with self.lock:
            for failure in self._failures:
                if failure.method == method.lower() and (
                    failure.chat_id is None or str(failure.chat_id) == str(chat_id)
                ):
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self._failures.remove(failure)
                    return failure.error
        return None

    def log(
        self, method: str, params: dict[str, Any], status: int, description: str | None
    ) -> None:
        """Record a served call."""
        with self.lock:
            self.call_log.append(Call(method, params, status, description, time.perf_counter()))

    def calls(self, method: str) -> list[dict[str, Any]]:
        """Return the parameters of every call of a method, failed ones included."""
        with self.lock:
            return [c.params for c in self.call_log if c.method.lower() == method.lower()]
