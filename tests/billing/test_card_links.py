"""Card links: signed, stateless tokens naming one customer, one chat and a language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing.card_links import DEFAULT_TTL, TicketExpired, mint, read
from billing.errors import TokenInvalid

SECRET = "a-link-secret-for-tests"
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
FIELDS = {"customer_id": "cus_QxZ4kf9Hd2LmN0", "channel": "telegram", "user_id": "123456789",
          "chat_id": "123456789", "locale": "de"}


def _token(**changes: object) -> str:
    return mint(SECRET, **(FIELDS | changes), now=NOW)  # type: ignore[arg-type]


def test_a_token_names_its_customer_chat_and_language_until_it_expires() -> None:
    """It reads back what it was minted with, and expires 24 hours later."""
    ticket = read(SECRET, _token(), now=NOW + timedelta(hours=23))
    assert (ticket.customer_id, ticket.channel, ticket.user_id, ticket.chat_id,
            ticket.locale) == tuple(FIELDS.values())
    assert ticket.expires_at == NOW + DEFAULT_TTL == NOW + timedelta(hours=24)


def test_a_token_is_short_and_url_safe() -> None:
    """It fits a Telegram URL button with room to spare and needs no escaping in a path."""
    token = _token(user_id="9" * 19, chat_id="-100" + "9" * 13)
    assert len(token) < 160
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_an_expired_token_still_says_whose_and_which_language() -> None:
    """Past its time it is refused, but the refusal can speak the token's language."""
    with pytest.raises(TicketExpired) as refused:
        read(SECRET, _token(), now=NOW + timedelta(hours=24))
    assert refused.value.reason == "expired" and refused.value.ticket.locale == "de"


def test_a_token_minted_in_the_past_is_expired_now() -> None:
    """A token minted 25 hours ago is refused against the real clock."""
    old = mint(SECRET, **FIELDS, now=datetime.now(UTC) - timedelta(hours=25))
    with pytest.raises(TicketExpired):
        read(SECRET, old)


@pytest.mark.parametrize("forge", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # another signature
    lambda t: mint("another-secret", **FIELDS, now=NOW),  # signed with another key
    lambda t: _token(customer_id="cus_SomeoneElse01").split(".")[0] + "." + t.split(".")[1],
    lambda t: t.split(".")[0] + "." + "x" * 22,  # a made-up signature of the right shape
])
def test_a_forged_token_is_refused(forge: object) -> None:
    """A changed signature, another key, or another customer under the old signature."""
    with pytest.raises(TokenInvalid) as refused:
        read(SECRET, forge(_token()), now=NOW)  # type: ignore[operator]
    assert not isinstance(refused.value, TicketExpired)


@pytest.mark.parametrize("token", [
    "", "abc", "a.b", _token() + "\n", _token() + ".x", "../../etc/passwd",
    "A" * 700 + "." + "B" * 22, "%2e%2e." + "A" * 22, "ü" * 30 + "." + "A" * 22,
])
def test_a_malformed_token_is_refused(token: str) -> None:
    """Anything not of the token's shape is refused before any MAC is computed."""
    with pytest.raises(TokenInvalid) as refused:
        read(SECRET, token, now=NOW)
    assert refused.value.reason == "malformed"


def test_a_signed_body_of_the_wrong_shape_is_refused() -> None:
    """A MAC that verifies over a body with missing fields still reads as malformed."""
    from billing.card_links import _b64, _mac

    body = _b64(b"1\x1fcus_1")
    with pytest.raises(TokenInvalid) as refused:
        read(SECRET, f"{body}.{_mac(SECRET, body)}", now=NOW)
    assert refused.value.reason == "malformed"


def test_no_field_may_carry_the_separator() -> None:
    """A field with the separator in it is a bug, not a token."""
    with pytest.raises(ValueError):
        _token(user_id="1\x1f2")


def test_without_a_secret_no_token_is_made_or_read() -> None:
    """An empty PORTIER_LINK_SECRET signs nothing and verifies nothing."""
    with pytest.raises(ValueError):
        mint("", **FIELDS)
    with pytest.raises(TokenInvalid):
        read("", _token())
