"""Play Slack towards an app: signed slash commands, interactions, events and the OAuth leg.

Every request is what Slack sends to the app's Request URL: a form or JSON body, signed
with the signing secret (X-Slack-Signature ``v0=`` HMAC-SHA256 of ``v0:{ts}:{body}``,
X-Slack-Request-Timestamp; https://docs.slack.dev/authentication/verifying-requests-from-slack,
made with slack_sdk's own SignatureVerifier.generate_signature). Each delivery is timed from
sending to the HTTP answer: Slack wants that ack within 3 seconds
(https://docs.slack.dev/interactivity/handling-user-interaction/).

    async with SlackDriver(slack, "http://127.0.0.1:PORT") as driver:
        sent = await driver.command(admin)             # "/billing" with no text
        reply = await slack.next_ephemeral(admin)
        await driver.press(admin, reply, "Add seats")
        modal = await slack.next_view(admin)
        await driver.submit(admin, modal, {"seats": {"count": "5"}})
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from .slack import FakeSlack
from .slack_objects import Conversation, FakeView, FakeWorkspace, SlackMessage, SlackUser
from .slack_server import APPROVER_HEADER, DENY_HEADER, deliver_response
from .slack_state import ApiError

USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
_HREF = re.compile(r'href="([^"]+/oauth/v2/authorize[^"]*)"')


@dataclass
class Delivery:
    """One request delivered to the app and its answer."""

    status: int
    text: str
    headers: dict[str, str]
    elapsed: float  # seconds from sending to the HTTP answer (the ack)
    sent_at: float  # time.perf_counter() when sending began (SlackMessage.at is comparable)
    body: bytes = field(repr=False)
    content_type: str
    payload: dict[str, Any] = field(repr=False)  # what was sent, decoded
    response_url: str | None = None
    trigger_id: str | None = None
    ack_error: str | None = None  # why Slack would not show the ack's message body

    @property
    def late(self) -> bool:
        """Tell whether the ack took longer than Slack's 3 seconds (Slack would show the
        user an error and, for events, retry)."""
        return self.elapsed > 3.0

    def json(self) -> Any:
        """Return the answer's JSON body (None when it is empty or not JSON)."""
        try:
            return json.loads(self.text) if self.text else None
        except ValueError:
            return None


class SlackDriver:
    """Send Slack's signed requests to an app served at base_url (POST /slack/events)."""

    def __init__(self, slack: FakeSlack, base_url: str, *, events_path: str = "/slack/events",
                 signing_secret: str | None = None, timeout: float = 30.0) -> None:
        self.slack = slack
        self.base_url = base_url.rstrip("/")
        self.events_url = self.base_url + events_path
        self.verifier = SignatureVerifier(signing_secret or slack.signing_secret)
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> SlackDriver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        """Return the shared HTTP client (made on first use)."""
        if self._client is None:
            limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
            self._client = httpx.AsyncClient(timeout=self.timeout, limits=limits)
        return self._client

    # -- signing and sending ---------------------------------------------------------------

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """Return Slack's signature headers for a body (now, or at timestamp)."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.verifier.generate_signature(timestamp=stamp, body=body)
        assert signature is not None
        return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}

    async def post(self, body: bytes, content_type: str, payload: dict[str, Any], *,
                   timestamp: int | None = None, signature: str | None = None,
                   unsigned: bool = False, headers: dict[str, str] | None = None) -> Delivery:
        """POST a body to the events URL, signed (a forged signature, an old timestamp or
        no signature headers at all when asked); return the timed answer."""
        signed = {} if unsigned else self.sign(body, timestamp)
        if signature is not None:
            signed["X-Slack-Signature"] = signature
        sent = {"Content-Type": content_type, "User-Agent": USER_AGENT, **signed,
                **(headers or {})}
        started = time.perf_counter()
        response = await self.client.post(self.events_url, content=body, headers=sent)
        elapsed = time.perf_counter() - started
        return Delivery(response.status_code, response.text, dict(response.headers), elapsed,
                        started, body, content_type, payload)

    async def redeliver(self, delivery: Delivery, retry_num: int = 1,
                        reason: str = "http_timeout") -> Delivery:
        """Send a delivery again as Slack's retry, freshly signed, with the retry headers."""
        retry = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": reason}
        again = await self.post(delivery.body, delivery.content_type, delivery.payload,
                                headers=retry)
        again.response_url, again.trigger_id = delivery.response_url, delivery.trigger_id
        return again

    async def _form(self, fields: dict[str, Any], **options: Any) -> Delivery:
        """POST form fields."""
        body = urlencode(fields).encode()
        return await self.post(body, "application/x-www-form-urlencoded", fields, **options)

    async def _interaction(self, payload: dict[str, Any], **options: Any) -> Delivery:
        """POST an interaction payload as Slack does: a form field "payload" of JSON."""
        body = urlencode({"payload": json.dumps(payload)}).encode()
        delivery = await self.post(body, "application/x-www-form-urlencoded", payload,
                                   **options)
        delivery.response_url = payload.get("response_url")
        delivery.trigger_id = payload.get("trigger_id")
        return delivery

    def _team(self, user: SlackUser) -> FakeWorkspace:
        return self.slack.team_of(user)

    # -- slash commands --------------------------------------------------------------------

    async def command(self, user: SlackUser, text: str = "", command: str = "/billing", *,
                      channel: Conversation | None = None, **options: Any) -> Delivery:
        """Run a slash command as user (in #general unless a channel is given).

        An ack with a body is shown to the user as Slack shows it: ephemeral, or in the
        channel with ``response_type: in_channel``.
        """
        team = self._team(user)
        where = channel or self.slack.state.conversations[team.general]
        state = self.slack.state
        response_url = state.new_response_url(team.id, where.id, user.id)
        trigger_id = state.new_trigger(team.id, user.id)
        fields = {
            "token": "fake-verification-token", "team_id": team.id,
            "team_domain": team.domain, "channel_id": where.id,
            "channel_name": "directmessage" if where.is_im else where.name,
            "user_id": user.id, "user_name": user.name, "command": command, "text": text,
            "api_app_id": self.slack.app_id, "is_enterprise_install": "false",
            "response_url": response_url, "trigger_id": trigger_id,
        }
        if team.enterprise_id:
            fields["enterprise_id"] = team.enterprise_id
        delivery = await self._form(fields, **options)
        delivery.response_url, delivery.trigger_id = response_url, trigger_id
        self._show_ack(delivery, team.id, where.id, user.id, None)
        return delivery

    def _show_ack(self, delivery: Delivery, team_id: str, channel: str, user: str,
                  original: tuple[str, str] | None) -> None:
        """Show a 200 ack's message body to the user, as Slack does for commands."""
        if delivery.status != 200 or not delivery.text:
            return
        body = delivery.json()
        if not isinstance(body, dict):
            body = {"text": delivery.text}  # a plain-text ack is shown as it is
        if not body.get("text") and not body.get("blocks"):
            return
        try:
            deliver_response(self.slack.state, team_id, channel, user, original, body)
        except ApiError as error:
            delivery.ack_error = error.error

    # -- interactivity ---------------------------------------------------------------------

    def _base_payload(self, kind: str, user: SlackUser) -> dict[str, Any]:
        team = self._team(user)
        return {
            "type": kind, "user": user.payload_dict(), "api_app_id": self.slack.app_id,
            "token": "fake-verification-token", "team": team.team_dict(),
            "enterprise": ({"id": team.enterprise_id} if team.enterprise_id else None),
            "is_enterprise_install": False,
        }

    async def press(self, user: SlackUser, where: SlackMessage | FakeView, label: str, *,
                    value: str | None = None, selected: Any = None,
                    **options: Any) -> Delivery:
        """Press the button (or choose in the select) labelled label, or with that action_id,
        in a message or view as it is now; value/selected forge what is sent."""
        current: SlackMessage | FakeView | None = where
        if isinstance(where, SlackMessage):
            current = self.slack.current(where)
            if current is None:
                raise LookupError(f"message {where.ts} in {where.channel} is gone")
        assert current is not None
        element = current.button(label)
        action: dict[str, Any] = {
            "action_id": element.get("action_id", ""), "block_id": element["block_id"],
            "type": element.get("type", "button"), "action_ts": f"{time.time():.6f}",
        }
        if "text" in element:
            action["text"] = element["text"]
        if action["type"] == "button":
            action["value"] = value if value is not None else element.get("value", "")
        else:
            action.update(_selection(element, selected))
        return await self.act(user, current, [action], **options)

    async def act(self, user: SlackUser, where: SlackMessage | FakeView,
                  actions: list[dict[str, Any]], **options: Any) -> Delivery:
        """Send a block_actions payload with any actions (forged ones too)."""
        state = self.slack.state
        team = self._team(user)
        payload = self._base_payload("block_actions", user)
        payload["trigger_id"] = state.new_trigger(team.id, user.id)
        payload["actions"] = actions
        if isinstance(where, FakeView):
            payload["container"] = {"type": "view", "view_id": where.id}
            payload["view"] = where.to_dict(self.slack.app_id, team.bot_id)
            payload["state"] = {"values": {}}
            return await self._interaction(payload, **options)
        channel = state.conversations[where.channel]
        payload["container"] = {"type": "message", "message_ts": where.ts,
                                "channel_id": where.channel, "is_ephemeral": where.ephemeral}
        payload["channel"] = {"id": channel.id,
                              "name": "directmessage" if channel.is_im else channel.name}
        if not where.ephemeral:  # Slack leaves the message out for an ephemeral one
            payload["message"] = where.to_dict(team.bot_user_id, team.bot_id,
                                               self.slack.app_id)
        payload["state"] = {"values": {}}
        payload["response_url"] = state.new_response_url(team.id, channel.id, user.id,
                                                         (where.channel, where.ts))
        return await self._interaction(payload, **options)

    async def submit(self, user: SlackUser, view: FakeView,
                     values: dict[str, dict[str, Any]] | None = None,
                     **options: Any) -> Delivery:
        """Submit a modal with values {block_id: {action_id: value}}; apply the ack's
        response_action to the fake as Slack does (errors keep it open, update replaces
        it, push is not modelled, anything else closes it)."""
        team = self._team(user)
        payload = self._base_payload("view_submission", user)
        payload["trigger_id"] = self.slack.state.new_trigger(team.id, user.id)
        payload["view"] = view.to_dict(self.slack.app_id, team.bot_id,
                                       _state_values(view, values or {}))
        payload["response_urls"] = []
        delivery = await self._interaction(payload, **options)
        answer = delivery.json() if delivery.status == 200 else None
        action = answer.get("response_action") if isinstance(answer, dict) else None
        if delivery.status != 200 or action == "errors":
            return delivery
        with self.slack.state.lock:
            if action == "update" and isinstance(answer, dict):
                view.body = answer["view"]
                view.versions.append(answer["view"])
            elif action != "push":
                view.closed = True
        return delivery

    async def close(self, user: SlackUser, view: FakeView, **options: Any) -> Delivery:
        """Close a modal with its X (view_closed, sent when notify_on_close is set)."""
        payload = self._base_payload("view_closed", user)
        payload["view"] = view.to_dict(self.slack.app_id, self._team(user).bot_id)
        payload["is_cleared"] = False
        with self.slack.state.lock:
            view.closed = True
        return await self._interaction(payload, **options)

    # -- Events API ------------------------------------------------------------------------

    async def event(self, team: FakeWorkspace, event: dict[str, Any], *,
                    event_id: str | None = None, **options: Any) -> Delivery:
        """Deliver an event_callback (https://docs.slack.dev/apis/events-api/)."""
        now = int(time.time())
        envelope = {
            "token": "fake-verification-token", "team_id": team.id,
            "api_app_id": self.slack.app_id, "event": {"event_ts": f"{now}.000100", **event},
            "type": "event_callback", "event_id": event_id or f"Ev{secrets.token_hex(5).upper()}",
            "event_time": now,
            "authorizations": [{"enterprise_id": team.enterprise_id, "team_id": team.id,
                                "user_id": team.bot_user_id, "is_bot": True,
                                "is_enterprise_install": False}],
            "is_ext_shared_channel": False, "event_context": f"4-{secrets.token_hex(8)}",
        }
        if team.enterprise_id:
            envelope["enterprise_id"] = team.enterprise_id
        body = json.dumps(envelope).encode()
        return await self.post(body, "application/json", envelope, **options)

    async def url_verification(self, challenge: str = "fake-challenge", **options: Any
                               ) -> Delivery:
        """Send the url_verification handshake; the app must echo the challenge."""
        payload = {"token": "fake-verification-token", "challenge": challenge,
                   "type": "url_verification"}
        return await self.post(json.dumps(payload).encode(), "application/json", payload,
                               **options)

    async def app_home_opened(self, user: SlackUser, **options: Any) -> Delivery:
        """Tell the app the user opened its Home tab."""
        event: dict[str, Any] = {"type": "app_home_opened", "user": user.id,
                                 "channel": self.slack.dm(user).id, "tab": "home"}
        home = self.slack.home(user)
        if home is not None:
            event["view"] = home.to_dict(self.slack.app_id, self._team(user).bot_id)
        return await self.event(self._team(user), event, **options)

    async def app_uninstalled(self, team: FakeWorkspace, **options: Any) -> Delivery:
        """Uninstall the app (its tokens are revoked) and tell it."""
        self.slack.state.revoke_team(team.id)
        return await self.event(team, {"type": "app_uninstalled"}, **options)

    async def tokens_revoked(self, team: FakeWorkspace, *, bot: bool = True,
                             users: Sequence[SlackUser] = (), **options: Any
                             ) -> Delivery:
        """Revoke the workspace's tokens (the bot's, and users') and tell the app."""
        tokens: dict[str, list[str]] = {"oauth": [u.id for u in users]}
        if bot:
            tokens["bot"] = [team.bot_user_id]
            self.slack.state.revoke_team(team.id)
        return await self.event(team, {"type": "tokens_revoked", "tokens": tokens}, **options)

    async def member_joined_channel(self, user: SlackUser, channel: Conversation,
                                    **options: Any) -> Delivery:
        """Add a user to a channel and tell the app."""
        self.slack.join(channel, user)
        event = {"type": "member_joined_channel", "user": user.id, "channel": channel.id,
                 "channel_type": "G" if channel.is_private else "C", "team": user.team_id}
        return await self.event(self._team(user), event, **options)

    # -- OAuth (the browser's part) --------------------------------------------------------

    async def install(self, user: SlackUser, *, install_path: str = "/slack/install",
                      approve: bool = True) -> httpx.Response:
        """Install the app as user does in a browser: open the install page, follow it to
        the fake's authorize page, approve (or cancel), follow back to the redirect URL.

        Returns the app's answer to the redirect (its success or failure page). Cookies
        (Bolt's state cookie) are kept across the legs as a browser keeps them.
        """
        async with httpx.AsyncClient(timeout=self.timeout) as browser:
            page = await browser.get(self.base_url + install_path)
            # Bolt's state cookie is Secure; browsers keep Secure cookies for http://127.0.0.1
            # (a "potentially trustworthy" origin) but httpx's jar does not, so carry it here.
            jar = SimpleCookie()
            for header in page.headers.get_list("set-cookie"):
                jar.load(header)
            cookies = "; ".join(f"{k}={m.value}" for k, m in jar.items())
            if page.is_redirect:
                authorize = page.headers["location"]
            else:
                found = _HREF.search(page.text)
                if found is None:
                    raise AssertionError(f"no authorize link on the install page: {page.text}")
                authorize = found.group(1).replace("&amp;", "&")
            who = {APPROVER_HEADER: user.id, **({} if approve else {DENY_HEADER: "1"})}
            consent = await browser.get(authorize, headers=who)
            if not consent.is_redirect:
                raise AssertionError(f"authorize page said {consent.status_code}: "
                                     f"{consent.text}")
            back = {"Cookie": cookies} if cookies else {}
            return await browser.get(consent.headers["location"], headers=back)


def _selection(element: dict[str, Any], selected: Any) -> dict[str, Any]:
    """Return the selected_* fields of a select action."""
    kind = element.get("type", "")
    if kind in ("users_select", "conversations_select", "channels_select"):
        key = {"users_select": "selected_user", "conversations_select":
               "selected_conversation", "channels_select": "selected_channel"}[kind]
        return {key: getattr(selected, "id", selected)}
    if kind == "static_select" or kind == "overflow":
        options = element.get("options", [])
        option = next((o for o in options if selected in (o.get("value"),
                       o.get("text", {}).get("text"))), None)
        if option is None:
            raise LookupError(f"no option {selected!r}")
        return {"selected_option": option}
    return {"value": selected}


def _state_values(view: FakeView, values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Return view.state.values for input values, shaped by each input element's type."""
    types = {(b.get("block_id", ""), b["element"].get("action_id", "")): b["element"]
             for b in view.blocks if b.get("type") == "input" and "element" in b}
    state: dict[str, Any] = {}
    for block_id, actions in values.items():
        for action_id, value in actions.items():
            element = types.get((block_id, action_id), {"type": "plain_text_input"})
            kind = element.get("type", "plain_text_input")
            entry: dict[str, Any] = {"type": kind}
            if kind in ("plain_text_input", "number_input", "email_text_input",
                        "url_text_input"):
                entry["value"] = value
            elif kind == "multi_users_select":
                entry["selected_users"] = [getattr(v, "id", v) for v in value]
            else:
                entry.update(_selection(element, value))
            state.setdefault(block_id, {})[action_id] = entry
    return state
