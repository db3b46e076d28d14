"""The edge: one pure-ASGI middleware for request id, trace context, headers, size limit,
metrics and the access log. Pure ASGI so it costs little on the hot path."""

from __future__ import annotations

import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from verzuimhub_shared.errors import PayloadTooLarge, problem_body
from verzuimhub_shared.logging import get_logger
from verzuimhub_shared.metrics import Metrics
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


class _TooLarge(Exception):
    pass


class EdgeMiddleware:
    def __init__(
        self, app: ASGIApp, *, api_version: str, metrics: Metrics, max_body_bytes: int
    ) -> None:
        global _API_VERSION
        _API_VERSION = api_version
        self.app = app
        self.api_version = api_version.encode()
        self.metrics = metrics
        self.max_body = max_body_bytes

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
        token = current_trace.set(ctx)
        structlog.contextvars.bind_contextvars(request_id=ctx.request_id, trace_id=ctx.trace_id)
        path: str = scope["path"]
        https = scope.get("scheme") == "https" or headers.get(b"x-forwarded-proto") == b"https"
        status_holder = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
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
        declared = headers.get(b"content-length")

        async def receive_wrapper() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _TooLarge
            return message

        try:
            if declared is not None and declared.isdigit() and int(declared) > self.max_body:
                raise _TooLarge
            await self.app(scope, receive_wrapper, send_wrapper)
        except _TooLarge:
            await self._too_large(path, send_wrapper)
        finally:
            route = _route_template(scope)
            elapsed = time.perf_counter() - started
            self.metrics.observe(scope["method"], route, status_holder[0], elapsed)
            if path not in ("/health/live", "/health/ready", "/metrics"):
                log.info(
                    "http_request",
                    method=scope["method"],
                    route=route,
                    status=status_holder[0],
                    duration_ms=round(elapsed * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars("request_id", "trace_id")
            current_trace.reset(token)

    async def _too_large(self, path: str, send: Send) -> None:
        import orjson

        exc = PayloadTooLarge(f"Het verzoek is groter dan {self.max_body} bytes")
        body = orjson.dumps(problem_body(413, exc.title, exc.detail, exc.slug, path))
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/problem+json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    template = getattr(route, "path", None)
    return str(template) if template else "unmatched"
