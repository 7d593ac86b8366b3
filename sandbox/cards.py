"""Stripe's test payment methods and what happens when they are attached or charged."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.errors import StripeError, card_declined


@dataclass(frozen=True)
class TestCard:
    """A test card: its brand and number, and how it behaves."""

    token: str
    brand: str
    last4: str
    attach_decline: str | None = None  # decline_code when attaching fails
    charge_decline: str | None = None  # decline_code when every charge fails
    funding: str = "credit"


CARDS: dict[str, TestCard] = {
    c.token: c
    for c in (
        TestCard("pm_card_visa", "visa", "4242"),
        TestCard("pm_card_mastercard", "mastercard", "4444"),
        TestCard("pm_card_amex", "amex", "8431"),
        TestCard("pm_card_visa_debit", "visa", "5556", funding="debit"),
        TestCard("pm_card_visa_chargeDeclined", "visa", "0341", charge_decline="generic_decline"),
        TestCard(
            "pm_card_chargeDeclinedInsufficientFunds",
            "visa",
            "9995",
            charge_decline="insufficient_funds",
        ),
        TestCard("pm_card_chargeDeclinedLostCard", "visa", "9987", charge_decline="lost_card"),
        TestCard("pm_card_chargeDeclinedStolenCard", "visa", "9979", charge_decline="stolen_card"),
        TestCard(
            "pm_card_chargeDeclinedExpiredCard", "visa", "0069", charge_decline="expired_card"
        ),
        TestCard(
            "pm_card_chargeDeclinedIncorrectCvc", "visa", "0127", charge_decline="incorrect_cvc"
        ),
        TestCard(
            "pm_card_chargeDeclinedProcessingError",
            "visa",
            "0119",
            charge_decline="processing_error",
        ),
        # Stripe's name for the 0341 card: it attaches, and every charge is declined.
        TestCard("pm_card_chargeCustomerFail", "visa", "0341", charge_decline="generic_decline"),
        TestCard(
            "pm_card_authenticationRequired",
            "visa",
            "3155",
            charge_decline="authentication_required",
        ),
        TestCard("pm_card_chargeDeclined", "visa", "0002", attach_decline="generic_decline"),
    )
}

_MESSAGES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "processing_error": "An error occurred while processing your card. Try again in a little bit.",
    "authentication_required": "Your card was declined. This transaction requires authentication.",
}
# Declines Stripe reports under their own error code rather than `card_declined`.
_OWN_CODE = ("authentication_required", "expired_card", "incorrect_cvc", "processing_error")

LABELS = {
    "pm_card_visa": "Visa 4242 (succeeds)",
    "pm_card_mastercard": "Mastercard 4444 (succeeds)",
    "pm_card_visa_chargeDeclined": "Visa 0341 (attaches, charges decline)",
    "pm_card_chargeDeclinedInsufficientFunds": "Visa 9995 (insufficient funds)",
    "pm_card_chargeDeclinedExpiredCard": "Visa 0069 (expired card)",
    "pm_card_authenticationRequired": "Visa 3155 (needs authentication off-session)",
    "pm_card_chargeDeclined": "Visa 0002 (declined, cannot be saved)",
}


def card_for(brand: str, last4: str) -> TestCard | None:
    """Return the test card a stored payment method was made from."""
    for card in CARDS.values():
        if card.brand == brand and card.last4 == last4:
            return card
    return None


def decline(decline_code: str, extra: dict[str, object] | None = None) -> StripeError:
    """Build the card_error Stripe answers for this decline code."""
    err = card_declined(decline_code, _MESSAGES.get(decline_code, "Your card was declined."), extra)
    if decline_code in _OWN_CODE:
        err.code = decline_code
    return err
