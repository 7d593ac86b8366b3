"""The fake Slack's HTTP face: the Web API, the OAuth authorize page and response URLs.

    POST|GET /api/<method>         https://slack.com/api/<method> (SLACK_API_BASE)
    GET      /oauth/v2/authorize   https://slack.com/oauth/v2/authorize (SLACK_OAUTH_BASE)
    POST     /response/<token>     the response_url of a slash command or interaction

It runs in uvicorn on its own thread (telegram_server.ThreadedServer), like the Telegram fake.
Every Web API answer is HTTP 200 with ``{"ok": true, …}`` or ``{"ok": false, "error": …}``,
except rate limiting (429 with Retry-After) and forced server errors, as Slack does
(https://docs.slack.dev/apis/web-api/#responses, …/rate-limits).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from starlette.routing import Route

from .slack_blocks import MAX_TEXT, validate_blocks
from .slack_methods import CLIENT_AUTH, METHODS
from .slack_objects import SlackMessage
from .slack_state import (
    RESPONSE_URL_TTL,
    RESPONSE_URL_USES,
    ApiError,
    Grant,
    ResponsePost,
    SlackState,
)

# Header the driver sets on the authorize page to say who is signed in and approves
# (the real page knows it from the browser's Slack session).
APPROVER_HEADER = "X-Fake-Slack-User"
DENY_HEADER = "X-Fake-Slack-Deny"
_JSON_PARAMS = ("blocks", "view", "attachments")


async def read_params(request: Request) -> dict[str, Any]:
    """Return the call's parameters: query string, then a form or JSON body."""
    params: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        decoded = json.loads(body or b"{}")
        if not isinstance(decoded, dict):
            raise ApiError("invalid_json")
        params.update(decoded)
    elif body:
        params.update(parse_qsl(body.decode(), keep_blank_values=True))
    for key in _JSON_PARAMS:  # form clients send objects as JSON strings
        if isinstance(params.get(key), str) and params[key][:1] in ("[", "{"):
            try:
                params[key] = json.loads(params[key])
            except ValueError:
                pass
    return params


def _credentials(request: Request, params: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """Return the bearer token and params with client credentials from Basic auth."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), params
    if header.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None, params
        return None, {**params, "client_id": client_id, "client_secret": secret}
    token = params.pop("token", None)
    return (str(token) if token else None), params


def build_app(state: SlackState) -> Starlette:
    """Return the Starlette app serving the fake Slack from state."""

    async def api(request: Request) -> JSONResponse:
        method = request.path_params["method"]
        params: dict[str, Any] = {}
        team_id: str | None = None
        try:
            token_value, params = _credentials(request, await read_params(request))
            if (failure := state.take_failure(method, params.get("channel"))) is not None:
                raise failure
            handler = METHODS.get(method)
            if handler is None:
                raise ApiError("unknown_method")
            token = None if method in CLIENT_AUTH else state.check_token(token_value)
            team_id = token.team_id if token else None
            if team_id is not None:
                channel = params.get("channel")
                with state.lock:  # a user id is their DM: one channel, one limit
                    channel = state.dms.get((team_id, str(channel)), channel)
                state.throttle(method, team_id, channel)
            result = handler(state, token, params)
        except ApiError as error:
            state.log(method, params, team_id, error.status, error.error)
            headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
            return JSONResponse(error.body(), status_code=error.status, headers=headers)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            state.log(method, params, team_id, 200, "invalid_arguments")
            return JSONResponse({"ok": False, "error": "invalid_arguments",
                                 "response_metadata": {"messages": [f"[ERROR] {error}"]}})
        state.log(method, params, team_id, 200, None)
        return JSONResponse({"ok": True, **result})

    async def authorize(request: Request) -> HTMLResponse | RedirectResponse:
        query = request.query_params
        redirect_uri = query.get("redirect_uri") or state.redirect_uri
        if query.get("client_id") != state.client_id:
            return HTMLResponse("invalid_client_id", status_code=400)
        if not redirect_uri:
            return HTMLResponse("bad_redirect_uri", status_code=400)
        with state.lock:
            user = state.users.get(request.headers.get(APPROVER_HEADER, ""))
        if user is None:
            return HTMLResponse("sign in to a workspace first", status_code=401)
        if request.headers.get(DENY_HEADER):
            back = {"error": "access_denied", "state": query.get("state", "")}
            return RedirectResponse(f"{redirect_uri}?{urlencode(back)}", status_code=302)
        code = f"{user.team_id[1:]}.{secrets.token_hex(16)}"
        with state.lock:
            state.grants[code] = Grant(user.team_id, user.id, query.get("scope", ""),
                                       query.get("user_scope", ""), query.get("redirect_uri"),
                                       state.now())
        back = {"code": code, "state": query.get("state", "")}
        return RedirectResponse(f"{redirect_uri}?{urlencode(back)}", status_code=302)

    async def respond(request: Request) -> PlainTextResponse | JSONResponse:
        url = str(request.url)
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            return _answer(state, url, {}, 400, "invalid_payload")
        with state.lock:
            target = state.responses.get(request.path_params["token"])
            if target is None or state.now() - target.created_at > RESPONSE_URL_TTL:
                return _answer(state, url, body, 404, "expired_url")
            if target.uses >= RESPONSE_URL_USES:
                return _answer(state, url, body, 404, "used_url")
            target.uses += 1
        try:
            deliver_response(state, target.team_id, target.channel_id, target.user_id,
                              target.original, body)
        except ApiError as error:
            return _answer(state, url, body, 400, error.error)
        return _answer(state, url, body, 200, None)

    return Starlette(routes=[
        Route("/api/{method}", api, methods=["GET", "POST"]),
        Route("/oauth/v2/authorize", authorize, methods=["GET"]),
        Route("/response/{token}", respond, methods=["POST"]),
    ])


def _answer(state: SlackState, url: str, body: dict[str, Any], status: int,
            error: str | None) -> PlainTextResponse | JSONResponse:
    """Record a response_url post and answer it."""
    with state.lock:
        state.response_posts.append(ResponsePost(url, body, status, time.perf_counter()))
    if error is not None:
        return PlainTextResponse(error, status_code=status)
    return JSONResponse({"ok": True})


def deliver_response(state: SlackState, team_id: str, channel: str, user: str,
                      original: tuple[str, str] | None, body: dict[str, Any]) -> None:
    """Show a response_url post (or an ack's body) as Slack does.

    ``delete_original`` deletes the message the action came from, ``replace_original``
    replaces it (ephemeral or not); otherwise ``response_type: in_channel`` posts for
    everyone and anything else is ephemeral to the user
    (https://docs.slack.dev/interactivity/handling-user-interaction/).
    """
    old = state.current(*original) if original else None
    text, blocks = str(body.get("text") or ""), body.get("blocks") or []
    if old is not None and _truthy(body.get("delete_original")):
        state.record(SlackMessage(old.channel, old.ts, old.text, old.blocks, "response_url",
                                  ephemeral=old.ephemeral, user=old.user, deleted=True,
                                  team_id=team_id, params=body))
        return
    if not text and not blocks:
        raise ApiError("no_text")
    if blocks:
        validate_blocks(blocks, "message")
    if len(text) > MAX_TEXT:
        raise ApiError("msg_too_long")
    if old is not None and _truthy(body.get("replace_original")):
        state.record(SlackMessage(old.channel, old.ts, text, tuple(blocks), "response_url",
                                  ephemeral=old.ephemeral, user=old.user, edited=True,
                                  team_id=team_id, params=body))
        return
    public = body.get("response_type") == "in_channel"
    state.record(SlackMessage(channel, state.new_ts(), text, tuple(blocks), "response_url",
                              ephemeral=not public, user=None if public else user,
                              thread_ts=body.get("thread_ts"), team_id=team_id, params=body))


def _truthy(value: Any) -> bool:
    """Return a JSON or string flag as Slack reads it."""
    return value is True or str(value).lower() == "true"
