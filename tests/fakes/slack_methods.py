"""The Web API methods of the fake Slack, each answering as slack.com/api/<method> does.

A method takes the state, the caller's token (None for oauth.v2.access) and the parameters
and returns the fields of the ``{"ok": true, …}`` answer, or raises ApiError.
Shapes and error codes follow the method pages at https://docs.slack.dev/reference/methods/.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from typing import Any

from .slack_blocks import MAX_TEXT, validate_blocks, validate_view
from .slack_objects import Conversation, FakeView, SlackMessage
from .slack_state import CODE_TTL, ApiError, SlackState, Token

Method = Callable[[SlackState, Token | None, dict[str, Any]], dict[str, Any]]


def _flag(value: Any) -> bool:
    """Return a boolean parameter as Slack reads it ("true", "1", true)."""
    return value is True or str(value).lower() in ("true", "1")


def _blocks(params: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """Return the validated blocks of a message ("no_text" when it has no content)."""
    blocks = params.get("blocks")
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError as error:
            raise ApiError("invalid_blocks_format") from error
    text = params.get("text")
    if blocks in (None, []):
        if not text and not params.get("attachments"):
            raise ApiError("no_text")
        blocks = []
    else:
        validate_blocks(blocks, "message")
    if isinstance(text, str) and len(text) > MAX_TEXT:
        raise ApiError("msg_too_long")
    return tuple(blocks)


def _postable(state: SlackState, token: Token, channel: Any) -> Conversation:
    """Return the conversation a bot may post to (a user id means the DM with that user)."""
    channel = str(channel or "")
    if not channel:
        raise ApiError("channel_not_found")
    if channel.startswith(("U", "W")):
        state.user(channel, token.team_id)
        return state.open_dm(token.team_id, channel)
    conversation = state.conversation(channel, token.team_id)
    if not conversation.bot_member:
        raise ApiError("not_in_channel")
    return conversation


def _bot(state: SlackState, token: Token) -> tuple[str, str]:
    """Return the bot user id and bot id of the token's workspace."""
    workspace = state.workspaces[token.team_id]
    return workspace.bot_user_id, workspace.bot_id


def auth_test(state: SlackState, token: Token | None, params: dict[str, Any]) -> dict[str, Any]:
    """Describe the token's workspace and identity (auth.test)."""
    assert token is not None
    workspace = state.workspaces[token.team_id]
    user = state.users.get(token.user_id)
    answer: dict[str, Any] = {
        "url": workspace.url, "team": workspace.name,
        "user": user.name if user else state.bot_name, "team_id": workspace.id,
        "user_id": token.user_id, "enterprise_id": workspace.enterprise_id,
        "is_enterprise_install": False,
    }
    if token.kind == "bot":
        answer["bot_id"] = workspace.bot_id
    return answer


def users_info(state: SlackState, token: Token | None, params: dict[str, Any]) -> dict[str, Any]:
    """Describe a user of the workspace (users.info; locale with include_locale)."""
    assert token is not None
    user = state.user(str(params.get("user", "")), token.team_id)
    return {"user": user.to_dict(include_locale=_flag(params.get("include_locale")))}


def users_list(state: SlackState, token: Token | None, params: dict[str, Any]) -> dict[str, Any]:
    """List the workspace's users a page at a time (users.list), deactivated ones included,
    with `locale` under include_locale; the cursor is opaque base64 of "user:<id>", as Slack's
    example (dXNlcjpVMDYxTkZUVDI=) is, and an empty next_cursor ends the list."""
    assert token is not None
    with state.lock:
        users = [u for u in state.users.values() if u.team_id == token.team_id]
    limit = int(params.get("limit") or 0) or len(users) or 1
    start = 0
    if params.get("cursor"):
        try:
            kind, _, after = base64.b64decode(str(params["cursor"])).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise ApiError("invalid_cursor") from error
        ids = [u.id for u in users]
        if kind != "user" or after not in ids:
            raise ApiError("invalid_cursor")
        start = ids.index(after)
    page = users[start:start + min(limit, 1000)]
    rest = users[start + len(page):]
    cursor = base64.b64encode(f"user:{rest[0].id}".encode()).decode() if rest else ""
    locale = _flag(params.get("include_locale"))
    return {"members": [u.to_dict(include_locale=locale) for u in page],
            "cache_ts": int(state.now()),
            "response_metadata": {"next_cursor": cursor}}


def chat_post_message(state: SlackState, token: Token | None, params: dict[str, Any]
                      ) -> dict[str, Any]:
    """Post a message to a channel or DM (chat.postMessage)."""
    assert token is not None
    conversation = _postable(state, token, params.get("channel"))
    blocks = _blocks(params)
    message = SlackMessage(
        conversation.id, state.new_ts(), str(params.get("text") or ""), blocks,
        "chat.postMessage", thread_ts=params.get("thread_ts"), team_id=token.team_id,
        params=params)
    state.record(message)
    bot_user_id, bot_id = _bot(state, token)
    return {"channel": conversation.id, "ts": message.ts,
            "message": message.to_dict(bot_user_id, bot_id, state.app_id)}


def chat_post_ephemeral(state: SlackState, token: Token | None, params: dict[str, Any]
                        ) -> dict[str, Any]:
    """Show a message to one member of a channel (chat.postEphemeral)."""
    assert token is not None
    conversation = _postable(state, token, params.get("channel"))
    user = state.user(str(params.get("user", "")), token.team_id)
    if user.id not in conversation.members:
        raise ApiError("user_not_in_channel")
    blocks = _blocks(params)
    message = SlackMessage(
        conversation.id, state.new_ts(), str(params.get("text") or ""), blocks,
        "chat.postEphemeral", ephemeral=True, user=user.id, thread_ts=params.get("thread_ts"),
        team_id=token.team_id, params=params)
    state.record(message)
    return {"message_ts": message.ts}


def chat_update(state: SlackState, token: Token | None, params: dict[str, Any]
                ) -> dict[str, Any]:
    """Replace a bot message's text and blocks, by channel and ts (chat.update)."""
    assert token is not None
    conversation = state.conversation(str(params.get("channel", "")), token.team_id)
    old = state.current(conversation.id, str(params.get("ts", "")))
    if old is None or old.ephemeral:
        raise ApiError("message_not_found")
    # without a blocks argument the message keeps its blocks (chat.update's reference)
    text = str(params["text"]) if params.get("text") is not None else old.text
    if len(text) > MAX_TEXT:
        raise ApiError("msg_too_long")
    blocks = (_blocks({"text": text, "blocks": params["blocks"]}) if "blocks" in params
              else old.blocks)
    message = SlackMessage(conversation.id, old.ts, text, tuple(blocks), "chat.update",
                           thread_ts=old.thread_ts, edited=True, team_id=token.team_id,
                           params=params)
    state.record(message)
    bot_user_id, bot_id = _bot(state, token)
    return {"channel": conversation.id, "ts": old.ts, "text": text,
            "message": message.to_dict(bot_user_id, bot_id, state.app_id)}


def chat_delete(state: SlackState, token: Token | None, params: dict[str, Any]
                ) -> dict[str, Any]:
    """Delete a bot message (chat.delete)."""
    assert token is not None
    conversation = state.conversation(str(params.get("channel", "")), token.team_id)
    old = state.current(conversation.id, str(params.get("ts", "")))
    if old is None or old.ephemeral:
        raise ApiError("message_not_found")
    state.record(SlackMessage(conversation.id, old.ts, old.text, old.blocks, "chat.delete",
                              deleted=True, team_id=token.team_id, params=params))
    return {"channel": conversation.id, "ts": old.ts}


def conversations_open(state: SlackState, token: Token | None, params: dict[str, Any]
                       ) -> dict[str, Any]:
    """Open (or find) the app's DM with one user (conversations.open)."""
    assert token is not None
    if params.get("channel"):
        conversation = state.conversation(str(params["channel"]), token.team_id)
        return {"channel": {"id": conversation.id}}
    users = [u for u in str(params.get("users") or "").split(",") if u]
    if not users:
        raise ApiError("users_list_not_supplied")
    if len(users) > 1:
        raise ApiError("not_implemented")  # group DMs: Portier has no use for them
    user = state.user(users[0], token.team_id)
    if user.is_bot:
        raise ApiError("cannot_dm_bot")
    conversation = state.open_dm(token.team_id, user.id)
    channel: dict[str, Any] = {"id": conversation.id}
    if _flag(params.get("return_im")):
        channel.update({"is_im": True, "user": user.id, "created": int(state.now())})
    return {"no_op": False, "already_open": False, "channel": channel}


def conversations_info(state: SlackState, token: Token | None, params: dict[str, Any]
                       ) -> dict[str, Any]:
    """Describe a conversation of the token's workspace (conversations.info; another
    workspace's is channel_not_found). `is_member` tells whether the bot is in it."""
    assert token is not None
    conversation = state.conversation(str(params.get("channel", "")), token.team_id)
    if conversation.is_private and not conversation.bot_member:
        raise ApiError("channel_not_found")  # a private channel is hidden from outsiders
    channel: dict[str, Any] = {
        "id": conversation.id, "name": conversation.name, "is_channel": not (
            conversation.is_im or conversation.is_private),
        "is_group": conversation.is_private, "is_im": conversation.is_im,
        "is_private": conversation.is_private or conversation.is_im, "is_archived": False,
        "is_general": conversation.id == state.workspaces[token.team_id].general,
        "is_member": conversation.bot_member, "context_team_id": token.team_id,
        "created": 1_700_000_000}
    if conversation.is_im:
        channel["user"] = conversation.user
    return {"channel": channel}


def _view_hash(state: SlackState) -> str:
    """Return a fresh view hash."""
    return hashlib.sha256(state.new_id("h").encode()).hexdigest()[:16]


def _view_param(params: dict[str, Any]) -> dict[str, Any]:
    """Return the view parameter, decoded when sent as a JSON string."""
    view = params.get("view")
    if isinstance(view, str):
        try:
            view = json.loads(view)
        except ValueError as error:
            raise ApiError("invalid_arguments") from error
    if not isinstance(view, dict):
        raise ApiError("invalid_arguments")
    return view


def _view_answer(state: SlackState, view: FakeView) -> dict[str, Any]:
    """Return the answer of views.open/update/publish."""
    return {"view": view.to_dict(state.app_id, state.workspaces[view.team_id].bot_id)}


def views_open(state: SlackState, token: Token | None, params: dict[str, Any]
               ) -> dict[str, Any]:
    """Open a modal for the user whose interaction issued the trigger_id (views.open)."""
    assert token is not None
    body = _view_param(params)
    if validate_view(body) != "modal":
        raise ApiError("invalid_arguments")
    trigger = state.use_trigger(str(params.get("trigger_id", "")), token.team_id)
    view_id = state.new_id("V")
    view = FakeView(view_id, token.team_id, trigger.user_id, "modal", body, _view_hash(state),
                    root_view_id=view_id, versions=[body])
    with state.lock:
        state.views[view_id] = view
    return _view_answer(state, view)


def _find_view(state: SlackState, token: Token, params: dict[str, Any]) -> FakeView:
    """Return the view named by view_id or external_id, or raise not_found."""
    with state.lock:
        if params.get("view_id"):
            view = state.views.get(str(params["view_id"]))
        else:
            external = str(params.get("external_id") or "")
            view = next((v for v in state.views.values() if external
                         and v.body.get("external_id") == external), None)
    if view is None or view.team_id != token.team_id or view.closed:
        raise ApiError("not_found")
    return view


def views_update(state: SlackState, token: Token | None, params: dict[str, Any]
                 ) -> dict[str, Any]:
    """Replace an open view; a stale hash is a hash_conflict (views.update)."""
    assert token is not None
    body = _view_param(params)
    view = _find_view(state, token, params)
    if validate_view(body) != view.type:
        raise ApiError("invalid_arguments")
    if params.get("hash") and params["hash"] != view.hash:
        raise ApiError("hash_conflict")
    with state.lock:
        view.body, view.hash = body, _view_hash(state)
        view.versions.append(body)
    return _view_answer(state, view)


def views_publish(state: SlackState, token: Token | None, params: dict[str, Any]
                  ) -> dict[str, Any]:
    """Publish a user's App Home tab (views.publish)."""
    assert token is not None
    body = _view_param(params)
    if validate_view(body) != "home":
        raise ApiError("invalid_arguments")
    user = state.user(str(params.get("user_id", "")), token.team_id)
    with state.lock:
        view_id = state.homes.get((token.team_id, user.id))
        view = state.views.get(view_id) if view_id else None
        if view is not None and params.get("hash") and params["hash"] != view.hash:
            raise ApiError("hash_conflict")
        if view is None:
            view_id = state.new_id("V")
            view = FakeView(view_id, token.team_id, user.id, "home", body, _view_hash(state),
                            root_view_id=view_id)
            state.views[view_id] = view
            state.homes[(token.team_id, user.id)] = view_id
        view.body, view.hash = body, _view_hash(state)
        view.versions.append(body)
    return _view_answer(state, view)


def install_app(state: SlackState, team_id: str, user_id: str, scope: str,
                  user_scope: str) -> dict[str, Any]:
    """Issue the tokens of an installation and return oauth.v2.access's answer."""
    workspace = state.workspaces[team_id]
    bot = state.issue_token(team_id, "bot", workspace.bot_user_id, scope)
    with state.lock:
        workspace.bot_token, workspace.installer_id = bot.value, user_id
    answer: dict[str, Any] = {
        "app_id": state.app_id, "authed_user": {"id": user_id}, "scope": scope,
        "token_type": "bot", "access_token": bot.value, "bot_user_id": workspace.bot_user_id,
        "team": {"id": workspace.id, "name": workspace.name},
        "enterprise": None, "is_enterprise_install": False,
    }
    if state.token_rotation:
        refresh = state.issue_token(team_id, "refresh", workspace.bot_user_id, scope)
        workspace.refresh_token = refresh.value
        answer.update(refresh_token=refresh.value, expires_in=int(bot.expires_at or 0)
                      - int(state.now()))
    if user_scope:
        user = state.issue_token(team_id, "user", user_id, user_scope)
        answer["authed_user"].update(scope=user_scope, access_token=user.value,
                                     token_type="user")
    return answer


def oauth_v2_access(state: SlackState, token: Token | None, params: dict[str, Any]
                    ) -> dict[str, Any]:
    """Exchange a code, or a refresh token with token rotation, for tokens (oauth.v2.access).

    https://docs.slack.dev/reference/methods/oauth.v2.access and
    https://docs.slack.dev/authentication/using-token-rotation: a refresh answers a new
    access token and a new refresh token; the old refresh token stops working.
    """
    if params.get("client_id") != state.client_id:
        raise ApiError("invalid_client_id")
    if params.get("client_secret") != state.client_secret:
        raise ApiError("bad_client_secret")
    if params.get("grant_type") == "refresh_token":
        with state.lock:
            refresh = state.tokens.get(str(params.get("refresh_token", "")))
            if refresh is None or refresh.kind != "refresh" or refresh.revoked:
                raise ApiError("invalid_refresh_token")
            refresh.revoked = True
        workspace = state.workspaces[refresh.team_id]
        answer = install_app(state, refresh.team_id, workspace.installer_id or "",
                               refresh.scope, "")
        return answer
    if params.get("grant_type") not in (None, "", "authorization_code"):
        raise ApiError("invalid_grant_type")
    with state.lock:
        grant = state.grants.get(str(params.get("code", "")))
        if grant is None or grant.used or state.now() - grant.issued_at > CODE_TTL:
            raise ApiError("invalid_code")
        grant.used = True
    if grant.redirect_uri and params.get("redirect_uri") not in (None, grant.redirect_uri):
        raise ApiError("bad_redirect_uri")
    return install_app(state, grant.team_id, grant.user_id, grant.scope, grant.user_scope)


def auth_revoke(state: SlackState, token: Token | None, params: dict[str, Any]
                ) -> dict[str, Any]:
    """Revoke the calling token, unless test=true (auth.revoke)."""
    assert token is not None
    if not _flag(params.get("test")):
        with state.lock:
            token.revoked = True
    return {"revoked": not _flag(params.get("test"))}


def apps_uninstall(state: SlackState, token: Token | None, params: dict[str, Any]
                   ) -> dict[str, Any]:
    """Uninstall the app from the token's workspace, revoking all its tokens."""
    assert token is not None
    if params.get("client_id") != state.client_id:
        raise ApiError("invalid_client_id")
    if params.get("client_secret") != state.client_secret:
        raise ApiError("bad_client_secret")
    state.revoke_team(token.team_id)
    return {}


METHODS: dict[str, Method] = {
    "auth.test": auth_test,
    "users.info": users_info,
    "users.list": users_list,
    "chat.postMessage": chat_post_message,
    "chat.postEphemeral": chat_post_ephemeral,
    "chat.update": chat_update,
    "chat.delete": chat_delete,
    "conversations.open": conversations_open,
    "conversations.info": conversations_info,
    "views.open": views_open,
    "views.update": views_update,
    "views.publish": views_publish,
    "oauth.v2.access": oauth_v2_access,
    "auth.revoke": auth_revoke,
    "apps.uninstall": apps_uninstall,
}
# Methods that authenticate with the app's client credentials instead of a token.
CLIENT_AUTH = frozenset({"oauth.v2.access"})
