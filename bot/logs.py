"""Logging: console or JSON lines on stderr, with secrets and hosted-page URLs redacted.

The Bot API URL carries the bot token and Stripe's hosted pages are bearer links, so every
record passes through `RedactingFilter` before any handler formats it.
"""

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

REDACTED = "[redacted]"
REDACTED_URL = "[redacted-url]"
MIN_SECRET = 4  # shorter "secrets" would shred ordinary words
CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# httpx logs request URLs (with the bot token) at INFO; stripe logs every request at INFO.
NOISY_LOGGERS = ("stripe", "httpx", "httpcore")

# Stripe's hosted pages, and the local sandbox's stand-ins for them.
HOSTED_URL = re.compile(
    r"https?://(?:(?:checkout|billing|invoice|pay)\.stripe\.com\b"
    r"|[^\s'\"<>]*?/pay/(?:checkout|portal|invoice)/)[^\s'\"<>]*"
)
PATTERNS = (
    (re.compile(r"\d{6,}:[A-Za-z0-9_-]{30,}"), REDACTED),  # Telegram bot token
    (re.compile(r"/bot[^/\s'\"<>]+/"), f"/bot{REDACTED}/"),  # Bot API path segment
    (re.compile(r"\b[sr]k_(?:test|live)_[A-Za-z0-9]+"), REDACTED),  # Stripe keys
    (re.compile(r"\brk_[A-Za-z0-9_]+"), REDACTED),  # other restricted keys
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]+"), REDACTED),  # Stripe webhook secrets
    (re.compile(r"/card/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), f"/card/{REDACTED}"),  # card links
)
STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}

_secrets: tuple[str, ...] = ()


def redact(text: str) -> str:
    """Replace configured secrets, tokens, keys and hosted-page URLs in text."""
    for secret in _secrets:
        text = text.replace(secret, REDACTED)
    text = HOSTED_URL.sub(REDACTED_URL, text)
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Redact a record's final message, exception and stack text in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not crash the caller
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object: ts, level, logger, msg, exc and extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        for key, value in vars(record).items():
            if key not in STANDARD_ATTRS and key not in entry:
                entry[key] = _scrub(value)
        return json.dumps(entry, default=lambda value: redact(str(value)))


def _scrub(value: Any) -> Any:
    """Redact the strings inside an `extra` value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


class _PortierHandler(logging.StreamHandler[TextIO]):
    """The one root handler `configure_logging` installs (found again by its type)."""


def configure_logging(
    fmt: str, secrets: Iterable[str] = (), level: int | str = logging.INFO
) -> None:
    """Send logs to stderr as console lines or JSON, redacting secrets; safe to call twice."""
    if fmt not in ("console", "json"):
        raise ValueError(f"log format must be console or json, not {fmt!r}")
    global _secrets
    _secrets = tuple(sorted({s for s in secrets if len(s) >= MIN_SECRET}, key=len, reverse=True))
    handler = _PortierHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(CONSOLE_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _PortierHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
