"""How a service's routes are served: the direct handler of a route that takes only the
request and request-only dependencies, routes made the app's own (app.include_routes), and
how a body read by hand is read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any

import fastapi.routing
import httpx
import pytest
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

import verzuimhub_shared.app as app_module
from verzuimhub.services import services
from verzuimhub.testing import settings_for
from verzuimhub_shared.app import include_routes
from verzuimhub_shared.errors import Unauthorized, install_error_handlers
from verzuimhub_shared.validation import (
    ServiceRoute,
    _direct_handler,
    json_body,
    read_body,
    service_router,
)


class _Caller:
    """A request-only dependency, as ScopeBearer is."""

    async def __call__(self, request: Request) -> str:
        name = request.headers.get("x-naam")
        if not name:
            raise Unauthorized("Naam ontbreekt")
        return name


_CALLER = _Caller()
Caller = Annotated[str, Depends(_CALLER)]


def _sync_caller(request: Request) -> str:
    return "sync"


async def _yielding_caller(request: Request) -> AsyncIterator[str]:
    yield "yield"


_ROUTER = service_router()


@_ROUTER.post("/direct")
async def _direct(request: Request, caller: Caller) -> Response:
    return JSONResponse({"caller": caller, "lengte": len(await request.body())}, status_code=201)


@_ROUTER.get("/met-query")
async def _with_query(caller: Caller, x: int = 0) -> Response:
    return JSONResponse({"caller": caller, "x": x})


@_ROUTER.get("/geeft-data")
async def _returns_data(request: Request, caller: Caller) -> dict[str, str]:
    return {"caller": caller}


@_ROUTER.get("/sync-afhankelijk")
async def _sync_dependency(caller: Annotated[str, Depends(_sync_caller)]) -> Response:
    return JSONResponse({"caller": caller})


@_ROUTER.get("/yield-afhankelijk")
async def _yield_dependency(caller: Annotated[str, Depends(_yielding_caller)]) -> Response:
    return JSONResponse({"caller": caller})


@_ROUTER.post("/begrensd", max_body_size=10)
async def _limited(request: Request, caller: Caller) -> Response:
    return JSONResponse({"lengte": len(await request.body())})


def _route(path: str) -> APIRoute:
    [route] = [r for r in _ROUTER.routes if isinstance(r, APIRoute) and r.path == path]
    return route


def test_only_a_route_of_request_and_request_only_dependencies_is_served_directly() -> None:
    assert _direct_handler(_route("/direct")) is not None
    for other in ("/met-query", "/geeft-data", "/sync-afhankelijk", "/yield-afhankelijk"):
        assert _direct_handler(_route(other)) is None, other


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths whose request went through FastAPI's dependency solving."""
    paths: list[str] = []
    real = fastapi.routing.solve_dependencies

    async def counting(*, request: Any, **kwargs: Any) -> Any:
        paths.append(request.url.path)
        return await real(request=request, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    return paths


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t")


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    include_routes(app, _ROUTER)
    return app


async def test_the_direct_handler_answers_as_fastapi_would(solved: list[str]) -> None:
    async with _client(_app()) as client:
        ok = await client.post("/direct", content=b"abc", headers={"x-naam": "school"})
        missing = await client.post("/direct", content=b"abc")
        unknown = await client.post("/direct?x=1", headers={"x-naam": "school"})
        other = await client.get("/met-query?x=4", headers={"x-naam": "school"})
        sync = await client.get("/sync-afhankelijk")
        limited = await client.post("/begrensd", content=b"x" * 100, headers={"x-naam": "s"})
    assert ok.status_code == 201
    assert ok.json() == {"caller": "school", "lengte": 3}
    assert missing.status_code == 401  # the dependency's problem, as FastAPI passes it on
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert unknown.status_code == 400  # ADR 0011's check wraps it too
    assert unknown.json()["invalidParams"] == [{"name": "x", "reason": "onbekende queryparameter"}]
    assert other.json() == {"caller": "school", "x": 4}
    assert sync.json() == {"caller": "sync"}
    assert limited.status_code == 413  # a route's own body limit: FastAPI's app applies it
    assert solved == ["/met-query", "/sync-afhankelijk", "/begrensd"]  # not /direct


async def test_included_by_fastapi_a_route_is_served_by_fastapi(solved: list[str]) -> None:
    """``include_router`` may add dependencies of its own: FastAPI's handler runs them."""
    checked: list[str] = []

    async def check(request: Request) -> None:
        checked.append(request.url.path)

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(_ROUTER, dependencies=[Depends(check)])
    async with _client(app) as client:
        response = await client.post("/direct", headers={"x-naam": "school"})
    assert response.status_code == 201
    assert checked == solved == ["/direct"]


async def test_a_routers_dependency_overrides_still_apply(solved: list[str]) -> None:
    provider = SimpleNamespace(dependency_overrides={})
    router = service_router(dependency_overrides_provider=provider)

    @router.post("/direct")
    async def direct(request: Request, caller: Caller) -> Response:
        return JSONResponse({"caller": caller})

    app = FastAPI()
    install_error_handlers(app)
    include_routes(app, router)
    async with _client(app) as client:
        plain = await client.post("/direct", headers={"x-naam": "school"})
        provider.dependency_overrides[_CALLER] = lambda: "vervangen"
        overridden = await client.post("/direct")
    assert plain.json() == {"caller": "school"}
    assert overridden.json() == {"caller": "vervangen"}
    assert solved == ["/direct"]  # only the overridden request


def _apps(key_dir: Path) -> dict[str, FastAPI]:
    return {
        name: entry.create_app(settings_for(name, {}, key_dir))
        for name, entry in services().items()
    }


def test_the_single_registration_route_is_served_directly(key_dir: Path) -> None:
    """The benchmark's hot path (issue 8): a dependency added to it would put FastAPI's
    solving back on every single registration."""
    app = _apps(key_dir)["ingest"]
    [route] = [
        r
        for r in app.router.routes
        if isinstance(r, ServiceRoute) and r.path == "/v1/registraties" and r.methods == {"POST"}
    ]
    assert _direct_handler(route) is not None


def test_a_services_routes_are_its_own_and_document_the_same_as_included(
    key_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = _apps(key_dir)
    for app in own.values():
        assert any(isinstance(r, ServiceRoute) for r in app.router.routes)
        assert not [r for r in app.router.routes if type(r).__name__ == "_IncludedRouter"]

    def included(app: FastAPI, router: Any) -> None:
        app.include_router(router)

    monkeypatch.setattr(app_module, "include_routes", included)
    through_fastapi = _apps(key_dir)
    for name, app in own.items():
        assert app.openapi() == through_fastapi[name].openapi(), name
        wrapped = through_fastapi[name].router.routes
        assert [r for r in wrapped if type(r).__name__ == "_IncludedRouter"]  # the other way


def _request(messages: list[dict[str, Any]]) -> Request:
    parts = iter(messages)

    async def receive() -> dict[str, Any]:
        return next(parts)  # a second read of the body would raise StopIteration

    return Request({"type": "http", "method": "POST", "headers": []}, receive)


async def test_a_body_in_parts_is_read_whole_and_kept_for_request_body() -> None:
    request = _request(
        [
            {"type": "http.request", "body": b'{"a":', "more_body": True},
            {"type": "http.request", "body": b"", "more_body": True},
            {"type": "http.request", "body": b" 1}", "more_body": False},
        ]
    )
    assert await json_body(request) == ({"a": 1}, b'{"a": 1}')
    assert await request.body() == b'{"a": 1}'


async def test_a_client_gone_before_its_body_is_a_client_disconnect() -> None:
    request = _request(
        [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}]
    )
    with pytest.raises(ClientDisconnect):
        await read_body(request)
