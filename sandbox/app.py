"""The Starlette app: auth, idempotency, Stripe's error bodies, and the v1 routes."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.errors import StripeError, invalid
from sandbox.forms import parse_query
from sandbox.hosted import hosted_routes
from sandbox.renewals import run_due
from sandbox.resources.events import API_VERSION
from sandbox.routes import dispatch, path_known
from sandbox.store import IdempotentResult, new_id

if TYPE_CHECKING:
    from sandbox.control import Sandbox


def _answer(status: int, body: dict[str, Any], headers: dict[str, str]) -> Response:
    return Response(
        json.dumps(body, indent=2),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def _api_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if auth.lower().startswith("basic "):
        import base64

        try:
            return base64.b64decode(auth[6:]).decode().split(":", 1)[0]
        except ValueError:
            return None
    return None


def _idempotency_error(key: str) -> StripeError:
    return StripeError(
        400,
        "idempotency_error",
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{key}' if you meant to execute a "
        "different request.",
    )


async def _seconds(request: Request) -> Any:
    """Return the `seconds` a control request sent: in a JSON body, a form body or the
    query (None when absent or unreadable: the caller answers 400)."""
    raw = (await request.body()).decode(errors="replace")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(raw or "{}")
        except (ValueError, RecursionError):
            return None
        return body.get("seconds") if isinstance(body, dict) else None
    return parse_query(raw or request.url.query).get("seconds")


def build_app(sb: Sandbox) -> Starlette:
    """Build the ASGI app serving `sb`."""

    async def api(request: Request) -> Response:
        method, path = request.method, request.url.path
        request_id = new_id("req_", 14)
        headers = {
            "Request-Id": request_id,
            "Stripe-Version": request.headers.get("stripe-version", API_VERSION),
        }
        store = sb.store
        with store.lock:
            store.requests.append((method, path))
        if sb.latency > 0:
            await asyncio.sleep(sb.latency)
        key = _api_key(request)
        if not key or key != sb.api_key:
            shown = (key or "")[:8] + "*" * 4 if key else ""
            message = (
                f"Invalid API Key provided: {shown}" if key else "You did not provide an API key."
            )
            return _answer(
                401, {"error": {"type": "invalid_request_error", "message": message}}, headers
            )
        body = (await request.body()).decode() if method == "POST" else ""
        params = parse_query(body if method == "POST" else request.url.query)
        idem = request.headers.get("idempotency-key") if method == "POST" else None
        if idem:
            headers["Idempotency-Key"] = idem
        fingerprint = (method, path, "&".join(sorted(body.split("&"))))
        with store.lock:
            injected = sb.take_injected_failure(path)
            if injected is not None:
                return _answer(injected.status, injected.body(), headers)
            if idem:
                stored = store.idempotency.get((key, idem))
                if stored is not None:
                    if stored.fingerprint != fingerprint:
                        return _answer(400, _idempotency_error(idem).body(), headers)
                    return _answer(
                        stored.status, stored.body, {**headers, "Idempotent-Replayed": "true"}
                    )
            store.request_context = {"id": request_id, "idempotency_key": idem}
            try:
                run_due(store)
                result = dispatch(store, method, path, params)
                if result is None:
                    if path_known(path):
                        raise StripeError(
                            405,
                            "invalid_request_error",
                            f"Unrecognized request URL ({method}: {path}).",
                        )
                    raise invalid(f"Unrecognized request URL ({method}: {path}).")
                status, answer = 200, result
            except StripeError as err:
                status, answer = err.status, err.body()
            finally:
                store.request_context = {"id": None, "idempotency_key": None}
                sb.sender.flush()
            if status == 200 and sb.responses is not None:
                sb.responses.append(answer)
            # Stripe saves the result once the endpoint ran: successes and card errors replay.
            if idem and status in (200, 402):
                store.idempotency[(key, idem)] = IdempotentResult(fingerprint, status, answer)
        return _answer(status, answer, headers)

    async def advance(request: Request) -> Response:
        try:
            amount = int(str(await _seconds(request)))
        except (TypeError, ValueError):
            return JSONResponse({"error": "seconds must be an integer"}, status_code=400)
        if amount < 0:
            return JSONResponse({"error": "time only moves forward"}, status_code=400)
        return JSONResponse({"now": sb.advance_time(amount)})

    async def latency(request: Request) -> Response:
        try:
            amount = float(str(await _seconds(request)))
        except (TypeError, ValueError):
            return JSONResponse({"error": "seconds must be a number"}, status_code=400)
        if not 0 <= amount <= 60:
            return JSONResponse({"error": "seconds must be from 0 to 60"}, status_code=400)
        sb.latency = amount
        return JSONResponse({"latency": sb.latency})

    async def now(request: Request) -> Response:
        return JSONResponse({"now": sb.now()})

    async def requests(request: Request) -> Response:
        return JSONResponse({"count": len(sb.requests)})

    routes = [
        Route("/v1/{rest:path}", api, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/advance", advance, methods=["POST"]),
        Route("/_sandbox/latency", latency, methods=["POST"]),
        Route("/_sandbox/now", now, methods=["GET"]),
        Route("/_sandbox/requests", requests, methods=["GET"]),
        *hosted_routes(sb),
    ]
    return Starlette(routes=routes)
