"""The fake Bot API's HTTP face: ``/bot{token}/{method}`` answered like api.telegram.org."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import telegram_messages as messages
from .telegram_state import ApiError, TelegramState, Webhook, bad_request

# python-telegram-bot sends every parameter as a form field, JSON-encoding all values that
# are not strings (telegram/request/_requestparameter.py); these stay strings as sent.
STRING_PARAMS = frozenset({
    "text", "caption", "parse_mode", "url", "secret_token", "callback_query_id",
    "language_code", "inline_message_id", "ip_address", "business_connection_id",
    "message_effect_id", "photo", "document",
})
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
LONG_POLL_STEP = 0.01

Handler = Callable[[TelegramState, dict[str, Any]], Any]


async def read_params(request: Request) -> dict[str, Any]:
    """Return the call's parameters from the query string and a JSON, form or multipart body."""
    raw: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    body = await request.body()
    if content_type.startswith("application/json"):
        decoded = json.loads(body or b"{}")
        if not isinstance(decoded, dict):
            raise bad_request("parameters must be a JSON object")
        params = {**{k: _decode(k, v) for k, v in raw.items()}, **decoded}
        # JSON clients may still send objects as JSON strings; Telegram accepts both
        for key in ("reply_markup", "link_preview_options", "commands", "scope"):
            if isinstance(params.get(key), str):
                params[key] = _decode(key, params[key])
        return params
    if content_type.startswith("multipart/form-data"):
        raw.update(_multipart(content_type, body))
    elif body:
        raw.update(parse_qsl(body.decode(), keep_blank_values=True))
    return {key: _decode(key, value) for key, value in raw.items()}


def _decode(key: str, value: Any) -> Any:
    """Return a form value JSON-decoded unless the parameter is a string one."""
    if key in STRING_PARAMS or not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """Return the fields of a multipart/form-data body, files as Upload objects."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    parsed = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    fields: dict[str, Any] = {}
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            fields[str(name)] = data.decode()
        else:
            fields[str(name)] = messages.Upload(filename, part.get_content_type(), data)
    return fields


def get_me(state: TelegramState, params: dict[str, Any]) -> dict[str, Any]:
    """Describe the bot (getMe)."""
    return {**state.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
            "supports_inline_queries": False, "can_connect_to_business": False,
            "has_main_web_app": False}


def set_webhook(state: TelegramState, params: dict[str, Any]) -> bool:
    """Register the webhook; an empty url removes it (setWebhook)."""
    secret = params.get("secret_token")
    if secret is not None and not _SECRET.fullmatch(str(secret)):
        raise bad_request("secret token contains unallowed characters")
    if params.get("drop_pending_updates"):
        state.drop_updates()
    url = str(params.get("url") or "")
    with state.lock:
        state.webhook = Webhook(
            url, secret, tuple(params.get("allowed_updates") or ()),
            int(params.get("max_connections") or 40), bool(params.get("drop_pending_updates")),
        ) if url else None
    return True


def delete_webhook(state: TelegramState, params: dict[str, Any]) -> bool:
    """Remove the webhook (deleteWebhook)."""
    if params.get("drop_pending_updates"):
        state.drop_updates()
    with state.lock:
        state.webhook = None
    return True


def get_webhook_info(state: TelegramState, params: dict[str, Any]) -> dict[str, Any]:
    """Describe the webhook (getWebhookInfo)."""
    hook = state.webhook
    info: dict[str, Any] = {"url": hook.url if hook else "", "has_custom_certificate": False,
                            "pending_update_count": state.pending_update_count()}
    if hook:
        info["max_connections"] = hook.max_connections
        if hook.allowed_updates:
            info["allowed_updates"] = list(hook.allowed_updates)
    return info


def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
    """Return the key commands are stored under: the scope and the language code."""
    scope = params.get("scope") or {"type": "default"}
    language = str(params.get("language_code") or "")
    if language and not re.fullmatch(r"[a-z]{2}", language):
        raise bad_request("invalid language code specified")
    return json.dumps(scope, sort_keys=True), language


def set_my_commands(state: TelegramState, params: dict[str, Any]) -> bool:
    """Store the command list of a scope and language (setMyCommands)."""
    commands = params.get("commands")
    if not isinstance(commands, list) or len(commands) > 100:
        raise bad_request("commands must be an array of at most 100 BotCommand")
    for command in commands:
        if not _COMMAND_NAME.fullmatch(str(command.get("command", ""))):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(str(command.get("description", ""))) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    with state.lock:
        state.commands[_commands_key(params)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
    return True


def get_my_commands(state: TelegramState, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the command list of a scope and language (getMyCommands)."""
    with state.lock:
        return list(state.commands.get(_commands_key(params), []))


def delete_my_commands(state: TelegramState, params: dict[str, Any]) -> bool:
    """Forget the command list of a scope and language (deleteMyCommands)."""
    with state.lock:
        state.commands.pop(_commands_key(params), None)
    return True


async def get_updates(state: TelegramState, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Long-poll for updates, confirming those below offset (getUpdates)."""
    if state.webhook is not None:
        raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                            "use deleteWebhook to delete the webhook first")
    offset = int(params.get("offset") or 0)
    limit = min(max(int(params.get("limit") or 100), 1), 100)
    allowed = params.get("allowed_updates")
    allowed = tuple(allowed) if isinstance(allowed, list) else None
    deadline = time.monotonic() + float(params.get("timeout") or 0)
    while True:
        updates = state.take_updates(offset, limit, allowed)
        if updates or time.monotonic() >= deadline or state.closing:
            return updates
        await asyncio.sleep(LONG_POLL_STEP)


def answer_callback_query(state: TelegramState, params: dict[str, Any]) -> bool:
    """Answer a button press once (answerCallbackQuery)."""
    query_id = str(params.get("callback_query_id", ""))
    if len(str(params.get("text") or "")) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    with state.lock:
        if state.pending_callbacks.pop(query_id, None) is None:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        state.answered_callbacks.append(params)
    return True


def get_chat(state: TelegramState, params: dict[str, Any]) -> dict[str, Any]:
    """Describe a known chat (getChat)."""
    gifts = dict.fromkeys(("unlimited_gifts", "limited_gifts", "unique_gifts",
                           "premium_subscription", "gifts_from_channels"), False)
    return {**state.chat(params.get("chat_id", "")), "accent_color_id": 0,
            "max_reaction_count": 11, "accepted_gift_types": gifts}


def succeed(state: TelegramState, params: dict[str, Any]) -> bool:
    """Answer True (close, logOut)."""
    return True


METHODS: dict[str, Handler] = {
    "getMe": get_me,
    "setWebhook": set_webhook,
    "deleteWebhook": delete_webhook,
    "getWebhookInfo": get_webhook_info,
    "setMyCommands": set_my_commands,
    "getMyCommands": get_my_commands,
    "deleteMyCommands": delete_my_commands,
    "getUpdates": get_updates,
    "answerCallbackQuery": answer_callback_query,
    "getChat": get_chat,
    "close": succeed,
    "logOut": succeed,
    "sendMessage": messages.send_message,
    "sendPhoto": messages.send_photo,
    "sendDocument": messages.send_document,
    "editMessageText": messages.edit_message_text,
    "editMessageReplyMarkup": messages.edit_message_reply_markup,
    "deleteMessage": messages.delete_message,
}
_BY_LOWER = {name.lower(): name for name in METHODS}


def build_app(state: TelegramState) -> Starlette:
    """Return the Starlette app serving the Bot API from state."""

    async def endpoint(request: Request) -> JSONResponse:
        token, asked = request.path_params["token"], request.path_params["method"]
        method = _BY_LOWER.get(asked.lower(), asked)  # Telegram ignores the case of methods
        params: dict[str, Any] = {}
        try:
            params = await read_params(request)
            result = await _serve(state, token, method, params)
        except ApiError as error:
            return _refuse(state, method, params, error)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            # malformed parameters: Telegram answers 400 rather than failing
            return _refuse(state, method, params, bad_request(f"invalid parameters: {error}"))
        state.log(method, params, 200, None)
        return JSONResponse({"ok": True, "result": result})

    return Starlette(routes=[Route("/bot{token}/{method}", endpoint, methods=["GET", "POST"])])


def _refuse(
    state: TelegramState, method: str, params: dict[str, Any], error: ApiError
) -> JSONResponse:
    """Log a refused call and answer with Telegram's error body."""
    state.log(method, params, error.status, error.description)
    return JSONResponse(error.body(), status_code=error.status)


async def _serve(state: TelegramState, token: str, method: str, params: dict[str, Any]) -> Any:
    """Check the token, the method and arranged failures, then run the method."""
    if ":" not in token:
        raise ApiError(404, "Not Found")  # Telegram answers 404 to malformed tokens
    if token != state.token:
        raise ApiError(401, "Unauthorized")
    handler = METHODS.get(method)
    if handler is None:
        raise ApiError(404, "Not Found")
    if (failure := state.take_failure(method, params.get("chat_id"))) is not None:
        raise failure
    result = handler(state, params)
    if isinstance(result, Awaitable):
        result = await result
    return result
