"""Strict JSON for bodies from outside, and what `verify` makes of signed but odd events."""

from __future__ import annotations

import json
import time

import pytest

from billing.errors import WebhookRejected
from billing.payloads import MAX_DEPTH, MalformedPayload, parse
from billing.webhooks import TOLERANCE, verify
from tests.billing.test_webhooks import SECRET, body, event, sign


def test_parses_ordinary_json() -> None:
    """It returns what json.loads returns for ordinary JSON, Unicode included."""
    raw = '{"a": [1, 2.5, "grüß 😀", null, true], "b": {"c": {}}}'
    assert parse(raw, text=True) == json.loads(raw)


@pytest.mark.parametrize("raw", [
    pytest.param("[" * 50_000 + "]" * 50_000, id="past the recursion limit"),
    pytest.param("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), id="past the depth limit"),
    pytest.param('{"a": NaN}', id="NaN"),
    pytest.param("[Infinity]", id="Infinity"),
    pytest.param("[1e400]", id="a float that overflows"),
    pytest.param("[" + "9" * 5000 + "]", id="an integer of 5000 digits"),
    pytest.param(b"\xff\xfe\x00", id="not UTF-8"),
    pytest.param("{", id="truncated"),
])
def test_refuses_what_json_loads_gets_wrong(raw: str | bytes) -> None:
    """Deep nesting, non-finite numbers, huge integers and garbage are malformed."""
    with pytest.raises(MalformedPayload):
        parse(raw)


def test_takes_nesting_up_to_the_limit() -> None:
    """Nesting up to the depth limit parses."""
    assert parse("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None


@pytest.mark.parametrize("raw", ['"\\ud800"', '{"\\udc00": 1}', '[["x\\ud83d"]]'])
def test_lone_surrogates_are_malformed_as_text(raw: str) -> None:
    """A lone surrogate (in a value or a key) is malformed when text must be valid Unicode,
    and passes otherwise; a surrogate pair is one character and always fine."""
    with pytest.raises(MalformedPayload):
        parse(raw, text=True)
    assert parse(raw) is not None
    assert parse('"\\ud83d\\ude00"', text=True) == "😀"


@pytest.mark.parametrize("ahead", [TOLERANCE + 30, 10**20 - int(time.time())])
def test_verify_refuses_a_signature_dated_ahead(ahead: int) -> None:
    """A signature dated more than the tolerance ahead is refused, whatever stripe-python
    says (it bounds only the past)."""
    raw = body(event())
    with pytest.raises(WebhookRejected, match="future"):
        verify(raw, sign(raw, at=int(time.time()) + ahead), SECRET)


def test_verify_takes_small_clock_skew() -> None:
    """A signature a minute ahead (clock skew) verifies."""
    raw = body(event())
    assert verify(raw, sign(raw, at=int(time.time()) + 60), SECRET)["id"] == "evt_1"


@pytest.mark.parametrize("fields", [
    {"created": "yesterday"}, {"created": 2**70}, {"created": -1}, {"created": True},
    {"created": 1.5}, {"id": ""}, {"id": "e" * 256}, {"type": "t" * 129}, {"data": None},
    {"data": {"object": "cus_1"}},
])
def test_verify_refuses_signed_events_the_database_cannot_take(fields: dict[str, object]) -> None:
    """A signed event with a `created` that is no 32-bit Unix time, an id or type that does
    not fit its column, or no `data.object` is refused."""
    raw = body(event() | fields)
    with pytest.raises(WebhookRejected, match="not an event"):
        verify(raw, sign(raw), SECRET)
