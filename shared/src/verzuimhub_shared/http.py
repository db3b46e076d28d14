"""Outgoing HTTP: an httpx client that passes trace context and request id on every call."""

from __future__ import annotations

from typing import Any

import httpx

from verzuimhub_shared.tracing import outgoing_headers


async def _inject(request: httpx.Request) -> None:
    for name, value in outgoing_headers().items():
        request.headers.setdefault(name, value)


def http_client(**kwargs: Any) -> httpx.AsyncClient:
    hooks = kwargs.pop("event_hooks", {})
    hooks.setdefault("request", []).append(_inject)
    kwargs.setdefault("timeout", httpx.Timeout(10.0, connect=3.0))
    return httpx.AsyncClient(event_hooks=hooks, **kwargs)
