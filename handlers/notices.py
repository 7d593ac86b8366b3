"""Pushed notices rendered for their recipient (SPEC §7), in their language, with buttons."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from billing.broadcast_text import plain_text
from handlers import menus
from handlers.context import Ctx
from handlers.problems import decline_reason
from handlers.replies import Button, Reply, rows

Params = dict[str, Any]
BRANDS = {"amex": "American Express", "diners": "Diners Club", "unionpay": "UnionPay",
          "cartes_bancaires": "Cartes Bancaires", "jcb": "JCB"}


def _when(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


def _money(ctx: Ctx, params: Params, field: str = "amount") -> str:
    return ctx.money(int(params.get(field) or 0), str(params.get("currency") or "eur"))


def _price(ctx: Ctx, params: Params) -> str:
    every = ctx.interval(str(params.get("interval") or "month"),
                         int(params.get("interval_count") or 1))
    return f"{_money(ctx, params)} {every}"


def _welcome(ctx: Ctx, params: Params) -> Reply:
    business = ctx.billing.catalog.business
    lines = []
    if params.get("plan") and params.get("currency"):
        price = ctx.money(int(params["amount"]), str(params["currency"]))
        lines.append(ctx.t("You are subscribed to {plan} ({price} {interval}).",
                           plan=params["plan"], price=price,
                           interval=ctx.interval(str(params.get("interval", "month")))))
    renews = _when(params.get("renews"))
    if renews:
        lines.append(ctx.t("It renews on {date}.", date=ctx.day(renews)))
    return Reply("\n".join(lines) or ctx.t("Your subscription is active."),
                 title=ctx.t("Welcome to {business}!", business=business.name),
                 buttons=rows(menus.my_plan(ctx)), image_url=business.logo_url, private=True)


def _payment_failed(ctx: Ctx, params: Params) -> Reply:
    lines = [ctx.t("We could not charge {amount} for your subscription.",
                   amount=_money(ctx, params)),
             decline_reason(ctx, str(params.get("reason") or "card_declined"))]
    retry = _when(params.get("next_retry"))
    if retry:
        lines.append(ctx.t("We will try again on {date}. Update your card or pay now to keep "
                           "your subscription.", date=ctx.day(retry)))
    else:
        lines.append(ctx.t("Update your card or pay now to keep your subscription."))
    pay = Button(ctx.t("Pay {amount} now", amount=_money(ctx, params)),
                 action=f"pay:{params['invoice']}")
    return Reply("\n".join(lines), title=ctx.t("Payment failed"),
                 buttons=rows(_update_card(ctx, params), pay), private=True)


def _action_required(ctx: Ctx, params: Params) -> Reply:
    text = ctx.t("Your bank asks you to confirm the payment of {amount}. It takes a moment "
                 "on Stripe's secure page.", amount=_money(ctx, params))
    return Reply(text, title=ctx.t("Please confirm your payment"), private=True,
                 buttons=rows(Button(ctx.t("Complete payment"), url=str(params["hosted_url"]))))


def _payment_received(ctx: Ctx, params: Params) -> Reply:
    text = ctx.t("We received your payment of {amount}. Thank you!", amount=_money(ctx, params))
    if params.get("after_failure"):
        text += "\n" + ctx.t("Your subscription is in good standing again.")
    hosted = params.get("hosted_url")
    label = ctx.t("Invoice {label}", label=params["number"]) if params.get("number") \
        else ctx.t("Invoice")
    button = Button(label, url=str(hosted)) if hosted else menus.invoices(ctx)
    return Reply(text, title=ctx.t("Payment received"), buttons=rows(button), private=True)


def _renewal_reminder(ctx: Ctx, params: Params) -> Reply:
    renews = _when(params.get("renews"))
    text = ctx.t("Your {plan} plan renews on {date}: {amount} will be charged.",
                 plan=params.get("plan") or "", date=ctx.day(renews) if renews else "",
                 amount=_money(ctx, params))
    return Reply(text, title=ctx.t("Renewal reminder"), private=True,
                 buttons=rows(menus.my_plan(ctx), menus.cancel(ctx)))


def _trial_ending(ctx: Ctx, params: Params) -> Reply:
    ends = _when(params.get("trial_end"))
    text = ctx.t("Your free trial of {plan} ends on {date}. Then it costs {price}.",
                 plan=params.get("plan") or "", date=ctx.day(ends) if ends else "",
                 price=_price(ctx, params))
    return Reply(text, title=ctx.t("Your trial ends soon"), private=True,
                 buttons=rows(menus.my_plan(ctx)))


def _card_expiring(ctx: Ctx, params: Params) -> Reply:
    text = ctx.t("Your card {brand} •••• {last4} expires at the end of {month:02d}/{year}. "
                 "Update it so your subscription continues without a hitch.",
                 brand=str(params.get("brand") or "").title(), last4=params.get("last4") or "",
                 month=int(params.get("exp_month") or 0), year=int(params.get("exp_year") or 0))
    return Reply(text, title=ctx.t("Your card expires soon"), private=True,
                 buttons=rows(_update_card(ctx, params)))


def _update_card(ctx: Ctx, params: Params) -> Button:
    # A notice names its customer (notices queued before that get the two-step button).
    customer = params.get("customer")
    return menus.update_card(ctx, str(customer) if isinstance(customer, str) else None)


def _card_updated(ctx: Ctx, params: Params) -> Reply:
    text = ctx.t("{brand} •••• {last4}, expires {month:02d}/{year}, pays your subscription "
                 "from now on.", brand=_brand(params), last4=params.get("last4") or "",
                 month=int(params.get("exp_month") or 0), year=int(params.get("exp_year") or 0))
    pay = None
    if params.get("invoice"):
        text += "\n" + ctx.t("An invoice of {amount} is still open.", amount=_money(ctx, params))
        pay = Button(ctx.t("Pay {amount} now", amount=_money(ctx, params)),
                     action=f"pay:{params['invoice']}")
    return Reply(text, title=ctx.t("Card updated: {brand} •••• {last4}", brand=_brand(params),
                                   last4=params.get("last4") or ""),
                 buttons=rows(pay or menus.my_plan(ctx)), private=True)


def _brand(params: Params) -> str:
    # Stripe's card brands are lower-case ids (visa, mastercard, amex); the few that are not
    # one word read better spelled out.
    brand = str(params.get("brand") or "")
    return BRANDS.get(brand, brand.title())


def _plan_changed(ctx: Ctx, params: Params) -> Reply:
    text = ctx.t("Your subscription is now {plan} at {price}.", plan=params.get("plan") or "",
                 price=_price(ctx, params))
    return Reply(text, title=ctx.t("Plan changed"), private=True,
                 buttons=rows(menus.my_plan(ctx)))


def _canceled(ctx: Ctx, params: Params) -> Reply:
    ends = _when(params.get("ends_at"))
    text = (ctx.t("Your {plan} subscription is canceled and ends on {date}. Until then "
                  "everything keeps working.", plan=params.get("plan") or "",
                  date=ctx.day(ends)) if ends
            else ctx.t("Your {plan} subscription is canceled.", plan=params.get("plan") or ""))
    return Reply(text, title=ctx.t("Subscription canceled"), private=True,
                 buttons=rows(menus.my_plan(ctx)))


def _ended(ctx: Ctx, params: Params) -> Reply:
    if params.get("reason") == "payment_failed":
        text = ctx.t("Your {plan} subscription has ended because the payment failed.",
                     plan=params.get("plan") or "")
    else:
        text = ctx.t("Your {plan} subscription has ended.", plan=params.get("plan") or "")
    return Reply(text, title=ctx.t("Subscription ended"), private=True,
                 buttons=rows(menus.my_plan(ctx)))


def _paused(ctx: Ctx, params: Params) -> Reply:
    resumes = _when(params.get("resumes_at"))
    text = (ctx.t("Your {plan} subscription is paused until {date}.",
                  plan=params.get("plan") or "", date=ctx.day(resumes)) if resumes
            else ctx.t("Your {plan} subscription is paused.", plan=params.get("plan") or ""))
    return Reply(text, title=ctx.t("Subscription paused"), private=True,
                 buttons=rows(menus.my_plan(ctx)))


def _resumed(ctx: Ctx, params: Params) -> Reply:
    text = ctx.t("Your {plan} subscription continues at {price}.",
                 plan=params.get("plan") or "", price=_price(ctx, params))
    return Reply(text, title=ctx.t("Subscription resumed"), private=True,
                 buttons=rows(menus.my_plan(ctx)))


def _broadcast(ctx: Ctx, params: Params) -> Reply:
    # The text was checked as Telegram HTML when the broadcast was made: it goes as it is
    # where formatting shows, and as plain text (links spelled out) elsewhere.
    source = str(params.get("text") or "")
    button = None
    if params.get("url"):
        button = Button(ctx.t("Open link"), url=str(params["url"]))
    elif params.get("plan") and (plan := ctx.billing.catalog.plan(str(params["plan"]))):
        prices = sorted((ctx.billing.prices.by_key[k] for k in plan.prices
                         if k in ctx.billing.prices.by_key),
                        key=lambda p: (p.interval != "month", p.interval_count))
        interval = prices[0].interval if prices else "month"
        if params.get("subscribed"):  # a subscriber switches plans; anyone else subscribes
            button = Button(ctx.t("Switch to {plan}", plan=plan.name),
                            action=f"chg:{plan.key}:{interval}")
        else:
            button = Button(ctx.t("Subscribe to {plan}", plan=plan.name),
                            action=f"buy:{plan.key}:{interval}")
    return Reply(plain_text(source), buttons=rows(button), private=True, html=source)


def _broadcast_progress(ctx: Ctx, params: Params) -> Reply:
    """The admin's progress message of a broadcast: edited while it runs, then its report."""
    counts = {name: int(params.get(name) or 0)
              for name in ("recipients", "delivered", "blocked", "failed", "skipped")}
    number, status, ident = ctx.number, params.get("status"), params.get("broadcast")
    settled = counts["delivered"] + counts["blocked"] + counts["failed"] + counts["skipped"]
    sends_at = _when(params.get("send_at"))
    titles = {"scheduled": ctx.t("Broadcast {id}: scheduled for {date}", id=ident,
                                 date=ctx.moment(sends_at) if sends_at else ""),
              "sending": ctx.t("Broadcast {id}: sending", id=ident),
              "canceled": ctx.t("Broadcast {id}: canceled", id=ident)}
    text = "\n".join([
        ctx.t("{done} of {total} settled.", done=number(settled),
              total=number(counts["recipients"])),
        ctx.t("Delivered {delivered} · blocked {blocked} · failed {failed} · skipped "
              "{skipped}", delivered=number(counts["delivered"]),
              blocked=number(counts["blocked"]), failed=number(counts["failed"]),
              skipped=number(counts["skipped"]))])
    buttons = () if status in ("done", "canceled") else rows(
        Button(ctx.t("Refresh"), action=f"bc:p:{ident}"),
        Button(ctx.t("Cancel broadcast"), action=f"bc:x:{ident}"), per_row=2)
    return Reply(text, title=titles.get(str(status), ctx.t("Broadcast {id}: report", id=ident)),
                 buttons=buttons, private=True)


RENDERERS: dict[str, Callable[[Ctx, Params], Reply]] = {
    "welcome": _welcome,
    "payment_failed": _payment_failed,
    "action_required": _action_required,
    "payment_received": _payment_received,
    "renewal_reminder": _renewal_reminder,
    "trial_ending": _trial_ending,
    "card_expiring": _card_expiring,
    "card_updated": _card_updated,
    "plan_changed": _plan_changed,
    "canceled": _canceled,
    "ended": _ended,
    "paused": _paused,
    "resumed": _resumed,
    "broadcast": _broadcast,
    "broadcast_progress": _broadcast_progress,
    "broadcast_report": _broadcast_progress,  # the report of a broadcast with no message to edit
}


def render_notice(ctx: Ctx, kind: str, params: Params) -> Reply:
    """Render a notice of a known kind."""
    return RENDERERS[kind](ctx, params)
