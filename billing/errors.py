"""Errors the billing domain raises; handlers turn each into plain words."""

from __future__ import annotations


class BillingError(Exception):
    """Base of every error the billing domain raises on purpose."""

    code = "billing_error"


class StripeProblem(BillingError):
    """Stripe could not do what was asked; nothing was changed."""

    code = "stripe_problem"


class CardDeclined(StripeProblem):
    """The customer's card was declined."""

    code = "card_declined"

    def __init__(self, reason: str, message: str = "", *, confirm_url: str | None = None) -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.confirm_url = confirm_url  # where the customer can confirm it (authentication)


class RateLimited(StripeProblem):
    """Stripe asked us to slow down."""

    code = "rate_limited"


class StripeUnavailable(StripeProblem):
    """Stripe could not be reached or answered with a server error."""

    code = "stripe_unavailable"


class InvalidRequest(StripeProblem):
    """Stripe refused the request as invalid (a bug or a stale object)."""

    code = "invalid_request"


class StripeAuthFailed(StripeProblem):
    """Stripe rejected the API key."""

    code = "stripe_auth"


class NotFound(BillingError):
    """The object does not exist (in Stripe or here)."""

    code = "not_found"


class NotYours(BillingError):
    """The object belongs to somebody else."""

    code = "not_yours"


class NotLinked(BillingError):
    """The chat user is not linked to a Stripe customer."""

    code = "not_linked"


class NoSubscription(BillingError):
    """The customer has no subscription to act on."""

    code = "no_subscription"


class TokenInvalid(BillingError):
    """A link token is malformed, unknown, already used or expired."""

    code = "token_invalid"

    def __init__(self, reason: str) -> None:
        super().__init__(f"link token {reason}")
        self.reason = reason


class CatalogError(BillingError):
    """The catalog file is missing, malformed or names unknown prices."""

    code = "catalog_error"


class WebhookRejected(BillingError):
    """A webhook body or signature did not verify."""

    code = "webhook_rejected"
