"""A fake Slack (Web API, OAuth page, response URLs) for tests and benchmarks.

The server runs in its own thread and event loop (telegram_server.ThreadedServer); the
helpers are called from the test's loop, so waiting helpers poll with short asyncio sleeps
until a timeout, as the Telegram fake's do.

    with FakeSlack() as slack:                      # SLACK_API_BASE = slack.api_base
        team = slack.workspace("acme")              # installed: team.bot_token is xoxb-…
        admin = slack.user(team, "ada", is_admin=True, locale="de-DE")
        client = AsyncWebClient(token=team.bot_token, base_url=slack.api_base)
        await client.chat_postMessage(channel=admin.id, text="hi")   # the DM with Ada
        message = await slack.next_message(admin)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from .slack_methods import install_app
from .slack_objects import Conversation, FakeView, FakeWorkspace, SlackMessage, SlackUser
from .slack_server import build_app
from .slack_state import (
    TOKEN_LIFETIME,
    TRIGGER_TTL,
    ApiError,
    Call,
    Failure,
    Limit,
    ResponsePost,
    SlackState,
)
from .telegram_server import ThreadedServer

POLL_STEP = 0.005
# Slack's published limits for the methods Portier calls (https://docs.slack.dev/apis/
# web-api/rate-limits): chat.postMessage about 1 a second per channel ("special tier"),
# Tier 4 100+/min, Tier 3 50+/min, Tier 2 20+/min; per method, app and workspace.
SLACK_LIMITS: dict[str, Limit] = {
    "chat.postMessage": Limit(1, 1.0, "channel"),
    "chat.postEphemeral": Limit(100, 60.0),
    "chat.update": Limit(50, 60.0),
    "chat.delete": Limit(50, 60.0),
    "users.info": Limit(100, 60.0),
    "conversations.open": Limit(50, 60.0),
    "views.open": Limit(100, 60.0),
    "views.update": Limit(100, 60.0),
    "views.publish": Limit(100, 60.0),
    "auth.test": Limit(100, 60.0),
}
Where = SlackUser | Conversation | str


class FakeSlack:
    """A fake Slack on 127.0.0.1 that records the app's calls and plays its workspaces."""

    def __init__(
        self, *, client_id: str = "1111111111.2222222222",
        client_secret: str = "fake-client-secret",
        signing_secret: str = "fake-signing-secret-8f2b", app_id: str = "A0PORTIER1",
        token_rotation: bool = False, token_lifetime: float = TOKEN_LIFETIME,
        trigger_ttl: float = TRIGGER_TTL, rate_limits: bool = False, bot_name: str = "portier",
    ) -> None:
        self.state = SlackState(app_id=app_id, client_id=client_id, client_secret=client_secret,
                                token_rotation=token_rotation, bot_name=bot_name)
        self.state.token_lifetime = token_lifetime  # expires_in of rotated access tokens
        self.state.trigger_ttl = trigger_ttl
        self.signing_secret = signing_secret
        if rate_limits:
            for method, limit in SLACK_LIMITS.items():
                self.limit(method, limit.calls, limit.seconds, per=limit.per)
        self._server = ThreadedServer(build_app(self.state))
        self.url: str | None = None
        self._seen_views: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> str:
        """Start the server; return the API base to pass as SLACK_API_BASE."""
        self.url = self._server.start()
        self.state.base_url = self.url
        return self.api_base

    def stop(self) -> None:
        """Stop the server."""
        self._server.stop()

    def __enter__(self) -> FakeSlack:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _base(self) -> str:
        if self.url is None:
            raise RuntimeError("the fake is not started")
        return self.url

    @property
    def api_base(self) -> str:
        """Return "http://127.0.0.1:PORT/api/" (slack_sdk's base_url, with its slash)."""
        return f"{self._base()}/api/"

    @property
    def oauth_base(self) -> str:
        """Return the authorize page's URL (SLACK_OAUTH_BASE, Bolt's authorization_url)."""
        return f"{self._base()}/oauth/v2/authorize"

    @property
    def app_id(self) -> str:
        """Return the app's id (api_app_id in every payload)."""
        return self.state.app_id

    @property
    def client_id(self) -> str:
        """Return the app's OAuth client id."""
        return self.state.client_id

    @property
    def client_secret(self) -> str:
        """Return the app's OAuth client secret."""
        return self.state.client_secret

    # -- workspaces, users, channels -------------------------------------------------------

    def workspace(self, domain: str = "acme", name: str | None = None, *,
                  enterprise_id: str | None = None, install: bool = True) -> FakeWorkspace:
        """Create a workspace with a #general channel; install the app unless told not to."""
        state = self.state
        team = FakeWorkspace(state.new_id("T"), domain, name or domain.title(), enterprise_id,
                             bot_user_id=state.new_id("U"), bot_id=state.new_id("B"))
        with state.lock:
            state.workspaces[team.id] = team
        team.general = self.channel(team, "general").id
        if install:
            self.install(team)
        return team

    def install(self, team: FakeWorkspace, installer: SlackUser | None = None,
                scope: str = "commands,chat:write,users:read,im:write") -> str:
        """Install the app without the browser (as with SLACK_BOT_TOKEN); return the token."""
        answer = install_app(self.state, team.id, installer.id if installer else "", scope, "")
        return str(answer["access_token"])

    def user(self, team: FakeWorkspace, name: str = "ada", **flags: Any) -> SlackUser:
        """Create a member (flags: is_admin, is_owner, is_primary_owner, is_restricted,
        is_ultra_restricted, is_bot, locale, tz, real_name); they join #general."""
        user = SlackUser(self.state.new_id("U"), team.id, name, **flags)
        with self.state.lock:
            self.state.users[user.id] = user
            self.state.conversations[team.general].members.add(user.id)
        return user

    def update_user(self, user: SlackUser, **flags: Any) -> None:
        """Change a user's flags (a demoted admin: is_admin=False); users.info shows it."""
        with self.state.lock:
            for key, value in flags.items():
                if not hasattr(user, key):
                    raise AttributeError(key)
                setattr(user, key, value)

    def channel(self, team: FakeWorkspace, name: str, *, members: Iterable[SlackUser] = (),
                is_private: bool = False, bot_member: bool = True) -> Conversation:
        """Create a channel with these members; the bot is in it unless bot_member=False."""
        channel = Conversation(self.state.new_id("C"), team.id, name, is_private,
                               members={u.id for u in members}, bot_member=bot_member)
        with self.state.lock:
            self.state.conversations[channel.id] = channel
        return channel

    def join(self, channel: Conversation, *users: SlackUser) -> None:
        """Add users to a channel."""
        with self.state.lock:
            channel.members.update(u.id for u in users)

    def dm(self, user: SlackUser) -> Conversation:
        """Return the app's DM with a user (what conversations.open answers)."""
        return self.state.open_dm(user.team_id, user.id)

    def trigger(self, user: SlackUser) -> str:
        """Return a fresh trigger_id of user, as an interaction would carry it."""
        return self.state.new_trigger(user.team_id, user.id)

    def response_url(self, user: SlackUser, channel: Conversation | None = None) -> str:
        """Return a fresh response_url for user in a channel (default #general)."""
        team = self.team_of(user)
        return self.state.new_response_url(team.id, (channel.id if channel else team.general),
                                           user.id)

    @property
    def trigger_ttl(self) -> float:
        """Return how long a trigger_id stays usable (Slack: 3 seconds)."""
        return self.state.trigger_ttl

    @trigger_ttl.setter
    def trigger_ttl(self, seconds: float) -> None:
        self.state.trigger_ttl = seconds

    @property
    def redirect_uri(self) -> str | None:
        """Return the app's configured OAuth redirect URL (used when Bolt sends none)."""
        return self.state.redirect_uri

    @redirect_uri.setter
    def redirect_uri(self, url: str | None) -> None:
        self.state.redirect_uri = url

    @property
    def workspaces(self) -> list[FakeWorkspace]:
        """Return every workspace, in creation order."""
        with self.state.lock:
            return list(self.state.workspaces.values())

    def members(self, team: FakeWorkspace) -> list[SlackUser]:
        """Return the users of a workspace, in creation order."""
        with self.state.lock:
            return [u for u in self.state.users.values() if u.team_id == team.id]

    def team_of(self, who: SlackUser | Conversation) -> FakeWorkspace:
        """Return the workspace of a user or channel."""
        return self.state.workspaces[who.team_id]

    # -- what the app did ------------------------------------------------------------------

    def _stream(self, where: Where) -> str:
        """Return the message stream of a channel, a user's DM, or a channel id."""
        if isinstance(where, SlackUser):
            return self.dm(where).id
        return where.id if isinstance(where, Conversation) else where

    async def _wait(self, stream: str, timeout: float, what: str) -> SlackMessage:
        """Consume the next event of a stream, waiting up to timeout."""
        deadline = time.monotonic() + timeout
        while (message := self.state.pop_event(stream)) is None:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no {what} within {timeout}s; "
                                   f"recent errors: {self.recent_errors()}")
            await asyncio.sleep(POLL_STEP)
        return message

    async def next_message(self, where: Where, timeout: float = 5.0) -> SlackMessage:
        """Wait for the next post, update or delete in a channel (a user: their DM)."""
        stream = self._stream(where)
        return await self._wait(stream, timeout, f"message in {stream}")

    async def next_ephemeral(self, user: SlackUser, timeout: float = 5.0) -> SlackMessage:
        """Wait for the next message only this user sees: chat.postEphemeral, an ephemeral
        response_url post or an ack's body, or a replacement of one of those."""
        return await self._wait(f"ephemeral:{user.id}", timeout, f"ephemeral for {user.id}")

    async def assert_no_message(self, where: Where, within: float = 0.3) -> None:
        """Fail if anything is posted in a channel or to a user (ephemeral or DM) in time."""
        streams = [self._stream(where)]
        if isinstance(where, SlackUser):
            streams.append(f"ephemeral:{where.id}")
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for stream in streams:
                if (message := self.state.pop_event(stream)) is not None:
                    raise AssertionError(f"unexpected message in {stream}: {message.content!r}")
            await asyncio.sleep(POLL_STEP)

    def messages(self, where: Where) -> list[SlackMessage]:
        """Return the live messages of a channel or a user's DM, oldest first."""
        return self.state.messages(self._stream(where))

    def ephemerals(self, user: SlackUser) -> list[SlackMessage]:
        """Return the live ephemeral messages a user sees, oldest first."""
        return self.state.messages(f"ephemeral:{user.id}")

    def history(self, where: Where) -> list[SlackMessage]:
        """Return every post, update and delete in a channel or DM, in order."""
        return self.state.history(self._stream(where))

    def current(self, message: SlackMessage) -> SlackMessage | None:
        """Return a message as it is now (None once deleted)."""
        return self.state.current(message.channel, message.ts)

    def views(self, user: SlackUser) -> list[FakeView]:
        """Return the modals opened for a user, oldest first (closed ones included)."""
        with self.state.lock:
            return [v for v in self.state.views.values()
                    if v.user_id == user.id and v.type == "modal"]

    def open_view(self, user: SlackUser) -> FakeView | None:
        """Return the user's newest modal that is still open."""
        open_ = [v for v in self.views(user) if not v.closed]
        return open_[-1] if open_ else None

    async def next_view(self, user: SlackUser, timeout: float = 5.0) -> FakeView:
        """Wait until a modal not seen by next_view before is opened for the user."""
        seen = self._seen_views
        deadline = time.monotonic() + timeout
        while True:
            fresh = [v for v in self.views(user) if v.id not in seen]
            if fresh:
                seen.add(fresh[0].id)
                return fresh[0]
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no modal for {user.id} within {timeout}s; "
                                   f"recent errors: {self.recent_errors()}")
            await asyncio.sleep(POLL_STEP)

    def home(self, user: SlackUser) -> FakeView | None:
        """Return the App Home view published for a user, if any."""
        with self.state.lock:
            view_id = self.state.homes.get((user.team_id, user.id))
            return self.state.views.get(view_id) if view_id else None

    async def wait_for_home(self, user: SlackUser, versions: int = 1,
                            timeout: float = 5.0) -> FakeView:
        """Wait until the user's App Home was published at least versions times."""
        deadline = time.monotonic() + timeout
        while (view := self.home(user)) is None or len(view.versions) < versions:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"App Home of {user.id} not published {versions} times "
                                   f"within {timeout}s; recent errors: {self.recent_errors()}")
            await asyncio.sleep(POLL_STEP)
        return view

    def responses(self, url: str | None = None) -> list[ResponsePost]:
        """Return the posts to response URLs (to one URL, if given), in order."""
        with self.state.lock:
            return [p for p in self.state.response_posts if url is None or p.url == url]

    def calls(self, method: str) -> list[dict[str, Any]]:
        """Return the parameters of each call of a method, failed ones included."""
        with self.state.lock:
            return [c.params for c in self.state.call_log if c.method == method]

    @property
    def call_log(self) -> list[Call]:
        """Return every Web API call served, with its status and error."""
        with self.state.lock:
            return list(self.state.call_log)

    async def wait_for_calls(self, method: str, count: int = 1,
                             timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until the app made at least count calls of a method; return their params."""
        deadline = time.monotonic() + timeout
        while len(calls := self.calls(method)) < count:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(calls)} of {count} {method} calls within {timeout}s;"
                                   f" recent errors: {self.recent_errors()}")
            await asyncio.sleep(POLL_STEP)
        return calls

    def recent_errors(self) -> list[str]:
        """Describe the last few calls answered with an error."""
        failed = [c for c in self.call_log if c.error][-5:]
        return [f"{c.method}: {c.status} {c.error}" for c in failed]

    def tokens(self, team: FakeWorkspace) -> list[str]:
        """Return the live access tokens of a workspace."""
        with self.state.lock:
            return [t.value for t in self.state.tokens.values() if t.team_id == team.id
                    and t.kind != "refresh" and not t.revoked]

    # -- time, failures and limits ---------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the fake's clock on (expires triggers, response URLs, rotated tokens)."""
        with self.state.lock:
            self.state.clock_offset += seconds

    def fail_next(self, method: str, status: int = 429, *, error: str | None = None,
                  retry_after: int = 1, channel: str | None = None, times: int = 1) -> None:
        """Answer the next times calls of method (in channel, if given) with an error.

        429 answers ratelimited with Retry-After; 5xx answers internal_error with that
        status; 200 needs an error code (channel_not_found, token_revoked …).
        """
        if status == 200 and error is None:
            raise ValueError("a 200 failure needs a Slack error code")
        code = error or ("ratelimited" if status == 429 else "internal_error")
        failure = ApiError(code, status, retry_after=retry_after if status == 429 else None)
        with self.state.lock:
            self.state.failures.append(Failure(method, failure, channel, times))

    def limit(self, method: str, calls: int, seconds: float, *, per: str = "team") -> None:
        """Rate-limit a method: at most calls per seconds, per "team" or per "channel"."""
        with self.state.lock:
            self.state.limits[method] = Limit(calls, seconds, per)
