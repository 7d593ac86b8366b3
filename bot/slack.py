"""The Slack channel: slack-bolt's AsyncApp behind its Starlette adapter, neutral replies out.

Thin like Bolt's own examples: Bolt verifies each request's signature and age (401
otherwise), acks within Slack's 3 seconds and runs the listener after the ack
(`process_before_response=False`), so Stripe is called only after the ack. A listener turns
the request into a portal call and the replies into Block Kit, ephemeral (response_url) or
in a modal where a reply asks for an answer. Slack's retries of an event are deduplicated by
event id in the database, which Bolt does not do.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any

import aiohttp
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError, SlackTokenRotationError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from billing import teams
from bot.channels import Pacing
from bot.outbox import Issue, RetryLater, Unreachable
from bot.runtime import secret
from bot.settings import Settings
from bot.slack_admins import SlackRoster
from bot.slack_answer import SlackAnswers, answered
from bot.slack_app import CHANNEL, SlackApp, clean_id, role_of
from bot.slack_errors import outcome
from bot.slack_oauth import EncryptedInstallationStore, FreshBots, authorize
from bot.slack_render import (
    ACTION,
    ANSWER,
    ASK,
    PICK,
    blocks,
    fallback,
)
from bot.slack_requests import malformed
from handlers.context import Actor
from handlers.flows.team_access import ADMIN
from handlers.portal import Portal
from handlers.replies import Reply

log = logging.getLogger(__name__)
__all__ = ["CHANNEL", "SlackApp", "SlackChannel", "role_of"]
# users.info of the update being handled: each Bolt listener runs in a task of its own.
_THIS_UPDATE: ContextVar[tuple[str, dict[str, Any]] | None] = ContextVar(
    "slack_user", default=None)
_THIS_CLIENT: ContextVar[AsyncWebClient | None] = ContextVar("slack_client", default=None)
# channels:read and groups:read: conversations.info of a billing channel being chosen.
SCOPES = ("commands", "chat:write", "users:read", "im:write", "channels:read", "groups:read")


class SlackChannel:
    """Bolt's AsyncApp wired to the portal (single workspace, SLACK_BOT_TOKEN)."""

    name = CHANNEL
    pacing = Pacing(per_chat=1.0)  # Slack: about one message a second per channel

    def __init__(self, settings: Settings, portal: Portal) -> None:
        self.settings = settings
        self.portal = portal
        self._session: aiohttp.ClientSession | None = None  # opened by start()
        self.client = self._new_client(secret(settings.slack_bot_token) or None)
        self.store: EncryptedInstallationStore | None = None
        self.bots: FreshBots | None = None  # OAuth: the stored bots, tokens rotated
        if settings.slack_oauth and settings.slack_bot_token is None:
            self.app = self._oauth_app(settings, portal)
        else:  # one workspace, SLACK_BOT_TOKEN
            if settings.slack_oauth:
                log.warning("SLACK_BOT_TOKEN is set: serving its one workspace; the OAuth "
                            "settings (SLACK_CLIENT_ID, SLACK_CLIENT_SECRET) are not used")
            self.app = AsyncApp(client=self.client,
                                signing_secret=secret(settings.slack_signing_secret),
                                process_before_response=False)
        self.handler = AsyncSlackRequestHandler(self.app)
        self.answers = SlackAnswers(portal, self._web, settings.locale)
        self.slack_app = SlackApp(self._user, self._installer if self.store else None,
                                  admins=self._billing_admins, conversation=self._channel_info,
                                  directory=self._directory)
        self._counted: Callable[[], None] | None = None
        self.app.middleware(self._dedupe)
        self.app.command("/billing")(self.on_command)
        self.app.action(re.compile(rf"^{ACTION}:\d+$"))(self.on_action)
        self.app.action(ASK)(self.on_ask)
        self.app.action(PICK)(self.on_pick)
        self.app.action(re.compile(r"^portier:url:\d+$"))(self.on_link)
        self.app.view(ANSWER)(self.on_answer)
        self.app.event("app_home_opened")(self.on_home)
        self.app.error(self.on_error)

    def _new_client(self, token: str | None, *, retries: bool = True) -> AsyncWebClient:
        """Return a Web API client. One answering inside an update retries a 429 once and a
        5xx twice; an outbox push's (`retries=False`) retries nothing, not even a dropped
        connection (slack_sdk's default), so that Slack's answer reaches the outbox at once
        and the notice waits there, durably, for its Retry-After."""
        return AsyncWebClient(
            token=token, base_url=self.settings.slack_api_base, session=self._session,
            retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1),
                            AsyncServerErrorRetryHandler(max_retry_count=2)] if retries else [])

    def _oauth_app(self, settings: Settings, portal: Portal) -> AsyncApp:
        """Build the app for many workspaces: Bolt's OAuth flow, installations in Portier's
        database (tokens encrypted), token rotation, uninstalls and revocations removed."""
        engine = portal.billing.db.engine
        self.store = EncryptedInstallationStore(str(settings.slack_client_id), engine,
                                                secret(settings.data_key),
                                                read_engine=portal.billing.db.read_engine)
        self.bots = FreshBots(self.store, client_id=str(settings.slack_client_id),
                              client_secret=secret(settings.slack_client_secret),
                              client=self.client)
        oauth = AsyncOAuthSettings(
            client_id=str(settings.slack_client_id),
            client_secret=secret(settings.slack_client_secret), scopes=list(SCOPES),
            authorization_url=settings.slack_oauth_base, installation_store=self.store,
            state_store=AsyncSQLAlchemyOAuthStateStore(expiration_seconds=600, engine=engine),
            redirect_uri=f"{settings.public_url}/slack/oauth_redirect",
            install_path="/slack/install", redirect_uri_path="/slack/oauth_redirect")
        # installation_store given to AsyncApp too: otherwise Bolt refreshes rotated tokens
        # with a default client (slack.com) instead of this one (SLACK_API_BASE).
        app = AsyncApp(signing_secret=secret(settings.slack_signing_secret),
                       oauth_settings=oauth, installation_store=self.store,
                       authorize=authorize(self.bots),
                       client=self.client, process_before_response=False)
        app.enable_token_revocation_listeners()  # app_uninstalled, tokens_revoked
        return app

    async def _installer(self, team: str) -> str | None:
        """Return who installed the app in the workspace (OAuth), if known."""
        if self.store is None:
            return None
        found = await self.store.async_find_installation(enterprise_id=None, team_id=team)
        return found.user_id if found is not None else None

    def _web(self) -> AsyncWebClient:
        """Return the client of the update being handled (its workspace's token)."""
        return _THIS_CLIENT.get() or self.client

    async def _client_for(self, team: str, *, retries: bool = True) -> AsyncWebClient:
        """Return a client with the workspace's bot token (for pushes, outside an update),
        rotated first if it expires soon (once, with Bolt's authorize and other pushes)."""
        if self.bots is None:
            return self.client if retries else self._new_client(self.client.token,
                                                                retries=False)
        try:
            bot = await self.bots(enterprise_id=None, team_id=team)
        except SlackTokenRotationError:  # logged; Slack or the refresh token may recover
            raise RetryLater(60.0) from None
        if bot is None or not bot.bot_token:
            raise Unreachable("the workspace uninstalled the app")
        return self._new_client(bot.bot_token, retries=retries)

    # -- the Channel protocol --------------------------------------------------------------

    def routes(self, counted: Callable[[], None] | None = None) -> Sequence[BaseRoute]:
        """Serve `POST /slack/events` (events, slash commands, interactivity)."""
        self._counted = counted
        routes = [Route("/slack/events", self.events, methods=["POST"])]
        if self.store is not None:
            routes += [Route(path, self.events, methods=["GET"])
                       for path in ("/slack/install", "/slack/oauth_redirect")]
        return routes

    async def start(self) -> None:
        """Register the ChatApp with the portal, and who a team's notices go to."""
        # One aiohttp session for every Web API call, Bolt's per-request clients included
        # (they take the app client's): without it slack_sdk opens a session and a
        # connection for each call, which under a burst of commands slowed every ack.
        if self._session is None:
            self._session = self.client.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=30))  # slack_sdk's own default timeout
        self.portal.register(self.slack_app)
        self.portal.billing.rosters[CHANNEL] = SlackRoster(
            self._client_for, lambda user: role_of(user) == ADMIN,
            self._installer if self.store else None, self._added_admins)

    async def stop(self) -> None:
        """Close the Web API client's HTTP session."""
        session = getattr(self.client, "session", None)
        if session is not None and not session.closed:
            await session.close()

    async def send(self, chat_id: str, reply: Reply, *, issue: Issue | None = None) -> None:
        """Post a reply into a DM or channel ("T…:U…" or "T…:C…"), mapping Slack's errors to
        the outbox's outcomes."""
        team, _, target = chat_id.partition(":")
        if not clean_id(target) or not clean_id(team):
            raise Unreachable("not a Slack chat id")
        client = await self._client_for(team, retries=False)
        if issue is not None:
            await issue()
        try:
            posted = await client.chat_postMessage(channel=target, text=fallback(reply),
                                                   blocks=blocks(reply), unfurl_links=False)
        except SlackApiError as error:
            raise outcome(error) from None
        if reply.ref:  # a later reply replaces this copy too (chat.update by channel and ts)
            async with self.portal.billing.db.session() as session:
                await teams.remember_copy(session, channel=CHANNEL, ref=reply.ref,
                                          chat_id=f"{team}:{posted.get('channel') or target}",
                                          message_id=str(posted.get("ts") or ""),
                                          locale=reply.locale)

    async def events(self, request: Request) -> Response:
        """Hand the request to Bolt (which answers 401 to a bad or old signature)."""
        if self._counted is not None:
            self._counted()
        why = malformed(await request.body(), request.headers.get("content-type"))
        if why is not None:  # what was sent is not logged: it came from outside
            log.warning("Slack request refused: %s", why)
            return JSONResponse({"error": "malformed request"}, status_code=400)
        return await self.handler.handle(request)

    # -- Bolt listeners --------------------------------------------------------------------

    async def _dedupe(self, body: dict[str, Any], next: Callable[[], Any]) -> Any:  # noqa: A002
        """Handle each Events API event once: Slack retries one not acked in 3 seconds.

        The id is recorded before the listener runs, so a crash in between drops Slack's
        retry too: right for the events handled (App Home is drawn again when next opened;
        uninstalls are Bolt's, acked at once), not for an event whose work must not be lost."""
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if isinstance(event_id, str) and event_id:
            async with self.portal.billing.db.session() as session:
                first = await teams.first_delivery(session, channel=CHANNEL, event_id=event_id,
                                                   team_id=str(body.get("team_id") or ""))
            if not first:
                return BoltResponse(status=200, body="")
        return await next()

    async def _user(self, team: str, member: str) -> dict[str, Any]:
        """Return users.info's user, asked once per update (never reused across updates, so
        that a demoted admin loses it at their next action)."""
        key = f"{team}:{member}"
        fetched = _THIS_UPDATE.get()
        if fetched is not None and fetched[0] == key:
            return fetched[1]
        answer = await self._web().users_info(user=member, include_locale=True)
        user = dict(answer.get("user") or {})
        if user.get("team_id") not in (None, team):
            user = {"deleted": True}  # a user of another workspace is nobody here
        if fetched is None:  # the actor is asked first; a member they pick is not kept
            _THIS_UPDATE.set((key, user))
        return user

    async def _billing_admins(self, team: str) -> list[str]:
        """Return the ids of the workspace's billing admins, as its notices' roster has them."""
        return [admin.member_id for admin in await self.portal.billing.rosters[CHANNEL](team)]

    async def _added_admins(self, team: str) -> list[str]:
        """Return the members an admin made billing admins (Portier's own record)."""
        async with self.portal.billing.db.session() as session:
            return await teams.billing_admins(session, channel=CHANNEL, team_id=team)

    async def _directory(self, team: str) -> list[dict[str, Any]]:
        """Return the workspace's users (users.list, 200 a page, at most 10 pages)."""
        members: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(10):
            page = await self._web().users_list(limit=200, cursor=cursor)
            members += [dict(u) for u in page.get("members") or [] if isinstance(u, dict)]
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return members

    async def _channel_info(self, team: str, channel: str) -> dict[str, Any]:
        """Return conversations.info's channel (channel_not_found for another workspace's)."""
        answer = await self._web().conversations_info(channel=channel)
        return dict(answer.get("channel") or {})

    async def _actor(self, team: Any, user: Any) -> Actor | None:
        team_id, user_id = clean_id(team), clean_id(user)
        if team_id is None or user_id is None:
            return None
        try:
            info = await self._user(team_id, user_id)
        except SlackApiError:
            info = {}
        locale = info.get("locale")
        name = info.get("real_name") or info.get("name")
        return Actor(channel=CHANNEL, user_id=f"{team_id}:{user_id}",
                     chat_id=f"{team_id}:{user_id}", private=True,
                     language=locale if isinstance(locale, str) else None,
                     name=name[:64] if isinstance(name, str) else None)

    async def _acked(self, ack: Any, client: AsyncWebClient, team: Any,
                     user: Any) -> Actor | None:
        """Ack the request at once, keep the update's client, and return who acted (None
        when the request names no workspace or user): every listener's first steps."""
        await ack()
        _THIS_CLIENT.set(client)  # awaited, not a task: the listener's context gets it
        return await self._actor(team, user)

    async def _acting(self, ack: Any, client: AsyncWebClient,
                      body: dict[str, Any]) -> Actor | None:
        """`_acked` for an interaction (a button, a picker, a modal), whose body names the
        workspace and the user as objects."""
        return await self._acked(ack, client, (body.get("team") or {}).get("id"),
                                 (body.get("user") or {}).get("id"))

    async def on_command(self, ack: Any, command: dict[str, Any], respond: Any,
                         client: AsyncWebClient) -> None:
        """Ack `/billing` at once, then answer ephemerally."""
        actor = await self._acked(ack, client, command.get("team_id"), command.get("user_id"))
        if actor is None:
            return
        text = str(command.get("text") or "")[:1000]
        replies = await self.portal.command(actor, "billing", text)
        await self.answer(actor, replies, respond=respond,
                          trigger=command.get("trigger_id"),
                          where=clean_id(command.get("channel_id")))

    async def on_action(self, ack: Any, body: dict[str, Any], action: dict[str, Any],
                        respond: Any, client: AsyncWebClient) -> None:
        """Ack a button press, then run its action."""
        actor = await self._acting(ack, client, body)
        value = action.get("value")
        if actor is None or not isinstance(value, str):
            return
        replies = await self.portal.button(actor, value)
        await self.answer(actor, replies, respond=respond, trigger=body.get("trigger_id"),
                          where=_channel_of(body))

    async def on_ask(self, ack: Any, body: dict[str, Any], action: dict[str, Any],
                     client: AsyncWebClient) -> None:
        """Open the answer modal from its button (the earlier trigger had expired)."""
        actor = await self._acting(ack, client, body)
        if actor is None:
            return
        question = Reply(str(action.get("value") or "")[:2000], expect_text=True)
        await self.answers.open_modal(actor, question, body.get("trigger_id"),
                                      _channel_of(body))

    async def on_pick(self, ack: Any, body: dict[str, Any], action: dict[str, Any],
                      respond: Any, client: AsyncWebClient) -> None:
        """Ack the choice in a picker shown in a message, then answer the pending question."""
        actor = await self._acting(ack, client, body)
        if actor is None:
            return
        replies = await self.portal.text(actor, answered(action))
        await self.answer(actor, replies, respond=respond, trigger=body.get("trigger_id"),
                          where=_channel_of(body))

    async def on_link(self, ack: Any) -> None:
        """Ack the press of a URL button: Slack opened the URL itself."""
        await ack()

    async def on_answer(self, ack: Any, body: dict[str, Any], view: dict[str, Any],
                        client: AsyncWebClient) -> None:
        """Close the modal at once, then answer the pending question with what was typed."""
        actor = await self._acting(ack, client, body)
        if actor is None:
            return
        state = (((view.get("state") or {}).get("values") or {}).get("answer") or {})
        text = answered(state.get("value") or {})
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            meta = {}
        where = clean_id(meta.get("channel")) if isinstance(meta, dict) else None
        replies = await self.portal.text(actor, text if isinstance(text, str) else "")
        await self.answer(actor, replies, respond=None, trigger=body.get("trigger_id"),
                          where=where)

    async def on_home(self, body: dict[str, Any], event: dict[str, Any],
                      client: AsyncWebClient) -> None:
        """Publish the App Home: the team-plan dashboard for admins, seat status for members
        (the same replies as `/billing`)."""
        _THIS_CLIENT.set(client)
        if event.get("tab") not in (None, "home"):
            return
        actor = await self._actor(body.get("team_id"), event.get("user"))
        if actor is None:
            return
        replies = await self.portal.command(actor, "billing", "")
        shown = [block for reply in replies for block in blocks(reply)][:100]
        _team, _, user = actor.user_id.partition(":")
        await self._web().views_publish(user_id=user, view={"type": "home", "blocks": shown})

    async def on_error(self, error: Exception, body: dict[str, Any]) -> None:
        """Log a listener's failure without secrets."""
        log.error("slack request failed: %s", type(error).__name__, exc_info=error)

    # -- answering -------------------------------------------------------------------------

    async def answer(self, actor: Actor, replies: list[Reply], *, respond: Any,
                     trigger: Any, where: str | None) -> None:
        """Show the replies to the actor (bot.slack_answer)."""
        await self.answers.answer(actor, replies, respond=respond, trigger=trigger,
                                  where=where)


def _channel_of(body: dict[str, Any]) -> str | None:
    """Return the id of the conversation an interaction happened in, if any."""
    return clean_id((body.get("channel") or {}).get("id"))
