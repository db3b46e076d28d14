"""W3C trace context and request id: parsed at the edge, passed on every outgoing call."""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    span_id: str
    flags: str = "01"
    request_id: str = ""

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceContext:
        """The context an outgoing call carries: same trace, a new span."""
        return TraceContext(self.trace_id, secrets.token_hex(8), self.flags, self.request_id)


current_trace: ContextVar[TraceContext | None] = ContextVar("current_trace", default=None)


def parse_traceparent(value: str | None) -> tuple[str, str, str] | None:
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if not match or match.group(1) == "0" * 32 or match.group(2) == "0" * 16:
        return None
    return match.group(1), match.group(2), match.group(3)


def new_trace(traceparent: str | None = None, request_id: str | None = None) -> TraceContext:
    """The context of an incoming request (continuing the caller's trace when valid).

    The ids it makes come from one read of the system's randomness (each read is a
    system call)."""
    fresh = secrets.token_hex(32)  # request id 8 bytes, span id 8, trace id 16
    rid = request_id if request_id and _REQUEST_ID.match(request_id) else fresh[:16]
    parsed = parse_traceparent(traceparent)
    if parsed:
        trace_id, _, flags = parsed
        return TraceContext(trace_id, fresh[16:32], flags, rid)
    return TraceContext(fresh[32:], fresh[16:32], "01", rid)


def outgoing_headers() -> dict[str, str]:
    """Headers for a call made on behalf of the current request or worker job."""
    ctx = current_trace.get()
    if ctx is None:
        ctx = new_trace()
    child = ctx.child()
    return {"traceparent": child.traceparent, "x-request-id": ctx.request_id}
