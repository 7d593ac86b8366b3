"""Stripe's error body, raised anywhere in the sandbox and rendered by the app."""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    """An error answered with Stripe's `{"error": {...}}` body and HTTP status."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        """Return the JSON body Stripe sends for this error."""
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        if self.decline_code:
            error["decline_code"] = self.decline_code
        error.update(self.extra)
        return {"error": error}


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    """Build a 400 invalid_request_error."""
    return StripeError(400, "invalid_request_error", message, code=code, param=param)


def missing(kind: str, object_id: str, param: str = "id") -> StripeError:
    """Build a 404 resource_missing error for an unknown id."""
    return StripeError(
        404,
        "invalid_request_error",
        f"No such {kind}: '{object_id}'",
        code="resource_missing",
        param=param,
    )


def card_declined(
    decline_code: str, message: str, extra: dict[str, Any] | None = None
) -> StripeError:
    """Build a 402 card_error for a declined card."""
    code = "card_declined"
    return StripeError(
        402, "card_error", message, code=code, decline_code=decline_code, extra=extra
    )
