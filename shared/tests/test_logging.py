"""The service's log lines: one JSON object each, with what we bind and nothing a record
gathers on its own (call site, thread, process); ours and the standard library's alike."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog

from verzuimhub_shared.logging import configure_logging, get_logger


@pytest.fixture
def restored_logging() -> Iterator[None]:
    import verzuimhub_shared.logging as ours

    root = logging.getLogger()
    saved = (list(root.handlers), root.level, structlog.get_config(), ours._configured)
    try:
        yield
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        structlog.configure(**saved[2])
        ours._configured = saved[3]


def _lines(level: str) -> list[dict[str, object]]:
    """What a module's logger (taken at import, before configuration) and the standard
    library print once the service configured logging at ``level``."""
    log = get_logger("t")
    out = io.StringIO()
    with contextlib.redirect_stderr(out):
        configure_logging(level, json=True)
        log.info("http_request", status=201, duration_ms=1.5)
        log.warning("feed_fetch_failed", exc_type="ConnectError")
        logging.getLogger("plain").warning("from the standard library")
        logging.getLogger("plain").info("below WARNING")
    assert sys.stderr is not out
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.usefixtures("restored_logging")
def test_a_log_line_is_one_json_object_of_what_was_logged() -> None:
    ours, warned, foreign, _ = _lines("INFO")
    assert set(ours) == {"event", "level", "timestamp", "status", "duration_ms"}
    assert (ours["event"], ours["level"], ours["status"]) == ("http_request", "info", 201)
    assert (warned["event"], warned["level"]) == ("feed_fetch_failed", "warning")
    assert set(foreign) == {"event", "level", "timestamp"}
    assert foreign["event"] == "from the standard library"
    for line in (ours, foreign):  # UTC, ISO 8601 to the microsecond, this very moment
        stamp = str(line["timestamp"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp), stamp
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        assert abs((datetime.now(UTC) - at).total_seconds()) < 5


@pytest.mark.usefixtures("restored_logging")
def test_lines_below_the_level_are_not_written() -> None:
    (warned, foreign) = _lines("WARNING")
    assert warned["event"] == "feed_fetch_failed"
    assert foreign["event"] == "from the standard library"


@pytest.mark.usefixtures("restored_logging")
def test_an_exception_is_rendered_into_its_line() -> None:
    log = get_logger("t")
    out = io.StringIO()
    with contextlib.redirect_stderr(out):
        configure_logging("INFO", json=True)
        try:
            raise RuntimeError("kapot")
        except RuntimeError:
            log.exception("worker_crashed")
    (line,) = (orjson.loads(text) for text in out.getvalue().splitlines())
    assert line["event"] == "worker_crashed"
    assert "RuntimeError: kapot" in str(line["exception"])


@pytest.mark.usefixtures("restored_logging")
async def test_a_requests_lines_carry_its_ids_and_every_line_the_service() -> None:
    import httpx
    from fastapi import FastAPI

    from verzuimhub_shared.metrics import Metrics
    from verzuimhub_shared.middleware import EdgeMiddleware
    from verzuimhub_shared.tracing import current_trace, new_trace

    log = get_logger("t")
    app = FastAPI()

    @app.get("/ding")
    async def ding() -> dict[str, str]:
        log.info("inside")
        return {}

    app.add_middleware(EdgeMiddleware, api_version="1", metrics=Metrics("t"), max_body_bytes=100)
    trace = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    out = io.StringIO()
    with contextlib.redirect_stderr(out):
        configure_logging("INFO", json=True, service="ingest")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://t"
        ) as client:
            answer = await client.get(
                "/ding", headers={"x-request-id": "verzoek-1", "traceparent": trace}
            )
        log.info("between requests")
        job = current_trace.set(new_trace(request_id="taak-7"))
        try:
            log.info("a worker's job")
        finally:
            current_trace.reset(job)
    lines = [orjson.loads(x) for x in out.getvalue().splitlines()]
    by_event = {line["event"]: line for line in lines}
    inside, access = by_event["inside"], by_event["http_request"]
    between, worker = by_event["between requests"], by_event["a worker's job"]
    assert answer.headers["x-request-id"] == "verzoek-1"
    for line in (inside, access):
        assert (line["request_id"], line["trace_id"]) == ("verzoek-1", "ab" * 16)
    assert "request_id" not in between
    assert "trace_id" not in between
    assert worker["request_id"] == "taak-7"
    assert {line["service"] for line in lines} == {"ingest"}  # httpx's own line too


@pytest.mark.usefixtures("restored_logging")
async def test_a_served_apps_access_lines_are_json(key_dir: Path) -> None:
    """As a server runs an app: its start-up (which configures logging) passes through the
    middleware, so the middleware is built before logging is configured."""
    import asyncio

    import httpx

    from verzuimhub.services import service
    from verzuimhub.testing import settings_for

    structlog.reset_defaults()  # a fresh process: nothing configured yet
    app = service("mock-duo").create_app(settings_for("mock-duo", {}, key_dir))
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = asyncio.Event()

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()

    out = io.StringIO()
    with contextlib.redirect_stderr(out):
        lifespan = asyncio.create_task(
            app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, events.get, send)
        )
        await events.put({"type": "lifespan.startup"})
        await asyncio.wait_for(started.wait(), 10)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://t"
        ) as client:
            await client.get("/v1/bestaat-niet")
        await events.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(lifespan, 10)
    lines = [orjson.loads(x) for x in out.getvalue().splitlines()]
    [access] = [line for line in lines if line["event"] == "http_request"]
    assert (access["service"], access["status"], access["level"]) == ("mock-duo", 404, "info")


@pytest.mark.usefixtures("restored_logging")
@pytest.mark.parametrize("json", [True, False])
def test_the_info_writer_writes_the_loggers_very_line(json: bool) -> None:
    from verzuimhub_shared.logging import info_writer
    from verzuimhub_shared.tracing import current_trace, new_trace

    fields: dict[str, Any] = {
        "method": "POST",
        "route": "/v1/x",
        "status": 201,
        "duration_ms": 1.25,
    }
    out = io.StringIO()
    with contextlib.redirect_stderr(out):
        configure_logging("INFO", json=json, service="ingest")
        token = current_trace.set(new_trace(request_id="verzoek-1"))
        try:
            get_logger("verzuimhub.http").info("http_request", **fields)
            info_writer("verzuimhub.http")("http_request", **fields)
        finally:
            current_trace.reset(token)
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    lines = [re.sub(stamp, "T", line) for line in out.getvalue().splitlines()]
    assert len(lines) == 2
    assert lines[0] == lines[1]
    assert "verzoek-1" in lines[0]


@pytest.mark.usefixtures("restored_logging")
def test_below_info_the_writer_writes_nothing() -> None:
    from verzuimhub_shared.logging import info_writer

    out = io.StringIO()
    with contextlib.redirect_stderr(out):
        configure_logging("WARNING", json=True)
        info_writer("verzuimhub.http")("http_request", status=201)
    assert out.getvalue() == ""
