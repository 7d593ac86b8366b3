"""The fake Slack's memory, shared by the server thread and the test's event loop.

Ids look like Slack's (T… teams, U… users, C… channels, D… DMs, V… views, A… apps) and
every record sits under one lock, because the Web API runs in the server's thread.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .slack_objects import (
    Conversation,
    FakeView,
    FakeWorkspace,
    SlackMessage,
    SlackUser,
)

# A trigger_id may open one modal within 3 seconds of the interaction
# (https://docs.slack.dev/interactivity/handling-user-interaction/: "trigger_id … expires
# in 3 seconds"; views.open answers expired_trigger_id / exchanged_trigger_id).
TRIGGER_TTL = 3.0
# "You can use response_url to publish up to 5 times within 30 minutes"
# (https://docs.slack.dev/interactivity/handling-user-interaction/).
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60
# Access tokens expire 12 hours after issue with token rotation on
# (https://docs.slack.dev/authentication/using-token-rotation).
TOKEN_LIFETIME = 12 * 60 * 60.0
CODE_TTL = 10 * 60


class ApiError(Exception):
    """A Web API error: Slack's error code, the HTTP status (200 as Slack does) and extras."""

    def __init__(self, error: str, status: int = 200, *, retry_after: int | None = None,
                 **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.retry_after = retry_after
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """Return the JSON body Slack answers with."""
        return {"ok": False, "error": self.error, **self.extra}


@dataclass
class Token:
    """An access or refresh token the fake issued."""

    value: str
    team_id: str
    kind: str  # "bot", "user" or "refresh"
    user_id: str
    scope: str
    expires_at: float | None = None
    revoked: bool = False


@dataclass
class Trigger:
    """A trigger_id handed out in an interaction payload."""

    team_id: str
    user_id: str
    issued_at: float
    used: bool = False


@dataclass
class ResponseTarget:
    """Where posts to one response_url land, and how often it was used."""

    token: str
    team_id: str
    channel_id: str
    user_id: str
    original: tuple[str, str] | None  # (channel, ts) of the message the action came from
    created_at: float
    uses: int = 0


@dataclass(frozen=True)
class ResponsePost:
    """One POST to a response_url, as it arrived (at: time.perf_counter())."""

    url: str
    body: dict[str, Any]
    status: int
    at: float


@dataclass
class Grant:
    """An OAuth code the authorize page issued."""

    team_id: str
    user_id: str
    scope: str
    user_scope: str
    redirect_uri: str | None
    issued_at: float
    used: bool = False


@dataclass(frozen=True)
class Call:
    """One Web API request the fake served, with its answer."""

    method: str
    params: dict[str, Any]
    team_id: str | None
    status: int
    error: str | None
    at: float


@dataclass
class Failure:
    """An error to answer instead of serving the next matching calls."""

    method: str
    error: ApiError
    channel: str | None
    remaining: int


@dataclass
class Limit:
    """A rate limit: at most calls per seconds, per channel or per team."""

    calls: int
    seconds: float
    per: str = "team"  # "team" or "channel"
    seen: dict[str, deque[float]] = field(default_factory=dict)


class SlackState:
    """Workspaces, users, conversations, messages, views, tokens and the call log."""

    def __init__(self, *, app_id: str, client_id: str, client_secret: str,
                 token_rotation: bool, bot_name: str) -> None:
        self.lock = threading.RLock()
        self.app_id = app_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_rotation = token_rotation
        self.bot_name = bot_name
        self.base_url = ""
        self.redirect_uri: str | None = None
        self.clock_offset = 0.0
        self.trigger_ttl = TRIGGER_TTL
        self.token_lifetime = TOKEN_LIFETIME
        self.workspaces: dict[str, FakeWorkspace] = {}
        self.users: dict[str, SlackUser] = {}
        self.conversations: dict[str, Conversation] = {}
        self.dms: dict[tuple[str, str], str] = {}  # (team, user) -> D…
        self.tokens: dict[str, Token] = {}
        self.triggers: dict[str, Trigger] = {}
        self.responses: dict[str, ResponseTarget] = {}
        self.response_posts: list[ResponsePost] = []
        self.grants: dict[str, Grant] = {}
        self.views: dict[str, FakeView] = {}
        self.homes: dict[tuple[str, str], str] = {}  # (team, user) -> view id
        self.call_log: list[Call] = []
        self.failures: list[Failure] = []
        self.limits: dict[str, Limit] = {}
        self._current: dict[tuple[str, str], SlackMessage] = {}
        self._history: dict[str, list[SlackMessage]] = {}
        self._cursor: dict[str, int] = {}
        self._deleted: dict[str, list[str]] = {}
        self._counter = itertools.count(1)
        self._ts_last = 0.0

    # -- time and ids ----------------------------------------------------------------------

    def now(self) -> float:
        """Return the fake's wall clock (real time plus what tests advanced it by)."""
        return time.time() + self.clock_offset

    def new_id(self, prefix: str, width: int = 10) -> str:
        """Return a fresh Slack-style id with a prefix (T, U, C, D, V, B, Ev …)."""
        with self.lock:
            return f"{prefix}{next(self._counter):0{width - len(prefix)}d}"

    def new_ts(self) -> str:
        """Return a message ts: unique, increasing, "seconds.micros" as Slack writes it."""
        with self.lock:
            stamp = max(round(self.now(), 6), round(self._ts_last + 0.000001, 6))
            self._ts_last = stamp
            return f"{stamp:.6f}"

    # -- tokens ----------------------------------------------------------------------------

    def issue_token(self, team_id: str, kind: str, user_id: str, scope: str) -> Token:
        """Issue an access token (xoxb-/xoxp-) or a refresh token (xoxe-1-)."""
        prefix = {"bot": "xoxb", "user": "xoxp", "refresh": "xoxe-1"}[kind]
        value = f"{prefix}-{team_id[1:]}-{user_id[1:]}-{secrets.token_hex(12)}"
        expires = (
            self.now() + self.token_lifetime if self.token_rotation and kind != "refresh" else None
        )
        token = Token(value, team_id, kind, user_id, scope, expires)
        with self.lock:
            self.tokens[value] = token
        return token

    def check_token(self, value: str | None) -> Token:
        """Return the live access token or raise Slack's auth error."""
        if not value:
            raise ApiError("not_authed")
        with self.lock:
            token = self.tokens.get(value)
        if token is None or token.kind == "refresh":
            raise ApiError("invalid_auth")
        if token.revoked:
            raise ApiError("token_revoked")
        if token.expires_at is not None and self.now() >= token.expires_at:
            raise ApiError("token_expired")
        return token

    def revoke_team(self, team_id: str) -> None:
        """Revoke every token of a team (apps.uninstall)."""
        with self.lock:
            for token in self.tokens.values():
                if token.team_id == team_id:
                    token.revoked = True
            workspace = self.workspaces.get(team_id)
            if workspace is not None:
                workspace.bot_token = None

    # -- triggers and response URLs --------------------------------------------------------

    def new_trigger(self, team_id: str, user_id: str) -> str:
        """Return a trigger_id that can open one view within trigger_ttl seconds."""
        value = f"{next(self._counter)}.{team_id[1:]}.{secrets.token_hex(16)}"
        with self.lock:
            self.triggers[value] = Trigger(team_id, user_id, self.now())
        return value

    def use_trigger(self, value: str, team_id: str) -> Trigger:
        """Spend a trigger_id, or raise the error views.open answers with."""
        with self.lock:
            trigger = self.triggers.get(value)
            if trigger is None or trigger.team_id != team_id:
                raise ApiError("invalid_trigger_id")
            if trigger.used:
                raise ApiError("exchanged_trigger_id")
            if self.now() - trigger.issued_at > self.trigger_ttl:
                raise ApiError("expired_trigger_id")
            trigger.used = True
            return trigger

    def new_response_url(self, team_id: str, channel_id: str, user_id: str,
                         original: tuple[str, str] | None = None) -> str:
        """Return a response_url for an interaction in a channel."""
        token = secrets.token_urlsafe(18)
        with self.lock:
            self.responses[token] = ResponseTarget(
                token, team_id, channel_id, user_id, original, self.now())
        return f"{self.base_url}/response/{token}"

    # -- messages --------------------------------------------------------------------------

    def record(self, message: SlackMessage) -> None:
        """Store a posted, updated or deleted message and wake the waiters of its stream."""
        with self.lock:
            key = (message.channel, message.ts)
            if message.deleted:
                self._current.pop(key, None)
                self._deleted.setdefault(message.channel, []).append(message.ts)
            else:
                self._current[key] = message
            self._history.setdefault(message.stream, []).append(message)

    def current(self, channel: str, ts: str) -> SlackMessage | None:
        """Return a message as it is now, or None when unknown or deleted."""
        with self.lock:
            return self._current.get((channel, ts))

    def messages(self, stream: str) -> list[SlackMessage]:
        """Return the live messages of a stream, oldest first."""
        with self.lock:
            found = {(m.channel, m.ts) for m in self._history.get(stream, [])}
            live = [self._current[k] for k in found if k in self._current]
        return sorted(live, key=lambda m: float(m.ts))

    def history(self, stream: str) -> list[SlackMessage]:
        """Return every post, update and delete of a stream, in order."""
        with self.lock:
            return list(self._history.get(stream, []))

    def deleted(self, channel: str) -> list[str]:
        """Return the ts of the messages deleted in a channel."""
        with self.lock:
            return list(self._deleted.get(channel, []))

    def pop_event(self, stream: str) -> SlackMessage | None:
        """Consume the oldest event of a stream not yet consumed."""
        with self.lock:
            events = self._history.get(stream, [])
            cursor = self._cursor.get(stream, 0)
            if cursor >= len(events):
                return None
            self._cursor[stream] = cursor + 1
            return events[cursor]

    # -- conversations ---------------------------------------------------------------------

    def conversation(self, channel_id: str, team_id: str) -> Conversation:
        """Return a conversation of a team, or raise channel_not_found."""
        with self.lock:
            conversation = self.conversations.get(channel_id)
        if conversation is None or conversation.team_id != team_id:
            raise ApiError("channel_not_found")
        return conversation

    def user(self, user_id: str, team_id: str) -> SlackUser:
        """Return a user of a team, or raise user_not_found."""
        with self.lock:
            user = self.users.get(user_id)
        if user is None or user.team_id != team_id:
            raise ApiError("user_not_found")
        return user

    def open_dm(self, team_id: str, user_id: str) -> Conversation:
        """Return the app's DM with a user, opening it on first use."""
        with self.lock:
            channel_id = self.dms.get((team_id, user_id))
            if channel_id is None:
                channel_id = self.new_id("D")
                self.dms[(team_id, user_id)] = channel_id
                self.conversations[channel_id] = Conversation(
                    channel_id, team_id, "", is_im=True, members={user_id}, bot_member=True,
                    user=user_id)
            return self.conversations[channel_id]

    # -- failures, limits and the call log -------------------------------------------------

    def take_failure(self, method: str, channel: Any) -> ApiError | None:
        """Return the error arranged for this call, if any."""
        with self.lock:
            for failure in self.failures:
                if failure.method == method and (
                    failure.channel is None or failure.channel == channel
                ):
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self.failures.remove(failure)
                    return failure.error
        return None

    def throttle(self, method: str, team_id: str, channel: Any) -> None:
        """Raise ratelimited (HTTP 429 with Retry-After) when a method's limit is spent."""
        with self.lock:
            limit = self.limits.get(method)
            if limit is None:
                return
            key = f"{team_id}:{channel}" if limit.per == "channel" else team_id
            window = limit.seen.setdefault(key, deque())
            now = time.monotonic()
            while window and now - window[0] >= limit.seconds:
                window.popleft()
            if len(window) >= limit.calls:
                wait = max(1, int(limit.seconds - (now - window[0]) + 0.999))
                raise ApiError("ratelimited", 429, retry_after=wait)
            window.append(now)

    def log(self, method: str, params: dict[str, Any], team_id: str | None, status: int,
            error: str | None) -> None:
        """Record a served call."""
        with self.lock:
            self.call_log.append(Call(method, params, team_id, status, error,
                                      time.perf_counter()))
