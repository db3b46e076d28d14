"""Prometheus metrics: one registry per app (so tests can build many apps)."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from math import inf

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _CallbackCollector(Collector):
    def __init__(self, callback: Callable[[], Iterable[Metric]]) -> None:
        self._callback = callback

    def collect(self) -> Iterable[Metric]:
        return self._callback()


class Metrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        self._http = _HttpStats()
        self.registry.register(_CallbackCollector(self._http.collect))
        self._counters: dict[str, Counter] = {}
        self._gauges: dict[str, tuple[str, dict[tuple[str, ...], float], list[str]]] = {}
        self.registry.register(_CallbackCollector(self._collect_gauges))

    def counter(self, name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
        """The counter of that name, made on first use (the registry refuses a second)."""
        if name not in self._counters:
            self._counters[name] = Counter(name, doc, list(labels), registry=self.registry)
        return self._counters[name]

    def set_gauge(
        self, name: str, doc: str, value: float, labels: dict[str, str] | None = None
    ) -> None:
        """A gauge whose value a worker refreshes (e.g. outbox depth, feed lag)."""
        labels = labels or {}
        keys = sorted(labels)
        entry = self._gauges.setdefault(name, (doc, {}, keys))
        entry[1][tuple(labels[k] for k in keys)] = value

    def _collect_gauges(self) -> Iterable[Metric]:
        for name, (doc, values, keys) in self._gauges.items():
            family = GaugeMetricFamily(name, doc, labels=keys)
            for label_values, value in values.items():
                family.add_metric(list(label_values), value)
            yield family

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request answered: ``http_requests_total`` and
        ``http_request_duration_seconds``."""
        self._http.observe(method, route, status, seconds)


_REQUESTS_HELP = "HTTP requests by method, route template and status."
_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _HttpStats:
    """The edge's request counter and latency histogram, counted in plain numbers and
    handed to the registry when it is scraped: the same series as prometheus_client's
    ``Counter`` and ``Histogram`` (``_total``, ``_bucket``, ``_count``, ``_sum``,
    ``_created``), which lock and walk their children on every observation (~18,000
    instructions a request, callgrind). Observed and collected in the app's event loop
    only: the edge observes, ``/metrics`` collects."""

    def __init__(self) -> None:
        self._requests: dict[tuple[str, str, int], list[float]] = {}  # [count, created]
        # [per bucket (the last +Inf)..., sum, created]
        self._latency: dict[tuple[str, str], list[float]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        counted = self._requests.get((method, route, status))
        if counted is None:
            counted = self._requests[(method, route, status)] = [0.0, time.time()]
        counted[0] += 1
        latency = self._latency.get((method, route))
        if latency is None:
            buckets = [0.0] * (len(_LATENCY_BUCKETS) + 1)
            latency = self._latency[(method, route)] = [*buckets, 0.0, time.time()]
        latency[bisect_left(_LATENCY_BUCKETS, seconds)] += 1  # le: seconds <= bound
        latency[-2] += seconds

    def collect(self) -> Iterable[Metric]:
        total = Metric("http_requests", _REQUESTS_HELP, "counter")
        created = Metric("http_requests_created", _REQUESTS_HELP, "gauge")
        for (method, route, status), (count, made) in self._requests.items():
            labels = {"method": method, "route": route, "status": str(status)}
            total.add_sample("http_requests_total", labels, count)
            created.add_sample("http_requests_created", labels, made)
        latency = Metric(
            "http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            "histogram",
        )
        name = "http_request_duration_seconds"
        for (method, route), counts in self._latency.items():
            labels = {"method": method, "route": route}
            cumulative = 0.0
            for bound, count in zip((*_LATENCY_BUCKETS, inf), counts, strict=False):
                cumulative += count
                le = {"le": floatToGoString(bound)}
                latency.add_sample(f"{name}_bucket", labels | le, cumulative)
            latency.add_sample(f"{name}_count", labels, cumulative)
            latency.add_sample(f"{name}_sum", labels, counts[-2])
            latency.add_sample(f"{name}_created", labels, counts[-1])
        return [total, created, latency]


def feed_lag_reporter(metrics: Metrics) -> Callable[[str, int], None]:
    """For ``FeedConsumer(on_lag=…)``: the consumer's distance to the feed head, per feed."""

    def report(feed: str, lag: int) -> None:
        metrics.set_gauge(
            "feed_lag_positions",
            "Feed positions a consumer is behind the producer's head (0: caught up).",
            float(lag),
            {"feed": feed},
        )

    return report
