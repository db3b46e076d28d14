"""Limits at the edge: body size (413), batch size (400), per-caller rate limit (429 with
Retry-After), and slow clients (408, over a real socket, without holding anyone else up)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from verzuimhub.services import service
from verzuimhub.testing import registratie, settings_for
from verzuimhub_shared.ratelimit import RateLimiter

pytestmark = pytest.mark.postgres

PROBLEM = "application/problem+json"


def _is_problem(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == status


# --- body size ---------------------------------------------------------------------------


async def test_declared_and_streamed_bodies_over_the_limit_are_413(
    app_client: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    school = auth("school", brins=["99AA"])
    async with app_client("ingest", max_body_bytes=1000) as client:
        declared = await client.post(
            "/v1/registraties", content=b"x" * 2000, headers=school | {"content-type": "a/b"}
        )
        _is_problem(declared, 413)

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            for _ in range(10):
                yield b"[" * 300

        streamed = await client.post("/v1/registraties", content=chunks(), headers=school)
        _is_problem(streamed, 413)
        small = await client.post("/v1/registraties", json=registratie(), headers=school)
        assert small.status_code == 201, small.text


async def test_a_batch_over_5000_items_is_refused_whole(
    app_client: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    items = [registratie(schoolRegistratieId=f"b-{i}") for i in range(5001)]
    async with app_client("ingest") as client:
        response = await client.post(
            "/v1/registratie-batches",
            json={"registraties": items},
            headers=auth("school", brins=["99AA"]),
        )
    _is_problem(response, 400)
    assert [p["name"] for p in response.json()["invalidParams"]] == ["registraties"]


# --- rate limit --------------------------------------------------------------------------


def test_the_token_bucket_refills_at_the_configured_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(60, 2, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(3)] == [0, 0, 1]
    assert limiter.allow("b") == 0  # another caller has its own bucket
    now[0] = 0.5
    assert limiter.allow("a") == 1
    now[0] = 1.0
    assert limiter.allow("a") == 0
    assert not RateLimiter(0, 10).enabled
    assert RateLimiter(0, 10).allow("a") == 0


async def test_a_caller_over_its_rate_gets_429_with_retry_after_others_do_not(
    app_client: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    school = auth("school", brins=["99AA"])
    other = auth("school", brins=["99AB"])
    async with app_client("ingest", rate_limit_per_minute=6, rate_limit_burst=3) as client:
        statuses = [
            (await client.get("/v1/categorieen", headers=school)).status_code for _ in range(3)
        ]
        assert statuses == [200, 200, 200]
        refused = await client.get("/v1/categorieen", headers=school)
        _is_problem(refused, 429)
        assert int(refused.headers["retry-after"]) == 10  # one token per 10 s at 6/min
        assert (await client.get("/v1/categorieen", headers=other)).status_code == 200
        # Probes and scrapers are never limited.
        for _ in range(5):
            assert (await client.get("/health/ready")).status_code == 200
        # Without a valid token the client address is the caller.
        anonymous = [(await client.get("/v1/categorieen")).status_code for _ in range(4)]
        assert anonymous == [401, 401, 401, 429]
        metrics = (await client.get("/metrics")).text
    assert 'http_rate_limited_total{kind="token"} 1.0' in metrics
    assert 'http_rate_limited_total{kind="anoniem"} 1.0' in metrics


async def test_rate_limit_zero_switches_it_off(
    app_client: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    school = auth("school", brins=["99AA"])
    async with app_client("ingest", rate_limit_per_minute=0, rate_limit_burst=1) as client:
        for _ in range(5):
            assert (await client.get("/v1/categorieen", headers=school)).status_code == 200


# --- slow clients, over a real socket ----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def _served(app: Any, *, keep_alive: int = 5) -> AsyncIterator[int]:
    port = _free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        timeout_keep_alive=keep_alive,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):  # uvicorn offers a flag, not an event
            if server.started:
                break
            await asyncio.sleep(0.02)
        yield port
    finally:
        server.should_exit = True
        await task


async def _read_all(reader: asyncio.StreamReader, seconds: float) -> bytes:
    chunks = []
    async with asyncio.timeout(seconds):
        while chunk := await reader.read(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def _answer(reader: asyncio.StreamReader, seconds: float) -> tuple[float, bytes]:
    """The whole answer on a connection, and when its first byte arrived."""
    async with asyncio.timeout(seconds):
        first = await reader.read(65536)
    return time.monotonic(), first + await _read_all(reader, seconds)


async def test_a_client_that_stalls_mid_body_gets_408_and_holds_no_one_up(
    clean_dbs: dict[str, str], key_dir: Path, mint: Callable[..., str]
) -> None:
    # The claim is about order, not speed: another client is answered while the stalled
    # ones still hold their connections, and those get their 408 only when the body timeout
    # ends. (A wall-clock bound on the other client failed once in a loaded CI run.)
    body_timeout = 2.0
    token = mint("school", brins=["99AA"])
    app = service("ingest").create_app(
        settings_for("ingest", clean_dbs, key_dir, body_timeout_seconds=body_timeout)
    )
    writers: list[asyncio.StreamWriter] = []
    async with _served(app) as port:
        try:
            stalled_at = time.monotonic()
            answers = []
            for _ in range(20):  # twenty clients send headers and half a body, then stall
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writers.append(writer)
                writer.write(
                    b"POST /v1/registraties HTTP/1.1\r\nHost: x\r\n"
                    + f"Authorization: Bearer {token}\r\n".encode()
                    + b"Content-Type: application/json\r\nContent-Length: 400\r\n\r\n"
                    + b'{"schoolRegistratieId": '
                )
                await writer.drain()
                answers.append(asyncio.create_task(_answer(reader, 10)))
            # Meanwhile everyone else is served.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writers.append(writer)
            writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            served_at, answer = await _answer(reader, 10)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            # The stalled ones get 408 problem+json after the body timeout, and are closed.
            for answered_at, raw in await asyncio.gather(*answers):
                assert served_at < answered_at
                assert answered_at - stalled_at >= body_timeout * 0.9
                head, _, body = raw.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 408"), raw[:300]
                assert b"content-type: application/problem+json" in head.lower()
                assert b'"status":408' in body
        finally:
            for writer in writers:
                writer.close()


async def test_idle_keep_alive_connections_are_closed(
    clean_dbs: dict[str, str], key_dir: Path
) -> None:
    app = service("ingest").create_app(settings_for("ingest", clean_dbs, key_dir))
    async with _served(app, keep_alive=1) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        started = time.monotonic()
        raw = await _read_all(reader, 5)  # the server ends the idle connection
        writer.close()
        assert raw.startswith(b"HTTP/1.1 200")
        assert 0.5 < time.monotonic() - started < 4.5  # keep-alive 1 s; the read gives up at 5
