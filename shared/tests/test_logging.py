"""The service's log lines: one JSON object each, with what we bind and nothing a record
gathers on its own (call site, thread, process)."""

from __future__ import annotations

import io
import logging

import orjson

from verzuimhub_shared.logging import configure_logging, get_logger


def test_a_log_line_is_one_json_object_of_what_was_logged() -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("INFO", json=True)
        out = io.StringIO()
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(out)
        get_logger("t").info("http_request", status=201, duration_ms=1.5)
        logging.getLogger("plain").warning("from the standard library")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    ours, foreign = (orjson.loads(line) for line in out.getvalue().splitlines())
    assert set(ours) == {"event", "level", "timestamp", "status", "duration_ms"}
    assert (ours["event"], ours["level"], ours["status"]) == ("http_request", "info", 201)
    assert set(foreign) == {"event", "level", "timestamp"}
    assert foreign["event"] == "from the standard library"
