"""Logging: console or JSON lines, with secrets, bot tokens and hosted-page URLs redacted."""

import json
import logging
from collections.abc import Iterator

import pytest

import bot.logs
from bot.logs import configure_logging, redact

SECRET = "link-secret-0123456789"
BOT_TOKEN = "1234567890:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawZ"
log = logging.getLogger("portier.test")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put the root logger back as it was after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in bot.logs.NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    bot.logs._secrets = ()


def json_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_json_format_is_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Each record is one JSON object with ts, level, logger, msg and the extras."""
    configure_logging("json")
    log.info("hello %s", "world", extra={"chat_id": 42, "kind": "renewal"})
    log.warning("multi\nline")
    first, second = json_lines(capsys)
    assert first["level"] == "INFO" and first["logger"] == "portier.test"
    assert first["msg"] == "hello world"
    assert (first["chat_id"], first["kind"]) == (42, "renewal")
    assert str(first["ts"]).endswith("+00:00") and "T" in str(first["ts"])
    assert "exc" not in first
    assert second["msg"] == "multi\nline"


def test_json_format_carries_the_exception(capsys: pytest.CaptureFixture[str]) -> None:
    """An exception is logged under `exc`, still on one line."""
    configure_logging("json")
    try:
        raise RuntimeError("stripe is down")
    except RuntimeError:
        log.exception("sync failed")
    (entry,) = json_lines(capsys)
    assert entry["msg"] == "sync failed"
    assert "RuntimeError: stripe is down" in str(entry["exc"])


def test_console_format(capsys: pytest.CaptureFixture[str]) -> None:
    """Console lines show time, level, logger and message."""
    configure_logging("console")
    log.warning("careful")
    assert capsys.readouterr().err.rstrip().endswith("WARNING portier.test careful")


def test_configure_twice_adds_one_handler(capsys: pytest.CaptureFixture[str]) -> None:
    """Calling configure_logging again replaces its handler instead of adding one."""
    configure_logging("console")
    configure_logging("json")
    log.info("once")
    assert len(json_lines(capsys)) == 1


def test_refuses_unknown_format() -> None:
    """An unknown format is an error, not a silent default."""
    with pytest.raises(ValueError, match="console or json"):
        configure_logging("xml")


def test_quietens_httpx() -> None:
    """httpx logs request URLs (with the bot token) at INFO, so it is raised to WARNING."""
    configure_logging("console")
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    assert not logging.getLogger("httpcore").isEnabledFor(logging.INFO)


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_redacts_message_args_and_exceptions(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    """Configured secrets vanish from messages, arguments and exception text."""
    configure_logging(fmt, secrets=[SECRET, ""])
    log.info(f"inline {SECRET}")
    log.info("as arg %s", SECRET)
    try:
        raise ValueError(f"bad token {SECRET}")
    except ValueError:
        log.exception("failed with %r", {"key": SECRET})
    err = capsys.readouterr().err
    assert SECRET not in err
    assert err.count("[redacted]") >= 4


def test_redacts_extras(capsys: pytest.CaptureFixture[str]) -> None:
    """Secrets and hosted URLs in `extra` fields are redacted too."""
    configure_logging("json", secrets=[SECRET])
    log.info(
        "event", extra={"body": {"url": "https://billing.stripe.com/p/session/x"}, "k": SECRET}
    )
    (entry,) = json_lines(capsys)
    assert entry["body"] == {"url": "[redacted-url]"}
    assert entry["k"] == "[redacted]"


def test_redacts_bot_api_urls_from_libraries(capsys: pytest.CaptureFixture[str]) -> None:
    """A library logging the Bot API URL at WARNING does not leak the token."""
    configure_logging("console")
    logging.getLogger("httpx").warning(
        'HTTP Request: POST https://api.telegram.org/bot%s/getMe "HTTP/1.1 500"', BOT_TOKEN
    )
    err = capsys.readouterr().err
    assert BOT_TOKEN not in err and "AAHdq" not in err
    assert "/bot[redacted]/getMe" in err


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        (f"token {BOT_TOKEN} here", BOT_TOKEN),
        ("GET http://127.0.0.1:5/bot42:short-fake/sendMessage", "42:short-fake"),
        ("file http://127.0.0.1:5/file/bot42:short-fake/doc.pdf", "42:short-fake"),
        ("key sk_test_51HabcDEF", "sk_test_51HabcDEF"),
        ("key sk_live_51HabcDEF", "sk_live_51HabcDEF"),
        ("key rk_live_51HabcDEF", "rk_live_51HabcDEF"),
        ("secret whsec_abcDEF123", "whsec_abcDEF123"),
    ],
)
def test_redacts_tokens_and_keys(text: str, gone: str) -> None:
    """Bot tokens, Bot API paths and Stripe keys are redacted without configuration."""
    redacted = redact(text)
    assert gone not in redacted
    assert "[redacted]" in redacted


@pytest.mark.parametrize(
    "url",
    [
        "https://checkout.stripe.com/c/pay/cs_test_a1B2#fidkdWxOYHwnPyd1blpxYHZxWjA0",
        "https://billing.stripe.com/p/session/test_YWNjdF8xTTJK",
        "https://invoice.stripe.com/i/acct_1M2JTkLkdIwHu7ix/test_YWNjdF8x",
        "https://pay.stripe.com/invoice/acct_1M2J/test_YWNj/pdf?s=ap",
        "http://127.0.0.1:43123/pay/checkout/cs_test_123",
        "http://127.0.0.1:43123/pay/portal/bps_123",
        "http://localhost:8000/stripe/pay/invoice/in_123/pdf",
    ],
)
def test_redacts_hosted_page_urls(url: str) -> None:
    """Stripe's hosted pages, and the sandbox's, are replaced by [redacted-url]."""
    assert redact(f"sending '{url}' to chat 42") == "sending '[redacted-url]' to chat 42"


def test_keeps_ordinary_text() -> None:
    """Ordinary text, API URLs and ids are left alone."""
    text = "GET http://127.0.0.1:5/v1/customers/cus_123 mark_paid invoice in_1 price 12:30"
    assert redact(text) == text


def test_card_links_are_redacted() -> None:
    """A card link's token (it opens a customer's card page) never reaches a log line."""
    token = "MR9jdXNfQmgwSXNYTWtXcXMxcFYfdGVsZWdyYW0fMTAwMR8xMDAxH2VuHzE3OTY.w-awkSq6CwNOVcXdtMMEWg"
    text = redact(f"GET http://127.0.0.1:8080/card/{token} 302; /card and /cards stay")
    assert token not in text and token.split(".")[0] not in text
    assert "/card/[redacted] 302; /card and /cards stay" in text


def test_an_access_log_line_for_a_card_link_is_redacted(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Were uvicorn's access log switched on (bot.service turns it off), its line for a card
    link (uvicorn.logging's format and arguments) would pass the same filter: the path is
    logged without its token."""
    configure_logging("json")
    token = "MR9jdXNfQmgwSXNYTWtXcXMxcFYfdGVsZWdyYW0.w-awkSq6CwNOVcXdtMMEWg"
    log.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/card/{token}", "1.1", 302)
    [line] = json_lines(capsys)
    assert line["msg"] == '127.0.0.1:5000 - "GET /card/[redacted] HTTP/1.1" 302'
