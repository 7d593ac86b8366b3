"""The hosted pages: Checkout, the billing portal, and invoices (HTML a person can use)."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox.cards import LABELS
from sandbox.errors import StripeError
from sandbox.forms import parse_query
from sandbox.money import format_amount, interval_label
from sandbox.resources import portal

if TYPE_CHECKING:
    from sandbox.control import Sandbox

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;"
    "color:#1a1f36}"
    "h1{font-size:1.4rem}.amount{font-size:2rem;font-weight:600}.error{color:#c0123c}"
    "button{background:#635bff;color:#fff;border:0;border-radius:6px;padding:.6rem 1.2rem;"
    "font-size:1rem}"
    "select{font-size:1rem;padding:.3rem}.muted{color:#697386}"
)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><p class='muted'>Stripe sandbox · test mode</p>"
        f"<h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status)


def _card_form(action: str, button: str, error: str | None = None) -> str:
    options = "".join(
        f"<option value='{escape(t)}'>{escape(label)}</option>" for t, label in LABELS.items()
    )
    problem = f"<p class='error'>{escape(error)}</p>" if error else ""
    return (
        f"{problem}<form method='post' action='{escape(action)}'><label>Test card "
        f"<select name='payment_method'>{options}</select></label> "
        f"<button type='submit'>{escape(button)}</button></form>"
    )


async def _form(request: Request) -> dict[str, str]:
    data = parse_query((await request.body()).decode())
    return {k: str(v) for k, v in data.items()}


def hosted_routes(sb: Sandbox) -> list[Route]:
    """Build the routes of the hosted pages for `sb`."""
    store = sb.store

    def checkout_view(session_id: str, error: str | None = None, status: int = 200) -> Response:
        with store.lock:
            session = store.find(session_id, "checkout.session")
            if session is None:
                return _page("Checkout session not found", "", 404)
            if session["status"] != "open":
                return _page(
                    "This checkout is no longer open",
                    f"<p>Status: {escape(session['status'])}</p>",
                    410,
                )
            plan = store.checkout_plans[session_id]
            rows = ""
            for price_id, qty in plan["items"]:
                price = store.objects[price_id]
                product = store.objects[price["product"]]
                each = format_amount(price["unit_amount"], price["currency"])
                every = escape(interval_label(price))
                rows += f"<p>{qty} × {escape(product['name'])} — {each} / {every}</p>"
            total = format_amount(session["amount_total"], session["currency"])
            email = (session["customer_details"] or {}).get("email") or ""
        action = f"/pay/checkout/{session_id}"
        body = f"{rows}<p class='amount'>{total}</p><p class='muted'>{escape(email)}</p>"
        body += _card_form(action, "Subscribe", error)
        if session["cancel_url"]:
            body += f"<p><a href='{escape(session['cancel_url'])}'>Cancel</a></p>"
        return _page("Subscribe", body, status)

    async def checkout_page(request: Request) -> Response:
        session_id = request.path_params["session_id"]
        if request.method == "GET":
            return checkout_view(session_id)
        form = await _form(request)
        try:
            session = sb.complete_checkout(session_id, form.get("payment_method") or "pm_card_visa")
        except StripeError as err:
            return checkout_view(session_id, err.message, err.status)
        target = (session["success_url"] or "/").replace("{CHECKOUT_SESSION_ID}", session_id)
        return RedirectResponse(target, status_code=303)

    async def portal_page(request: Request) -> Response:
        session_id = request.path_params["session_id"]
        with store.lock:
            session = store.find(session_id, "billing_portal.session")
            if session is None:
                return _page("Portal session not found", "", 404)
            customer = store.objects[session["customer"]]
            pm = store.objects.get(customer["invoice_settings"]["default_payment_method"] or "")
        error = None
        if request.method == "POST":
            form = await _form(request)
            try:
                sb.complete_portal(session_id, form.get("payment_method") or "pm_card_visa")
                return RedirectResponse(portal.return_url(session) or "/", status_code=303)
            except StripeError as err:
                error = err.message
        card = f"{pm['card']['brand'].title()} •••• {pm['card']['last4']}" if pm else "none"
        who = escape(customer.get("email") or customer["id"])
        body = f"<p>{who}</p><p>Current card: {escape(card)}</p>"
        body += _card_form(f"/pay/portal/{session_id}", "Save card", error)
        if session["return_url"]:
            body += f"<p><a href='{escape(session['return_url'])}'>Return</a></p>"
        return _page("Update your payment method", body, 402 if error else 200)

    async def invoice_page(request: Request) -> Response:
        invoice_id = request.path_params["invoice_id"]
        error = None
        if request.method == "POST":
            form = await _form(request)
            try:
                sb.pay_invoice(invoice_id, form.get("payment_method") or None)
            except StripeError as err:
                error = err.message
        with store.lock:
            invoice = store.find(invoice_id, "invoice")
            if invoice is None:
                return _page("Invoice not found", "", 404)
            amount = format_amount(invoice["amount_due"], invoice["currency"])
            lines = "".join(
                f"<p>{escape(entry['description'])} — "
                f"{format_amount(entry['amount'], entry['currency'])}</p>"
                for entry in invoice["lines"]["data"]
            )
            status = invoice["status"]
        body = f"<p class='amount'>{amount}</p><p>Status: <b>{escape(status)}</b></p>{lines}"
        if status == "open":
            body += _card_form(f"/pay/invoice/{invoice_id}", "Pay", error)
        body += f"<p><a href='/pay/invoice/{invoice_id}/pdf'>Download PDF</a></p>"
        return _page(f"Invoice {invoice['number'] or invoice_id}", body, 402 if error else 200)

    async def invoice_pdf(request: Request) -> Response:
        invoice_id = request.path_params["invoice_id"]
        with store.lock:
            invoice = store.find(invoice_id, "invoice")
            if invoice is None:
                return Response("not found", status_code=404)
            total = format_amount(invoice["total"], invoice["currency"])
            text = f"Invoice {invoice['number']} {total} {invoice['status']}"
        return Response(tiny_pdf(text), media_type="application/pdf")

    return [
        Route("/pay/checkout/{session_id}", checkout_page, methods=["GET", "POST"]),
        Route("/pay/portal/{session_id}", portal_page, methods=["GET", "POST"]),
        Route("/pay/invoice/{invoice_id}", invoice_page, methods=["GET", "POST"]),
        Route("/pay/invoice/{invoice_id}/pdf", invoice_pdf, methods=["GET"]),
    ]


def tiny_pdf(text: str) -> bytes:
    """Return a one-page PDF showing one line of text."""
    safe = (
        text.encode("latin-1", "replace")
        .decode("latin-1")
        .replace("\\", "")
        .replace("(", "")
        .replace(")", "")
    )
    stream = f"BT /F1 14 Tf 72 720 Td ({safe}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%EOF\n" % (len(objects) + 1, xref)
    return out
