"""Deliver events to webhook endpoints in order, signed like Stripe, from a background thread."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0)


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """Return a `Stripe-Signature` header value for this payload."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


@dataclass
class Delivery:
    """One attempt record: which event went where and how it was answered."""

    event_id: str
    event_type: str
    url: str
    status: int | None
    attempts: int


@dataclass
class WebhookSender:
    """A FIFO of signed deliveries drained by one daemon thread."""

    deliveries: list[Delivery] = field(default_factory=list)
    _queue: queue.Queue[tuple[str, str, str, str, str] | None] = field(default_factory=queue.Queue)
    _pending: int = 0
    _idle: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None
    # Test mode: each event also sent `duplicate` extra times, a batch shuffled before sending.
    duplicate: int = 0
    shuffle: bool = False
    rng: random.Random = field(default_factory=random.Random)
    _batch: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    _batch_lock: threading.Lock = field(default_factory=threading.Lock)

    def enqueue(self, event: dict[str, Any], url: str, secret: str, direct: bool = False) -> None:
        """Queue one event for one endpoint; the body is frozen now (signed when sent)."""
        entry = (event["id"], event["type"], url, secret, json.dumps(event, indent=2))
        if direct or not (self.duplicate or self.shuffle):
            self._put(entry)
            return
        with self._batch_lock:
            self._batch.extend([entry] * (1 + self.duplicate))

    def flush(self) -> None:
        """Send the held batch (events of one request or clock step), shuffled if asked."""
        with self._batch_lock:
            batch, self._batch = self._batch, []
        if self.shuffle:
            self.rng.shuffle(batch)
        for entry in batch:
            self._put(entry)

    def _put(self, entry: tuple[str, str, str, str, str]) -> None:
        with self._idle:
            self._pending += 1
        self._ensure_thread()
        self._queue.put(entry)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every queued delivery is done; return False on timeout."""
        self.flush()
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def stop(self) -> None:
        """Stop the sender thread after the queued deliveries."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        # No Nagle wait between headers and body: without it each delivery idles ~40 ms.
        nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        transport = httpx.HTTPTransport(socket_options=nodelay)
        with httpx.Client(timeout=10.0, transport=transport) as client:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                try:
                    self._deliver(client, *item)
                finally:
                    with self._idle:
                        self._pending -= 1
                        self._idle.notify_all()

    def _deliver(
        self,
        client: httpx.Client,
        event_id: str,
        event_type: str,
        url: str,
        secret: str,
        payload: str,
    ) -> None:
        status: int | None = None
        attempts = 0
        for delay in (0.0, *RETRY_DELAYS):
            time.sleep(delay)
            attempts += 1
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": sign(payload, secret),
            }
            try:
                status = client.post(url, content=payload.encode(), headers=headers).status_code
            except httpx.HTTPError as exc:
                log.warning("webhook %s to %s failed: %s", event_id, url, type(exc).__name__)
                status = None
            if status is not None and 200 <= status < 300:
                break
        self.deliveries.append(Delivery(event_id, event_type, url, status, attempts))
