"""structlog JSON logging, configured at start-up (never at import time).

Every line logged for a request, or for a worker's job, carries its request id and trace id:
they are read from ``tracing.current_trace``, which the edge (``middleware``) and the
workers set.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import orjson
import structlog

from verzuimhub_shared.tracing import current_trace


class _Stderr:
    """Writes each rendered line, in one write, to whatever ``sys.stderr`` is at the time (a
    test's capture swaps it after the services' modules took their loggers)."""

    def msg(self, message: str) -> None:
        stream = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    debug = info = warning = warn = error = exception = critical = fatal = log = msg


_STDERR = _Stderr()


def _orjson_text(obj: Any, **kwargs: Any) -> str:
    return orjson.dumps(obj, **kwargs).decode()


def _stamp(service: str) -> Any:
    """One processor for what every line carries: the service's name, the current request's
    (or job's) ids, the level and the time (UTC, ISO 8601, microseconds).

    The ids are one context variable read (``tracing.current_trace``). structlog's
    ``merge_contextvars`` walks every context variable of the context instead (asyncio's,
    SQLAlchemy's, FastAPI's, …) and needs a bind and an unbind per request. The time's text
    up to the second is made once a second (structlog's ``TimeStamper`` took ~2 µs a line).
    """
    second_text = [-1, ""]

    def stamp(_logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        if service:
            event.setdefault("service", service)
        trace = current_trace.get()
        if trace is not None:
            event.setdefault("request_id", trace.request_id)
            event.setdefault("trace_id", trace.trace_id)
        event["level"] = _LEVELS.get(method, method)
        now = time.time()
        second = int(now)
        if second != second_text[0]:
            second_text[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))]
        event["timestamp"] = f"{second_text[1]}.{int((now - second) * 1e6):06d}Z"
        return event

    return stamp


#: Method name → level, as structlog's ``add_log_level`` maps them.
_LEVELS = {"exception": "error", "warn": "warning"}


@dataclass(frozen=True)
class _Configured:
    level: int
    json: bool
    stamp: Callable[[Any, str, dict[str, Any]], dict[str, Any]]


#: What configure_logging set last (None: not yet in this process).
_configured: _Configured | None = None


def configure_logging(level: str = "INFO", *, json: bool = True, service: str = "") -> None:
    """Our own lines go from structlog straight to stderr, filtered by level before any
    work (structlog's performance advice): a line costs ~8 µs instead of ~22 through the
    standard library's records, handler and formatter (the edge's access line takes the
    shorter path of :func:`info_writer`). The standard
    library's lines (uvicorn, SQLAlchemy, asyncpg) keep their path and get the same
    rendering."""
    global _configured
    stamp = _stamp(service)
    _configured = _Configured(logging.getLevelNamesMapping()[level.upper()], json, stamp)
    shared: list[Any] = [stamp]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_text)
        if json
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=lambda *_: _STDERR,
        # Not cached: a logger made on its first use would keep that configuration's level
        # and service name when a test process configures again (~2 µs a line).
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    # What a record would gather and no line prints: where it was logged from (a walk up the
    # stack), the thread, the process (the logging HOWTO's "Optimization").
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log would repeat what our middleware logs, with the raw query string.
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)


def info_writer(name: str) -> Callable[..., None]:
    """``write(event, **fields)``: an INFO line, the very line ``get_logger(name).info``
    writes under the configuration in force now, for a line written on every request (the
    edge's access line). With JSON lines it is rendered in one step, the stamp processor's
    work and one ``orjson.dumps``, instead of through structlog's bound logger and processor
    chain (~19,000 instructions a request, callgrind); below the level it does nothing.

    Take it after ``configure_logging``: a server builds an app's middleware before the
    app's start-up configures logging, so the edge takes it at its first request."""
    configured = _configured
    if configured is None or not configured.json:
        return cast(Callable[..., None], get_logger(name).bind().info)
    if configured.level > logging.INFO:
        return _write_nothing
    stamp = configured.stamp

    def write(event: str, **fields: Any) -> None:
        fields["event"] = event  # last, as structlog puts it
        _STDERR.msg(orjson.dumps(stamp(None, "info", fields), default=repr).decode())

    return write


def _write_nothing(event: str, **fields: Any) -> None:
    return None
