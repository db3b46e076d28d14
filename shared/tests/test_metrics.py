"""The edge's request metrics, counted in plain numbers, expose what prometheus_client's own
Counter and Histogram would."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from verzuimhub_shared.metrics import _LATENCY_BUCKETS, Metrics

OBSERVED = [
    ("GET", "/v1/feed", 200, 0.001),
    ("GET", "/v1/feed", 200, 0.002),  # on a bucket's bound: counted in it (le)
    ("POST", "/v1/registraties", 201, 0.4),
    ("GET", "/v1/feed", 404, 20.0),  # above every bound: +Inf only
    ("GET", "/v1/feed", 200, 0.0031),
]


def _without_created_times(text: str) -> str:
    return re.sub(r"(_created\{[^}]*\}) \S+", r"\1 T", text)


def test_the_series_are_prometheus_clients() -> None:
    registry = CollectorRegistry()
    requests = Counter(
        "http_requests_total",
        "HTTP requests by method, route template and status.",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "http_request_duration_seconds",
        "HTTP request latency by method and route template.",
        ["method", "route"],
        buckets=_LATENCY_BUCKETS,
        registry=registry,
    )
    metrics = Metrics("test")
    for method, route, status, seconds in OBSERVED:
        requests.labels(method, route, str(status)).inc()
        latency.labels(method, route).observe(seconds)
        metrics.observe(method, route, status, seconds)
    expected = _without_created_times(generate_latest(registry).decode())
    assert _without_created_times(metrics.render().decode()) == expected
    assert (
        'http_request_duration_seconds_bucket{le="0.002",method="GET",route="/v1/feed"} 2.0'
        in expected
    )
