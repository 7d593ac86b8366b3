"""Slack Web API errors in one place: the error code of a failed call, and what it means to
the outbox (sent never, retry later, unreachable, rejected).

Codes from docs.slack.dev/reference/methods/chat.postMessage ("Errors").
"""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

from bot.outbox import Rejected, RetryLater, Unreachable

# Slack's errors that say the chat is gone for us, and those that say this message never goes.
UNREACHABLE = {"channel_not_found", "not_in_channel", "is_archived", "account_inactive",
               "token_revoked", "invalid_auth", "user_not_found", "cannot_dm_bot",
               "messages_tab_disabled", "user_disabled"}
REJECTED = {"invalid_blocks", "msg_too_long", "no_text", "invalid_arguments",
            "too_many_attachments", "invalid_blocks_format"}


def error_code(error: SlackApiError) -> str:
    """Return the `error` code of a failed Web API call ("" when Slack sent none)."""
    return str(error.response.get("error") or "")


def outcome(error: SlackApiError) -> Exception:
    """Map a Web API error to the outbox's outcome (RetryLater, Unreachable, Rejected)."""
    code = error_code(error)
    status = getattr(error.response, "status_code", 200)
    if status == 429 or code == "ratelimited":
        headers = getattr(error.response, "headers", {}) or {}
        after = headers.get("Retry-After") or headers.get("retry-after") or "1"
        try:
            seconds = max(1.0, float(after))
        except ValueError:
            seconds = 1.0
        return RetryLater(seconds)
    if code in UNREACHABLE:
        return Unreachable(code)
    if code in REJECTED or 400 <= status < 500:
        return Rejected(code or str(status))
    return RetryLater(5.0)  # a 5xx or an error Slack may not repeat
