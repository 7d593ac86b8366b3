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


def retry_after(error: SlackApiError, default: float) -> float:
    """Return the seconds of the answer's Retry-After header (at least 1), else `default`."""
    headers = getattr(error.response, "headers", None) or {}
    after = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(1.0, float(after)) if after is not None else default
    except ValueError:
        return default


def outcome(error: SlackApiError) -> Exception:
    """Map a Web API error to the outbox's outcome (RetryLater, Unreachable, Rejected).

    A 429 (ratelimited) waits its Retry-After (docs.slack.dev/apis/web-api/rate-limits); a
    5xx waits 5 seconds, or its Retry-After if it sent one.
    """
    code = error_code(error)
    status = getattr(error.response, "status_code", 200)
    if status == 429 or code == "ratelimited":
        return RetryLater(retry_after(error, 1.0))
    if code in UNREACHABLE:
        return Unreachable(code)
    if code in REJECTED or 400 <= status < 500:
        return Rejected(code or str(status))
    return RetryLater(retry_after(error, 5.0))  # a 5xx or an error Slack may not repeat
