"""A fake Telegram Bot API server for tests and benchmarks, with helpers that play users.

The server runs in its own thread and event loop (see telegram_server.py); the helpers are
called from the test's event loop, so waiting helpers poll with short asyncio sleeps.

    fake = FakeTelegram(); api_base = fake.start()   # "http://127.0.0.1:PORT/bot"
    app = Application.builder().token(fake.token).base_url(api_base).updater(None).build()
    user = fake.user(id=1001, first_name="Ada")
    await fake.send(user, "/start")
    msg = await fake.next_message(user)
    await fake.press(user, msg, "Plans")
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from .telegram_api import build_app
from .telegram_objects import (
    BotMessage,
    ChatRef,
    FakeChat,
    FakeUser,
    callback_update,
    chat_id_of,
    message_update,
)
from .telegram_server import ThreadedServer
from .telegram_state import ApiError, Call, Failure, TelegramState, Webhook, update_type

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
POLL_STEP = 0.005
_DESCRIPTIONS = {
    400: "Bad Request",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class _Registered:
    """Marker: use the secret token the bot registered with setWebhook."""

    def __repr__(self) -> str:
        return "REGISTERED"


REGISTERED: Any = _Registered()


class NotDelivered(Exception):
    """Telegram would not deliver this update (the webhook's allowed_updates exclude it)."""


class FakeTelegram:
    """A fake Bot API on 127.0.0.1 that records the bot's calls and plays its users."""

    def __init__(
        self,
        token: str = "123456789:AAFakeTokenForPortierTests_0123456789",
        username: str = "portier_test_bot",
        first_name: str = "Portier",
    ) -> None:
        self.state = TelegramState(token, username, first_name)
        self._server = ThreadedServer(build_app(self.state))
        self.url: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> str:
        """Start the server; return the API base for python-telegram-bot's base_url."""
        self.url = self._server.start()
        return self.api_base

    def stop(self) -> None:
        """Stop the server (pending long polls return at once)."""
        self.state.closing = True
        self._server.stop()

    def __enter__(self) -> FakeTelegram:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def api_base(self) -> str:
        """Return "http://127.0.0.1:PORT/bot"; the bot appends its token."""
        if self.url is None:
            raise RuntimeError("the fake is not started")
        return f"{self.url}/bot"

    @property
    def token(self) -> str:
        """Return the only token the fake accepts."""
        return self.state.token

    @property
    def username(self) -> str:
        """Return the bot's username (without @)."""
        return str(self.state.bot_user["username"])

    @property
    def bot_user(self) -> dict[str, Any]:
        """Return the bot's User object."""
        return dict(self.state.bot_user)

    # -- what the bot configured -----------------------------------------------------------

    @property
    def webhook(self) -> Webhook | None:
        """Return the registered webhook, or None in getUpdates mode."""
        return self.state.webhook

    def commands(
        self, language_code: str = "", scope: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Return the commands set for a scope (default scope) and language ("" = all)."""
        key = (json.dumps(scope or {"type": "default"}, sort_keys=True), language_code)
        with self.state.lock:
            return list(self.state.commands.get(key, []))

    # -- users and chats -------------------------------------------------------------------

    def user(
        self, id: int, first_name: str = "Ada", last_name: str | None = None,
        username: str | None = None, language_code: str | None = "en",
    ) -> FakeUser:
        """Create a user and their private chat with the bot."""
        user = FakeUser(id, first_name, last_name, username, language_code)
        self._register(user)
        return user

    def group(self, id: int, title: str = "Team", type: str = "") -> FakeChat:
        """Create a group (or a supergroup when the id starts with -100) the bot is in."""
        group = FakeChat(id, title, type)
        self._register(group)
        return group

    def _register(self, who: FakeUser | FakeChat) -> None:
        """Make a user or group known, so the bot may write to it."""
        with self.state.lock:
            if isinstance(who, FakeUser):
                self.state.users[who.id] = who
            self.state.chats[who.id] = who.chat_dict()

    # -- building and delivering updates ---------------------------------------------------

    def make_message_update(
        self, user: FakeUser, text: str, chat: FakeChat | None = None
    ) -> dict[str, Any]:
        """Return an Update with a text message from user (in their private chat or chat)."""
        self._register(user)
        if chat is not None:
            self._register(chat)
        chat_dict = (chat or user).chat_dict()
        message_id = self.state.new_message_id(chat_dict["id"], from_user=True)
        return message_update(self.state.new_update_id(), message_id, user, chat_dict, text)

    def make_callback_update(
        self, user: FakeUser, message: BotMessage, data: str
    ) -> dict[str, Any]:
        """Return an Update with a callback query from user on a bot message."""
        self._register(user)
        current = self.state.current(message.chat_id, message.message_id) or message
        update_id = self.state.new_update_id()
        update = callback_update(update_id, "", user, current.raw, data)
        update["callback_query"]["id"] = self.state.new_query(update)
        return update

    async def deliver(
        self, update: dict[str, Any], *, secret: str | None = REGISTERED,
        client: httpx.AsyncClient | None = None,
    ) -> int:
        """Deliver an update like Telegram; return the webhook's HTTP status (200 if queued).

        With a webhook set, POST it with the registered secret header (or ``secret``; None
        sends no header); otherwise queue it for getUpdates.
        """
        hook = self.state.webhook
        if hook is None:
            self.state.enqueue(update)
            return 200
        if not self.state.allows(update_type(update), hook.allowed_updates):
            raise NotDelivered(
                f"{update_type(update)} is not in allowed_updates {list(hook.allowed_updates)}"
            )
        token = hook.secret_token if secret is REGISTERED else secret
        headers = {SECRET_HEADER: token} if token is not None else {}
        if client is not None:
            response = await client.post(hook.url, json=update, headers=headers)
            return response.status_code
        async with httpx.AsyncClient(timeout=30) as own:
            response = await own.post(hook.url, json=update, headers=headers)
            return response.status_code

    async def post_updates(
        self, updates: Iterable[dict[str, Any]], *, concurrency: int = 16,
        secret: str | None = REGISTERED,
    ) -> list[int]:
        """Deliver many updates with up to concurrency in flight; return their statuses."""
        pending = list(updates)
        statuses = [0] * len(pending)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            gate = asyncio.Semaphore(concurrency)

            async def one(index: int, update: dict[str, Any]) -> None:
                async with gate:
                    statuses[index] = await self.deliver(update, secret=secret, client=client)

            await asyncio.gather(*(one(i, u) for i, u in enumerate(pending)))
        return statuses

    async def send(
        self, user: FakeUser, text: str, chat: FakeChat | None = None, *,
        secret: str | None = REGISTERED,
    ) -> int:
        """Send text (or a /command) as user; return the webhook's HTTP status (200 if queued)."""
        return await self.deliver(self.make_message_update(user, text, chat), secret=secret)

    async def press(
        self, user: FakeUser, message: BotMessage, label: str, *,
        secret: str | None = REGISTERED,
    ) -> int | str:
        """Press the inline button with this label as the message shows it now.

        Returns the delivery's HTTP status, or the button's url for a URL button.
        """
        current = self.state.current(message.chat_id, message.message_id)
        if current is None:
            raise LookupError(f"message {message.message_id} in chat {message.chat_id} is gone")
        button = current.button(label)
        if "url" in button:
            return str(button["url"])
        if "callback_data" not in button:
            raise LookupError(f"button {label!r} has neither callback_data nor url: {button}")
        return await self.press_data(user, current, str(button["callback_data"]), secret=secret)

    async def press_data(
        self, user: FakeUser, message: BotMessage, data: str, *,
        secret: str | None = REGISTERED,
    ) -> int:
        """Deliver a callback query with any data (forged presses); return the HTTP status."""
        return await self.deliver(self.make_callback_update(user, message, data), secret=secret)

    # -- what the bot did ------------------------------------------------------------------

    async def next_message(self, chat: ChatRef, timeout: float = 5.0) -> BotMessage:
        """Wait for the next send or edit in a chat not yet consumed; raise TimeoutError."""
        chat_id = chat_id_of(chat)
        deadline = time.monotonic() + timeout
        while (message := self.state.pop_event(chat_id)) is None:
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"no bot message in chat {chat_id} within {timeout}s; "
                    f"recent errors: {self._recent_errors()}"
                )
            await asyncio.sleep(POLL_STEP)
        return message

    async def assert_no_message(self, chat: ChatRef, within: float = 0.3) -> None:
        """Fail if the bot sends or edits anything in a chat within the given seconds."""
        chat_id = chat_id_of(chat)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if (message := self.state.pop_event(chat_id)) is not None:
                raise AssertionError(f"unexpected bot message in chat {chat_id}: {message.text!r}")
            await asyncio.sleep(POLL_STEP)

    async def wait_for_calls(
        self, method: str, count: int = 1, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """Wait until the bot made at least count calls of a method; return their params."""
        deadline = time.monotonic() + timeout
        while len(calls := self.calls(method)) < count:
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{len(calls)} of {count} {method} calls within {timeout}s; "
                    f"recent errors: {self._recent_errors()}"
                )
            await asyncio.sleep(POLL_STEP)
        return calls

    def messages(self, chat: ChatRef) -> list[BotMessage]:
        """Return the bot's messages in a chat as they are now (deleted ones left out)."""
        return self.state.messages(chat_id_of(chat))

    def history(self, chat: ChatRef) -> list[BotMessage]:
        """Return every send and edit the bot made in a chat, in order."""
        return self.state.history(chat_id_of(chat))

    def deleted(self, chat: ChatRef) -> list[int]:
        """Return the ids of messages deleted in a chat."""
        return self.state.deleted(chat_id_of(chat))

    def calls(self, method: str) -> list[dict[str, Any]]:
        """Return the parameters of each call of a method, including failed ones."""
        return self.state.calls(method)

    @property
    def call_log(self) -> list[Call]:
        """Return every call served, with its status and error description."""
        with self.state.lock:
            return list(self.state.call_log)

    @property
    def answered_callbacks(self) -> list[dict[str, Any]]:
        """Return the parameters of each successful answerCallbackQuery."""
        with self.state.lock:
            return list(self.state.answered_callbacks)

    @property
    def pending_callbacks(self) -> list[str]:
        """Return the ids of callback queries delivered but not answered yet."""
        with self.state.lock:
            return list(self.state.pending_callbacks)

    def on_message(self, listener: Callable[[BotMessage], None]) -> Callable[[], None]:
        """Call listener (in the server thread) on every send or edit; return an unsubscriber."""
        with self.state.lock:
            self.state.listeners.append(listener)

        def unsubscribe() -> None:
            with self.state.lock:
                self.state.listeners.remove(listener)

        return unsubscribe

    def _recent_errors(self) -> list[str]:
        """Describe the last few calls answered with an error."""
        failed = [c for c in self.call_log if c.status != 200][-5:]
        return [f"{c.method}: {c.status} {c.description}" for c in failed]

    # -- failure injection -----------------------------------------------------------------

    def fail_next(
        self, method: str, status: int = 429, retry_after: int = 1, *,
        description: str | None = None, chat_id: ChatRef | str | None = None, times: int = 1,
    ) -> None:
        """Answer the next times calls of method (in chat_id, if given) with an error."""
        text = description or _DESCRIPTIONS.get(status, "Error").format(retry_after=retry_after)
        error = ApiError(status, text, retry_after if status == 429 else None)
        chat = chat_id if chat_id is None or isinstance(chat_id, str) else chat_id_of(chat_id)
        self.state.add_failure(Failure(method.lower(), error, chat, times))
