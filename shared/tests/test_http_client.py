"""The HTTP client the services use between themselves (httpx: feed pages, DUO): a request
over a real connection looks up no module. httpcore asks which async library runs four
times a request by importing sniffio; with sniffio missing each of those was a failed import
that searched the whole ``sys.path`` (~0.7 ms of CPU a request on the project's machine)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

from verzuimhub_shared.http import http_client


class _Recorder(MetaPathFinder):
    def __init__(self) -> None:
        self.looked_up: list[str] = []

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        self.looked_up.append(fullname)
        return None  # the usual finders decide


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def test_a_request_over_a_connection_looks_up_no_module() -> None:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    recorder = _Recorder()
    try:
        async with http_client(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/")).text == "ok"  # connection and pool set up
            sys.meta_path.insert(0, recorder)
            try:
                answers: list[Any] = [await client.get("/") for _ in range(3)]
            finally:
                sys.meta_path.remove(recorder)
    finally:
        server.close()
        await server.wait_closed()
    assert [a.text for a in answers] == ["ok"] * 3
    assert recorder.looked_up == []
