"""The edge: one pure-ASGI middleware for request id, trace context, headers, size limit,
body-read timeout, per-caller rate limit, metrics and the access log. Pure ASGI so it costs
little on the hot path."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from verzuimhub_shared.auth import VERIFIED_PRINCIPAL
from verzuimhub_shared.errors import (
    PayloadTooLarge,
    ProblemError,
    RequestTimeout,
    TooManyRequests,
)
from verzuimhub_shared.logging import get_logger, info_writer
from verzuimhub_shared.metrics import Metrics
from verzuimhub_shared.ratelimit import RateLimiter
from verzuimhub_shared.tracing import current_trace, new_trace

OPENAPI_PATH = "/v1/openapi.json"
_API_VERSION = "0.0.0"

log = get_logger("verzuimhub.http")

_SECURITY = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


def response_headers_for(path: str) -> dict[str, str]:
    headers = {k.decode(): v.decode() for k, v in _SECURITY}
    headers["api-version"] = _API_VERSION
    headers["cache-control"] = "no-store"
    return headers


#: Never rate limited: probes and scrapers must always get through.
_UNLIMITED = frozenset({"/health/live", "/health/ready", "/metrics", OPENAPI_PATH})


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        api_version: str,
        metrics: Metrics,
        max_body_bytes: int,
        body_timeout_seconds: float = 30.0,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        global _API_VERSION
        _API_VERSION = api_version
        self.app = app
        self.api_version = api_version.encode()
        self.metrics = metrics
        self.max_body = max_body_bytes
        self.body_timeout = body_timeout_seconds
        self.limiter = rate_limiter
        # The access line's writer (logging.info_writer), taken at the first request. Not
        # here: a server builds the middleware before the app's start-up has configured
        # logging (the lifespan passes through it).
        self._access_line: Any = None
        self._limited = (
            metrics.counter(
                "http_rate_limited_total", "Requests refused with 429, by caller kind.", ["kind"]
            )
            if rate_limiter is not None and rate_limiter.enabled
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        ctx = new_trace(
            headers.get(b"traceparent", b"").decode("latin-1") or None,
            headers.get(b"x-request-id", b"").decode("latin-1") or None,
        )
        token = current_trace.set(ctx)  # the request's log lines carry its ids (logging)
        path: str = scope["path"]
        https = scope.get("scheme") == "https" or headers.get(b"x-forwarded-proto") == b"https"
        status_holder = [500]
        response_started = [False]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_started[0] = True
                status_holder[0] = message["status"]
                raw = list(message.get("headers", []))
                names = {k.lower() for k, _ in raw}
                raw.append((b"api-version", self.api_version))
                raw.append((b"x-request-id", ctx.request_id.encode()))
                raw.append((b"traceparent", ctx.traceparent.encode()))
                raw.extend(h for h in _SECURITY if h[0] not in names)
                if b"cache-control" not in names:
                    raw.append(
                        (b"cache-control", b"public, max-age=60")
                        if path == OPENAPI_PATH
                        else (b"cache-control", b"no-store")
                    )
                if path == OPENAPI_PATH:
                    raw.append((b"access-control-allow-origin", b"*"))
                if https:
                    raw.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = raw
            await send(message)

        received = 0
        body_done = False
        declared = headers.get(b"content-length")

        async def receive_wrapper() -> Message:
            nonlocal received, body_done
            if body_done:  # after the body: a disconnect may take as long as it takes
                return await receive()
            try:
                # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that lands
                # as the part arrives (the request then ran on to an answer nobody awaited),
                # and it runs each receive() in a task of its own.
                async with asyncio.timeout(self.body_timeout):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(
                    f"Geen deel van de inhoud ontvangen binnen {self.body_timeout:g} s"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > self.max_body:
                    raise self._too_large()
            else:
                body_done = True
            return message

        try:
            if declared is not None and declared.isdigit() and int(declared) > self.max_body:
                raise self._too_large()
            if self.limiter is not None and self.limiter.enabled and path not in _UNLIMITED:
                await self._rate_limit(scope, headers)
            await self.app(scope, receive_wrapper, send_wrapper)
        except ProblemError as exc:  # raised at the edge, or escaped the app's handlers
            if response_started[0]:
                raise
            await self._problem(exc, path, send_wrapper)
        finally:
            route = _route_template(scope)
            elapsed = time.perf_counter() - started
            self.metrics.observe(scope["method"], route, status_holder[0], elapsed)
            if path not in ("/health/live", "/health/ready", "/metrics"):
                if self._access_line is None:
                    self._access_line = info_writer("verzuimhub.http")
                self._access_line(
                    "http_request",
                    method=scope["method"],
                    route=route,
                    status=status_holder[0],
                    duration_ms=round(elapsed * 1000, 2),
                )
            current_trace.reset(token)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"Het verzoek is groter dan {self.max_body} bytes")

    async def _rate_limit(self, scope: Scope, headers: dict[bytes, bytes]) -> None:
        kind, key = await _caller_key(scope, headers)
        assert self.limiter is not None
        wait = self.limiter.allow(key)
        if wait:
            if self._limited is not None:
                self._limited.labels(kind).inc()
            log.warning("rate_limited", caller_kind=kind, retry_after_s=wait)
            raise TooManyRequests(wait, f"Te veel verzoeken; probeer het over {wait} s opnieuw")

    async def _problem(self, exc: ProblemError, path: str, send: Send) -> None:
        import orjson

        body = orjson.dumps(exc.body(path))
        raw = [(b"content-type", b"application/problem+json")]
        raw.extend((k.lower().encode(), v.encode()) for k, v in exc.headers.items())
        await send({"type": "http.response.start", "status": exc.status, "headers": raw})
        await send({"type": "http.response.body", "body": body})


async def _caller_key(scope: Scope, headers: dict[bytes, bytes]) -> tuple[str, str]:
    """Who to count a request against: the verified token's organisation and subject, or
    (no valid token) the client address. Verification results are cached by the verifier,
    so the route's own check costs nothing extra."""
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, token = authorization.partition(" ")
    app: Any = scope.get("app")
    verifier = getattr(getattr(app, "state", None), "token_verifier", None)
    if token and scheme.lower() == "bearer" and verifier is not None:
        try:
            principal = await verifier.verify(token)
        except Exception:  # invalid tokens are answered 401 by the route; count by address
            pass
        else:
            scope[VERIFIED_PRINCIPAL] = principal  # the route's ScopeBearer takes it
            return "token", principal.rate_key
    client = scope.get("client") or ("onbekend", 0)
    return "anoniem", f"adres:{client[0]}"


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    template = getattr(route, "path", None)
    return str(template) if template else "unmatched"
