"""Buttons that several conversations offer."""

from __future__ import annotations

from handlers.context import Ctx
from handlers.replies import Button


def my_plan(ctx: Ctx) -> Button:
    """Return the "My plan" button."""
    return Button(ctx.t("My plan"), action="plan")


def see_plans(ctx: Ctx) -> Button:
    """Return the "See plans" button."""
    return Button(ctx.t("See plans"), action="plans")


def connect(ctx: Ctx) -> Button:
    """Return the "Connect my subscription" button."""
    return Button(ctx.t("Connect my subscription"), action="connect")


def update_card(ctx: Ctx) -> Button:
    """Return the "Update card" button."""
    return Button(ctx.t("Update card"), action="card")


def invoices(ctx: Ctx) -> Button:
    """Return the "Invoices" button."""
    return Button(ctx.t("Invoices"), action="inv")


def change_plan(ctx: Ctx) -> Button:
    """Return the "Change plan" button."""
    return Button(ctx.t("Change plan"), action="chg")


def cancel(ctx: Ctx) -> Button:
    """Return the "Cancel subscription" button."""
    return Button(ctx.t("Cancel subscription"), action="cancel")


def settings(ctx: Ctx) -> Button:
    """Return the "Settings" button."""
    return Button(ctx.t("Settings"), action="settings")
