"""Slack requests checked before Bolt reads them: a body Slack never sends gets a 400.

Bolt parses a request's body in `AsyncBoltRequest`'s constructor, before it verifies the
signature, with plain `json.loads` (RecursionError on deep nesting, JSONDecodeError on a
`payload` field that is not JSON) and `bytes.decode()` (UnicodeDecodeError). Its extractors
(`slack_bolt.request.internals`) then call `.get` on whatever sits under `team`, `user`,
`event`, `authorizations[0]`, … All of that surfaces as a 500. `malformed` parses the body
the way Bolt will (`parse_body`: JSON when so declared or when it starts with "{", else the
form's `payload` field, else the form itself), strictly (billing.payloads), and checks the
types of the fields Bolt and Portier's listeners read, so that what reaches Bolt is a shape
it handles.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from billing.payloads import MalformedPayload, parse

# A field either names something by id or carries it as an object (Bolt takes both).
_OBJECT_OR_ID = ("team", "user", "enterprise", "channel")
# Objects Bolt or the listeners look into.
_OBJECTS = ("event", "view", "container", "message", "previous_message", "item",
            "assistant_thread", "function_data", "state", "values")
_LISTS = ("authorizations", "actions")
# (not "text": a message's is a string, a button's an object)
_TEXTS = ("type", "id", "team_id", "user_id", "channel_id", "enterprise_id", "event_id",
          "api_app_id", "trigger_id", "response_url", "callback_id", "command",
          "action_id", "block_id", "value", "private_metadata", "thread_ts", "ts", "locale")
_DEPTH = 4  # how far into objects the fields are checked (view.state.values is 3 down)


def _check(node: dict[str, Any], depth: int = 0) -> str | None:
    for key in _TEXTS:
        if node.get(key) is not None and not isinstance(node[key], str):
            return f"{key} is not text"
    for key in _OBJECT_OR_ID:
        if node.get(key) is not None and not isinstance(node[key], dict | str):
            return f"{key} is neither an id nor an object"
    children: list[Any] = [node[key] for key in _OBJECT_OR_ID if isinstance(node.get(key), dict)]
    for key in _OBJECTS:
        if node.get(key) is not None:
            if not isinstance(node[key], dict):
                return f"{key} is not an object"
            children.append(node[key])
    for key in _LISTS:
        if node.get(key) is not None:
            if not isinstance(node[key], list) or not all(
                    isinstance(item, dict) for item in node[key]):
                return f"{key} is not a list of objects"
            children.extend(node[key])
    if depth < _DEPTH:
        for child in children:
            why = _check(child, depth + 1)
            if why is not None:
                return why
    return None


def malformed(raw: bytes, content_type: str | None) -> str | None:
    """Say why a request body is not one Slack sends (None when it may be)."""
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    if not body:
        return None  # Bolt answers an empty body itself (401: nothing is signed)
    try:
        if content_type == "application/json" or body.startswith("{"):
            data = parse(body, text=True)
        else:
            form = dict(parse_qsl(body, keep_blank_values=True))
            if "payload" not in body:
                return _command(form)
            data = parse(form["payload"], text=True) if "payload" in form else {}
            if isinstance(data, dict) and not isinstance(data.get("user"), dict):
                return "an interaction without its user"  # Slack always says who acted
    except MalformedPayload as error:
        return str(error)
    if not isinstance(data, dict):
        return "not an object"
    if data.get("type") == "event_callback" and not isinstance(data.get("event"), dict):
        return "an event callback without its event"
    return _check(data)


def _command(form: dict[str, str]) -> str | None:
    # Slack sends every slash command with the workspace and the user who ran it.
    if "command" in form and not (form.get("team_id") and form.get("user_id")):
        return "a command without its workspace or user"
    return None
