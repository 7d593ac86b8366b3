"""The fake Slack, driven by the unmodified slack_sdk and slack_bolt (no Portier code)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.oauth.installation_store import FileInstallationStore
from slack_sdk.oauth.state_store import FileOAuthStateStore
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.slack import FakeSlack
from tests.fakes.slack_driver import SlackDriver
from tests.fakes.slack_objects import FakeWorkspace
from tests.fakes.telegram_server import serve

# slack_sdk's oauth_v2_access passes client credentials as aiohttp.BasicAuth, which aiohttp
# 3.14 deprecates (slack_sdk/web/async_base_client.py); nothing to fix on our side.
pytestmark = pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")

BUTTONS: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*Team plan*"}},
    {"type": "actions", "block_id": "seats", "elements": [
        {"type": "button", "action_id": "seats:add", "value": "T1",
         "text": {"type": "plain_text", "text": "Add seats"}}]},
]
SEATS_MODAL = {
    "type": "modal", "callback_id": "seats", "private_metadata": "sub_1",
    "title": {"type": "plain_text", "text": "Seats"},
    "submit": {"type": "plain_text", "text": "Preview"},
    "blocks": [{"type": "input", "block_id": "seats", "label": {
        "type": "plain_text", "text": "Number of seats"},
        "element": {"type": "plain_text_input", "action_id": "count"}}],
}


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    """Serve a fresh fake Slack."""
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def client(slack: FakeSlack) -> AsyncIterator[tuple[AsyncWebClient, FakeWorkspace]]:
    """Return slack_sdk's client with an installed workspace's bot token."""
    team = slack.workspace("acme")
    yield AsyncWebClient(token=team.bot_token, base_url=slack.api_base), team


async def test_messages_as_slack_sdk_sends_them(
        slack: FakeSlack, client: tuple[AsyncWebClient, FakeWorkspace]) -> None:
    """chat.* and conversations.open answer in Slack's shapes and are recorded per channel."""
    web, team = client
    ada = slack.user(team, "ada", is_admin=True, locale="de-DE")
    who = await web.auth_test()
    assert (who["team_id"], who["user_id"], who["bot_id"], who["enterprise_id"]) == (
        team.id, team.bot_user_id, team.bot_id, None)
    info = await web.users_info(user=ada.id, include_locale=True)
    assert (info["user"]["is_admin"], info["user"]["locale"]) == (True, "de-DE")
    assert "locale" not in (await web.users_info(user=ada.id))["user"]

    dm = (await web.conversations_open(users=ada.id))["channel"]["id"]
    assert dm.startswith("D") and dm == slack.dm(ada).id
    posted = await web.chat_postMessage(channel=dm, text="Team plan", blocks=BUTTONS)
    first = await slack.next_message(ada)
    assert (first.ts, first.content, first.button("Add seats")["value"]) == (
        posted["ts"], "*Team plan*\nAdd seats", "T1")
    await web.chat_update(channel=dm, ts=posted["ts"], text="Updated")
    edited = await slack.next_message(ada)
    assert (edited.edited, edited.text) == (True, "Updated")
    assert edited.content == "*Team plan*\nAdd seats"  # chat.update without blocks keeps them
    await web.chat_postEphemeral(channel=team.general, user=ada.id, text="only you")
    assert (await slack.next_ephemeral(ada)).text == "only you"
    await web.chat_delete(channel=dm, ts=posted["ts"])
    assert (await slack.next_message(ada)).deleted and slack.messages(ada) == []
    await web.chat_postMessage(channel=ada.id, text="to a user id goes to the DM")
    assert (await slack.next_message(dm)).text == "to a user id goes to the DM"


async def test_errors_have_slacks_codes(
        slack: FakeSlack, client: tuple[AsyncWebClient, FakeWorkspace]) -> None:
    """Bad tokens, channels, users and blocks get HTTP 200 with Slack's error codes."""
    web, team = client
    other = slack.workspace("globex")
    stranger = slack.user(other, "eve")
    quiet = slack.channel(team, "quiet", bot_member=False)

    async def error_of(call: Any) -> str:
        with pytest.raises(SlackApiError) as caught:
            await call
        assert caught.value.response.status_code == 200
        return str(caught.value.response["error"])

    assert await error_of(AsyncWebClient(token="xoxb-nope", base_url=slack.api_base)
                          .auth_test()) == "invalid_auth"
    assert await error_of(AsyncWebClient(base_url=slack.api_base).auth_test()) == "not_authed"
    assert await error_of(web.chat_postMessage(channel="C404", text="x")) == "channel_not_found"
    assert await error_of(web.chat_postMessage(channel=other.general, text="x")
                          ) == "channel_not_found"
    assert await error_of(web.chat_postMessage(channel=quiet.id, text="x")) == "not_in_channel"
    assert await error_of(web.users_info(user=stranger.id)) == "user_not_found"
    assert await error_of(web.chat_postMessage(channel=team.general, text="x" * 40_001)
                          ) == "msg_too_long"
    too_many = [{"type": "divider"}] * 51
    long_text = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    big_value = [{"type": "actions", "elements": [{
        "type": "button", "action_id": "a", "value": "v" * 2001,
        "text": {"type": "plain_text", "text": "Go"}}]}]
    unknown = [{"type": "carousel"}]
    for blocks in (too_many, long_text, big_value, unknown):
        assert await error_of(web.chat_postMessage(channel=team.general, text="x",
                                                   blocks=blocks)) == "invalid_blocks"
    assert slack.messages(team.general) == []
    assert slack.call_log[-1].error == "invalid_blocks"


async def test_rate_limits_and_server_errors_are_retried_by_slack_sdk(
        slack: FakeSlack, client: tuple[AsyncWebClient, FakeWorkspace]) -> None:
    """A 429 carries Retry-After, which AsyncRateLimitErrorRetryHandler waits out; a 500
    is retried by AsyncServerErrorRetryHandler; a limit of 1 a second per channel holds."""
    web, team = client
    web.retry_handlers.extend([AsyncRateLimitErrorRetryHandler(max_retry_count=1),
                               AsyncServerErrorRetryHandler(max_retry_count=1)])
    slack.fail_next("chat.postMessage", 429, retry_after=1)
    started = time.monotonic()
    await web.chat_postMessage(channel=team.general, text="after the limit")
    assert time.monotonic() - started >= 1
    first, second = [c for c in slack.call_log if c.method == "chat.postMessage"]
    assert (first.status, first.error, second.status) == (429, "ratelimited", 200)

    slack.fail_next("users.info", 500)
    ada = slack.user(team, "ada")
    assert (await web.users_info(user=ada.id))["user"]["id"] == ada.id

    slack.limit("chat.postMessage", 1, 1.0, per="channel")
    async with httpx.AsyncClient() as raw:
        headers = {"Authorization": f"Bearer {team.bot_token}"}
        answers = [await raw.post(f"{slack.api_base}chat.postMessage", headers=headers,
                                  json={"channel": channel, "text": "x"})
                   for channel in (team.general, team.general, ada.id, slack.dm(ada).id)]
    assert [a.status_code for a in answers] == [200, 429, 200, 429]
    assert answers[1].headers["retry-after"] == "1"
    assert answers[1].json() == {"ok": False, "error": "ratelimited"}


async def test_views_need_a_fresh_trigger(
        slack: FakeSlack, client: tuple[AsyncWebClient, FakeWorkspace]) -> None:
    """A trigger_id opens one modal within 3 seconds; views.update checks the hash; the
    App Home is kept per user."""
    web, team = client
    ada = slack.user(team, "ada")
    trigger = slack.trigger(ada)
    opened = (await web.views_open(trigger_id=trigger, view=SEATS_MODAL))["view"]
    assert (await slack.next_view(ada)).id == opened["id"]
    for bad, error in ((trigger, "exchanged_trigger_id"), ("1.2.3", "invalid_trigger_id")):
        with pytest.raises(SlackApiError, match=error):
            await web.views_open(trigger_id=bad, view=SEATS_MODAL)
    late = slack.trigger(ada)
    slack.advance(3.5)
    with pytest.raises(SlackApiError, match="expired_trigger_id"):
        await web.views_open(trigger_id=late, view=SEATS_MODAL)
    with pytest.raises(SlackApiError, match="hash_conflict"):
        await web.views_update(view_id=opened["id"], hash="stale", view=SEATS_MODAL)
    updated = {**SEATS_MODAL, "title": {"type": "plain_text", "text": "Preview"}}
    await web.views_update(view_id=opened["id"], hash=opened["hash"], view=updated)
    assert slack.open_view(ada) is not None and slack.open_view(ada).title == "Preview"  # type: ignore[union-attr]

    home = {"type": "home", "blocks": BUTTONS}
    await web.views_publish(user_id=ada.id, view=home)
    await web.views_publish(user_id=ada.id, view={"type": "home", "blocks": BUTTONS[:1]})
    view = await slack.wait_for_home(ada, versions=2)
    assert view.content == "*Team plan*" and slack.views(ada) == [slack.open_view(ada)]


async def test_oauth_with_token_rotation() -> None:
    """oauth.v2.access swaps a code once for an installation with a refresh token; a
    refresh rotates both; expired, revoked and uninstalled tokens are refused."""
    with FakeSlack(token_rotation=True) as slack:
        team = slack.workspace("acme", install=False)
        ada = slack.user(team, "ada", is_owner=True)
        slack.redirect_uri = "http://127.0.0.1:9/slack/oauth_redirect"
        async with httpx.AsyncClient() as browser:
            page = await browser.get(slack.oauth_base, params={
                "client_id": slack.client_id, "scope": "commands,chat:write", "state": "s1"},
                headers={"X-Fake-Slack-User": ada.id})
        assert page.status_code == 302
        code = httpx.URL(page.headers["location"]).params["code"]
        web = AsyncWebClient(base_url=slack.api_base)
        creds = {"client_id": slack.client_id, "client_secret": slack.client_secret}
        installed = await web.oauth_v2_access(code=code, **creds)
        assert installed["access_token"].startswith("xoxb-")
        assert installed["refresh_token"].startswith("xoxe-1-")
        assert (installed["expires_in"], installed["team"]["id"], installed["authed_user"]["id"]
                ) == (43200, team.id, ada.id)
        with pytest.raises(SlackApiError, match="invalid_code"):
            await web.oauth_v2_access(code=code, **creds)
        with pytest.raises(SlackApiError, match="bad_client_secret"):
            await web.oauth_v2_access(client_id=slack.client_id, client_secret="x", code="c")

        rotated = await web.oauth_v2_access(grant_type="refresh_token",
                                            refresh_token=installed["refresh_token"], **creds)
        assert rotated["access_token"] != installed["access_token"]
        with pytest.raises(SlackApiError, match="invalid_refresh_token"):
            await web.oauth_v2_access(grant_type="refresh_token",
                                      refresh_token=installed["refresh_token"], **creds)
        slack.advance(12 * 3600)
        with pytest.raises(SlackApiError, match="token_expired"):
            await web.auth_test(token=rotated["access_token"])
        fresh = await web.oauth_v2_access(grant_type="refresh_token",
                                          refresh_token=rotated["refresh_token"], **creds)
        assert (await web.auth_test(token=fresh["access_token"]))["team_id"] == team.id
        assert (await web.auth_revoke(token=fresh["access_token"]))["revoked"] is True
        with pytest.raises(SlackApiError, match="token_revoked"):
            await web.auth_test(token=fresh["access_token"])
        last = slack.install(team)
        await web.apps_uninstall(token=last, **creds)
        assert slack.tokens(team) == []


async def test_driver_signs_as_slack() -> None:
    """The driver's requests pass slack_sdk's SignatureVerifier; forged and old ones fail."""
    seen: list[tuple[bytes, dict[str, str]]] = []

    async def events(request: Request) -> Response:
        seen.append((await request.body(), dict(request.headers)))
        return Response()

    verifier = SignatureVerifier("fake-signing-secret-8f2b")
    web = Starlette(routes=[Route("/slack/events", events, methods=["POST"])])
    with FakeSlack() as slack:
        team = slack.workspace()
        ada = slack.user(team, "ada")
        async with serve(web) as base, SlackDriver(slack, base) as driver:
            sent = await driver.command(ada, "connect tok_1")
            await driver.command(ada, signature="v0=" + "0" * 64)
            await driver.command(ada, timestamp=int(time.time()) - 301)
            retried = await driver.redeliver(await driver.app_home_opened(ada), retry_num=2)
    assert sent.status == 200 and 0 < sent.elapsed and not sent.late
    assert [verifier.is_valid_request(body, headers) for body, headers in seen] == [
        True, False, False, True, True]
    form = httpx.QueryParams(seen[0][0].decode())
    assert (form["command"], form["text"], form["user_id"], form["team_id"]) == (
        "/billing", "connect tok_1", ada.id, team.id)
    assert form["response_url"] == sent.response_url and form["trigger_id"]
    assert seen[4][1]["x-slack-retry-num"] == "2"
    assert seen[4][1]["x-slack-retry-reason"] == "http_timeout"
    assert seen[3][0] == seen[4][0] and retried.payload["event"]["type"] == "app_home_opened"


def bolt_app(slack: FakeSlack, team: FakeWorkspace) -> AsyncApp:
    """Build a small Bolt app that answers /billing, a button and a modal."""
    web = AsyncWebClient(token=team.bot_token, base_url=slack.api_base)
    app = AsyncApp(client=web, signing_secret=slack.signing_secret)

    @app.command("/billing")
    async def billing(ack: Any, respond: Any, client: AsyncWebClient,
                      command: dict[str, Any]) -> None:
        await ack()
        await respond(text="Team plan", blocks=BUTTONS)
        await client.chat_postEphemeral(channel=command["channel_id"], user=command["user_id"],
                                        text="Only you can see this")

    @app.action("seats:add")
    async def add_seats(ack: Any, body: dict[str, Any], client: AsyncWebClient,
                        respond: Any) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=SEATS_MODAL)
        await respond(text="Opening…", replace_original=True)

    @app.view("seats")
    async def preview(ack: Any, view: dict[str, Any]) -> None:
        count = view["state"]["values"]["seats"]["count"]["value"]
        if not count.isdigit():
            await ack(response_action="errors", errors={"seats": "Enter a number"})
            return
        await ack()

    return app


async def test_bolt_app_answers_through_the_fake(slack: FakeSlack) -> None:
    """The unmodified Bolt AsyncApp behind its Starlette adapter acks a signed slash command,
    answers through response_url and chat.postEphemeral, opens a modal from a button
    and takes its submission; a forged signature gets 401."""
    team = slack.workspace("acme")
    ada = slack.user(team, "ada", is_admin=True)
    handler = AsyncSlackRequestHandler(bolt_app(slack, team))

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    web = Starlette(routes=[Route("/slack/events", events, methods=["POST"])])
    async with serve(web) as base, SlackDriver(slack, base) as driver:
        assert (await driver.command(ada, signature="v0=forged")).status == 401
        sent = await driver.command(ada)
        assert sent.status == 200 and sent.elapsed < 3
        plan = await slack.next_ephemeral(ada)
        assert (plan.method, plan.content) == ("response_url", "*Team plan*\nAdd seats")
        assert (await slack.next_ephemeral(ada)).text == "Only you can see this"

        assert (await driver.press(ada, plan, "Add seats")).status == 200
        modal = await slack.next_view(ada)
        assert (modal.callback_id, modal.private_metadata) == ("seats", "sub_1")
        replaced = await slack.next_ephemeral(ada)
        assert (replaced.ts, replaced.text, replaced.edited) == (plan.ts, "Opening…", True)

        refused = await driver.submit(ada, modal, {"seats": {"count": "many"}})
        assert refused.json() == {"response_action": "errors",
                                  "errors": {"seats": "Enter a number"}}
        assert slack.open_view(ada) is modal
        assert (await driver.submit(ada, modal, {"seats": {"count": "5"}})).status == 200
        assert slack.open_view(ada) is None
        assert len(slack.responses(sent.response_url)) == 1


async def test_response_url_takes_five_posts_in_30_minutes(slack: FakeSlack) -> None:
    """A response_url takes 5 posts; a sixth, or one after 30 minutes, is refused."""
    team = slack.workspace("acme")
    ada = slack.user(team, "ada")
    url = slack.response_url(ada)
    async with httpx.AsyncClient() as http:
        answers = [(await http.post(url, json={"text": f"n{i}"})).status_code for i in range(6)]
        late = slack.response_url(ada)
        slack.advance(30 * 60 + 1)
        expired = await http.post(late, json={"text": "late"})
        public = slack.response_url(ada)
        slack.advance(-(30 * 60 + 1))
        await http.post(public, json={"text": "for all", "response_type": "in_channel"})
    assert answers == [200] * 5 + [404]
    assert (expired.status_code, expired.text) == (404, "expired_url")
    assert [m.text for m in slack.ephemerals(ada)] == [f"n{i}" for i in range(5)]
    assert [m.text for m in slack.messages(team.general)] == ["for all"]


async def test_bolt_oauth_install(slack: FakeSlack, tmp_path: Path) -> None:
    """The browser leg: /slack/install → the fake's authorize page → /slack/oauth_redirect,
    and Bolt stores the installation it got from oauth.v2.access."""
    team = slack.workspace("acme", install=False)
    owner = slack.user(team, "olga", is_primary_owner=True)
    store = FileInstallationStore(base_dir=str(tmp_path / "installations"))
    settings = AsyncOAuthSettings(
        client_id=slack.client_id, client_secret=slack.client_secret,
        scopes=["commands", "chat:write"], authorization_url=slack.oauth_base,
        installation_store=store,
        state_store=FileOAuthStateStore(expiration_seconds=600, base_dir=str(tmp_path / "s")))
    app = AsyncApp(signing_secret=slack.signing_secret, oauth_settings=settings,
                   client=AsyncWebClient(base_url=slack.api_base))
    handler = AsyncSlackRequestHandler(app)

    async def route(request: Request) -> Response:
        return await handler.handle(request)

    web = Starlette(routes=[Route(p, route, methods=["GET", "POST"]) for p in (
        "/slack/install", "/slack/oauth_redirect", "/slack/events")])
    async with serve(web) as base, SlackDriver(slack, base) as driver:
        slack.redirect_uri = f"{base}/slack/oauth_redirect"
        await driver.install(owner, approve=False)  # Bolt shows its failure page
        assert slack.tokens(team) == []
        assert await store.async_find_installation(enterprise_id=None, team_id=team.id) is None
        done = await driver.install(owner)
        assert done.status_code == 200, done.text
    installation = await store.async_find_installation(enterprise_id=None, team_id=team.id)
    assert installation is not None and installation.bot_token == team.bot_token
    assert (installation.user_id, installation.bot_user_id) == (owner.id, team.bot_user_id)


async def test_bolt_rotates_tokens_and_forgets_uninstalled_workspaces(tmp_path: Path) -> None:
    """With token rotation, Bolt refreshes an installation's expiring token through the
    fake before handling a command; events are acked (url_verification echoed, retries
    carry their headers); app_uninstalled makes Bolt delete the installation."""
    store = FileInstallationStore(base_dir=str(tmp_path / "installations"))
    with FakeSlack(token_rotation=True, token_lifetime=3600) as slack:
        team = slack.workspace("acme", install=False)
        owner = slack.user(team, "olga", is_owner=True)
        settings = AsyncOAuthSettings(
            client_id=slack.client_id, client_secret=slack.client_secret,
            scopes=["commands", "chat:write"], authorization_url=slack.oauth_base,
            installation_store=store, state_store=FileOAuthStateStore(
                expiration_seconds=600, base_dir=str(tmp_path / "s")))
        # installation_store given to AsyncApp too: the authorize that AsyncOAuthSettings
        # builds rotates tokens with a default AsyncWebClient (slack.com), while AsyncApp's
        # own uses its client and so SLACK_API_BASE (slack_bolt/oauth/async_oauth_settings.py)
        app = AsyncApp(signing_secret=slack.signing_secret, oauth_settings=settings,
                       installation_store=store, client=AsyncWebClient(base_url=slack.api_base))
        app.enable_token_revocation_listeners()
        homes: list[str] = []

        @app.command("/billing")
        async def billing(ack: Any, respond: Any) -> None:
            await ack()
            await respond(text="Team plan")

        @app.event("app_home_opened")
        async def home(event: dict[str, Any]) -> None:
            homes.append(event["user"])

        handler = AsyncSlackRequestHandler(app)

        async def route(request: Request) -> Response:
            return await handler.handle(request)

        web = Starlette(routes=[Route(p, route, methods=["GET", "POST"]) for p in (
            "/slack/install", "/slack/oauth_redirect", "/slack/events")])
        async with serve(web) as base, SlackDriver(slack, base) as driver:
            slack.redirect_uri = f"{base}/slack/oauth_redirect"
            assert (await driver.install(owner)).status_code == 200
            first_token = team.bot_token
            assert (await driver.command(owner)).status == 200
            assert (await slack.next_ephemeral(owner)).text == "Team plan"
            refreshes = [c for c in slack.calls("oauth.v2.access")
                         if c.get("grant_type") == "refresh_token"]
            assert len(refreshes) == 1 and team.bot_token != first_token

            challenge = await driver.url_verification("abc123")
            assert (challenge.status, challenge.json()) == (200, {"challenge": "abc123"})
            opened = await driver.app_home_opened(owner, event_id="Ev0HOME")
            again = await driver.redeliver(opened, retry_num=1)
            assert (opened.status, again.status, again.payload["event_id"]) == (
                200, 200, "Ev0HOME")
            assert (await driver.app_uninstalled(team)).status == 200
            assert (await driver.command(owner, unsigned=True)).status == 401
    assert homes == [owner.id, owner.id]  # Bolt does not deduplicate retries itself
    assert await store.async_find_installation(enterprise_id=None, team_id=team.id) is None


PICKER_MODAL = {
    "type": "modal", "callback_id": "assign", "notify_on_close": True,
    "title": {"type": "plain_text", "text": "Assign a seat"},
    "submit": {"type": "plain_text", "text": "Assign"},
    "blocks": [
        {"type": "input", "block_id": "who", "label": {"type": "plain_text", "text": "Member"},
         "element": {"type": "users_select", "action_id": "user"}},
        {"type": "input", "block_id": "plan", "label": {"type": "plain_text", "text": "Plan"},
         "element": {"type": "static_select", "action_id": "choice", "options": [
             {"text": {"type": "plain_text", "text": "Monthly"}, "value": "month"},
             {"text": {"type": "plain_text", "text": "Yearly"}, "value": "year"}]}},
    ],
}


async def test_interaction_payloads_have_slacks_shape(
        slack: FakeSlack, client: tuple[AsyncWebClient, FakeWorkspace]) -> None:
    """block_actions from a message and from a view, view_submission values shaped by each
    input's type, view_closed and event envelopes carry the fields Slack sends."""
    web, team = client
    ada, bob = slack.user(team, "ada", is_admin=True), slack.user(team, "bob")
    received: list[dict[str, Any]] = []

    async def events(request: Request) -> Response:
        body = (await request.body()).decode()
        payload = httpx.QueryParams(body).get("payload")  # Starlette's form() needs multipart
        received.append(json.loads(payload) if payload else json.loads(body))
        return Response()

    posted = await web.chat_postMessage(channel=ada.id, text="plan", blocks=BUTTONS)
    message = (await slack.next_message(ada))
    assert message.ts == posted["ts"]
    opened = await web.views_open(trigger_id=slack.trigger(ada), view=PICKER_MODAL)
    modal = await slack.next_view(ada)
    assert modal.id == opened["view"]["id"]
    web_app = Starlette(routes=[Route("/slack/events", events, methods=["POST"])])
    async with serve(web_app) as base, SlackDriver(slack, base) as driver:
        await driver.press(ada, message, "Add seats", value="T-forged")
        await driver.submit(ada, modal, {"who": {"user": bob}, "plan": {"choice": "Yearly"}})
        await driver.close(ada, modal)
        await driver.member_joined_channel(bob, slack.channel(team, "billing"))
    press, submission, closed, joined = received
    assert (press["type"], press["user"]["id"], press["team"]["id"]) == (
        "block_actions", ada.id, team.id)
    assert press["container"] == {"type": "message", "message_ts": message.ts,
                                  "channel_id": message.channel, "is_ephemeral": False}
    assert press["message"]["ts"] == message.ts and press["channel"]["id"] == message.channel
    assert press["actions"][0] | {"action_ts": "x"} == {
        "action_id": "seats:add", "block_id": "seats", "type": "button", "value": "T-forged",
        "text": {"type": "plain_text", "text": "Add seats"}, "action_ts": "x"}
    assert press["response_url"].startswith(slack.url or "") and press["trigger_id"]
    assert submission["view"]["callback_id"] == "assign"
    assert submission["view"]["state"]["values"] == {
        "who": {"user": {"type": "users_select", "selected_user": bob.id}},
        "plan": {"choice": {"type": "static_select", "selected_option": {
            "text": {"type": "plain_text", "text": "Yearly"}, "value": "year"}}}}
    assert (closed["type"], closed["view"]["id"], modal.closed) == ("view_closed", modal.id, True)
    assert joined["type"] == "event_callback" and joined["event"]["type"] == "member_joined_channel"
    assert joined["authorizations"][0]["user_id"] == team.bot_user_id
    assert joined["event_id"].startswith("Ev") and joined["api_app_id"] == slack.app_id


async def test_block_kit_limits(
        slack: FakeSlack, client: tuple[AsyncWebClient, FakeWorkspace]) -> None:
    """Messages and modals beyond Block Kit's limits are refused; the largest allowed pass."""
    web, team = client
    ada = slack.user(team, "ada")

    def button(number: int, action_id: str | None = None) -> dict[str, Any]:
        return {"type": "button", "action_id": action_id or f"a{number}",
                "text": {"type": "plain_text", "text": f"B{number}"}}

    def actions(count: int) -> list[dict[str, Any]]:
        return [{"type": "actions", "elements": [button(n) for n in range(count)]}]

    largest = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3000}}] * 1 + [
        {"type": "divider"}] * 49
    await web.chat_postMessage(channel=team.general, text="ok", blocks=largest)
    await web.chat_postMessage(channel=team.general, text="ok", blocks=actions(25))
    refused = [
        actions(26),
        [{"type": "actions", "elements": [button(1, "x" * 256)]}],
        [{"type": "actions", "elements": [button(1, "same"), button(2, "same")]}],
        [{"type": "header", "text": {"type": "mrkdwn", "text": "*no*"}}],
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
        [{"type": "section", "block_id": "b", "text": {"type": "mrkdwn", "text": "1"}},
         {"type": "section", "block_id": "b", "text": {"type": "mrkdwn", "text": "2"}}],
    ]
    for blocks in refused:
        with pytest.raises(SlackApiError, match="invalid_blocks") as caught:
            await web.chat_postMessage(channel=team.general, text="x", blocks=blocks)
        assert caught.value.response["response_metadata"]["messages"]
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        long_title = {**SEATS_MODAL, "title": {"type": "plain_text", "text": "t" * 25}}
        await web.views_open(trigger_id=slack.trigger(ada), view=long_title)
    with pytest.warns(UserWarning, match="text"), pytest.raises(SlackApiError, match="no_text"):
        await web.chat_postMessage(channel=team.general, text="")
    assert len(slack.messages(team.general)) == 2


async def test_many_commands_at_once_are_each_answered_once() -> None:
    """Commands from many users of several workspaces, sent at once, are each acked and
    answered exactly once through their own response_url; each ack is timed."""
    with FakeSlack() as slack:
        teams = [slack.workspace(f"team{n}") for n in range(3)]
        users = [slack.user(team, f"u{n}") for team in teams for n in range(4)]
        web = AsyncWebClient(base_url=slack.api_base)

        async def authorize(enterprise_id: Any, team_id: str, logger: Any) -> AuthorizeResult:
            team = next(t for t in teams if t.id == team_id)
            return AuthorizeResult(enterprise_id=None, team_id=team_id,
                                   bot_token=team.bot_token, bot_user_id=team.bot_user_id)

        app = AsyncApp(client=web, signing_secret=slack.signing_secret, authorize=authorize)

        @app.command("/billing")
        async def billing(ack: Any, respond: Any, command: dict[str, Any]) -> None:
            await ack()
            await respond(text=f"hello {command['text']}")

        handler = AsyncSlackRequestHandler(app)

        async def events(request: Request) -> Response:
            return await handler.handle(request)

        web_app = Starlette(routes=[Route("/slack/events", events, methods=["POST"])])
        async with serve(web_app) as base, SlackDriver(slack, base) as driver:
            sent = await asyncio.gather(*(driver.command(users[n % len(users)], str(n))
                                          for n in range(36)))
            replies = [await slack.next_ephemeral(users[n % len(users)]) for n in range(36)]
    assert {d.status for d in sent} == {200} and all(0 < d.elapsed < 3 for d in sent)
    assert sorted(r.text for r in replies) == sorted(f"hello {n}" for n in range(36))
    assert all(len(slack.responses(d.response_url)) == 1 for d in sent)
    by_text = {f"hello {n}": delivery for n, delivery in enumerate(sent)}
    assert all(reply.at > by_text[reply.text].sent_at for reply in replies)
