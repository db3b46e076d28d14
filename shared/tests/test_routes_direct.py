"""How a service's routes are served: the direct handler of a route that takes only the
request and request-only dependencies, such a route reached without the router
(DirectRoutes), routes made the app's own (app.include_routes), and how a body read by hand
is read."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any

import fastapi.routing
import httpx
import pytest
import starlette.routing
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import OperationalError
from starlette.requests import ClientDisconnect

import verzuimhub_shared.app as app_module
from verzuimhub.services import services
from verzuimhub.testing import make_bsn, registratie, settings_for
from verzuimhub_shared.app import include_routes
from verzuimhub_shared.errors import Unauthorized, install_error_handlers
from verzuimhub_shared.validation import (
    DirectRoutes,
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


@_ROUTER.post("/verbinding-weg")
async def _connection_lost(request: Request, caller: Caller) -> Response:
    raise OperationalError("SELECT 1", {}, Exception("weg"), connection_invalidated=True)


@_ROUTER.post("/stuk")
async def _broken(request: Request, caller: Caller) -> Response:
    raise RuntimeError("stuk")


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


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths whose request went through the app's router."""
    paths: list[str] = []
    real = starlette.routing.Router.__call__

    async def counting(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            paths.append(scope["path"])
        await real(self, scope, receive, send)

    monkeypatch.setattr(starlette.routing.Router, "__call__", counting)
    return paths


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)  # a 500 is answered
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def _app(*, direct_routes: bool = False, router: Any = _ROUTER) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    include_routes(app, router)
    if direct_routes:
        app.add_middleware(DirectRoutes)
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


_REQUESTS: list[tuple[str, str, dict[str, str]]] = [
    ("POST", "/direct", {"x-naam": "school"}),
    ("POST", "/direct", {}),  # the dependency's problem
    ("POST", "/direct?x=1", {"x-naam": "school"}),  # ADR 0011's check
    ("GET", "/direct", {"x-naam": "school"}),  # another method: the router's 405
    ("POST", "/direct/", {"x-naam": "school"}),  # another path: the router's redirect
    ("POST", "/verbinding-weg", {"x-naam": "school"}),  # a handler of the app's: 503
    ("POST", "/stuk", {"x-naam": "school"}),  # the server error handler: 500
    ("GET", "/met-query?x=4", {"x-naam": "school"}),
    ("POST", "/begrensd", {"x-naam": "school"}),
]


async def _answers(app: FastAPI) -> list[tuple[int, str, bytes]]:
    async with _client(app) as client:
        answers = []
        for method, url, headers in _REQUESTS:
            response = await client.request(method, url, content=b"abc", headers=headers)
            answers.append(
                (response.status_code, response.headers.get("content-type", ""), response.content)
            )
    return answers


async def test_direct_routes_answer_every_request_as_the_router_does(routed: list[str]) -> None:
    through_router = await _answers(_app())
    assert len(routed) == len(_REQUESTS)
    routed.clear()
    direct = await _answers(_app(direct_routes=True))
    assert direct == through_router
    assert [status for status, _, _ in direct] == [201, 401, 400, 405, 307, 503, 500, 200, 200]
    # Only the routes served directly skip the router; another method, another path, a route
    # FastAPI serves (a query parameter, its own body limit) still go through it.
    assert routed == ["/direct", "/direct/", "/met-query", "/begrensd"]


async def test_a_direct_route_is_not_taken_where_the_router_would_take_another(
    routed: list[str],
) -> None:
    router = service_router()

    @router.post("/{naam}")
    async def earlier(request: Request, caller: Caller) -> Response:
        return JSONResponse({"route": "eerder"})

    @router.post("/direct")
    async def later(request: Request, caller: Caller) -> Response:
        return JSONResponse({"route": "later"})

    async with _client(_app(direct_routes=True, router=router)) as client:
        response = await client.post("/direct", headers={"x-naam": "school"})
    assert response.json() == {"route": "eerder"}
    assert routed == ["/direct"]


async def test_routes_of_other_kinds_before_a_direct_route_leave_it_direct(
    routed: list[str],
) -> None:
    app = _app(direct_routes=True)
    elsewhere = starlette.routing.Host("elders.example", app=JSONResponse({"host": True}))
    mounted = starlette.routing.Mount("/ergens", app=JSONResponse({"mount": True}))
    app.router.routes[:0] = [elsewhere, mounted]
    async with _client(app) as client:
        response = await client.post("/direct", headers={"x-naam": "school"})
        other = await client.get("/ergens/iets")
    assert response.status_code == 201
    assert other.json() == {"mount": True}
    assert routed == ["/ergens/iets"]


async def test_direct_routes_leave_a_request_with_a_root_path_to_the_router(
    routed: list[str],
) -> None:
    """The router matches the path without the ``root_path``: mounted at ``/direct``, a
    request for ``/direct`` asks for the root, not for the route ``/direct``."""
    answers = []
    for direct_routes in (False, True):
        transport = httpx.ASGITransport(_app(direct_routes=direct_routes), root_path="/direct")
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answers.append(await client.post("/direct", headers={"x-naam": "school"}))
    assert [response.status_code for response in answers] == [404, 404]
    assert routed == ["/direct", "/direct"]


async def test_a_routers_dependency_overrides_apply_through_direct_routes(
    solved: list[str], routed: list[str]
) -> None:
    provider = SimpleNamespace(dependency_overrides={})
    router = service_router(dependency_overrides_provider=provider)

    @router.post("/direct")
    async def direct(request: Request, caller: Caller) -> Response:
        return JSONResponse({"caller": caller})

    async with _client(_app(direct_routes=True, router=router)) as client:
        plain = await client.post("/direct", headers={"x-naam": "school"})
        provider.dependency_overrides[_CALLER] = lambda: "vervangen"
        overridden = await client.post("/direct")
    assert plain.json() == {"caller": "school"}
    assert overridden.json() == {"caller": "vervangen"}
    # The overridden request only: through the router, to FastAPI's own app.
    assert solved == routed == ["/direct"]


async def test_ingests_single_registration_skips_the_router_and_is_counted_as_its_route(
    app_client: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    routed: list[str],
) -> None:
    """The benchmark's hot path (issue 8), in the service itself: past the edge (its rate
    limit, metrics and access log see it), not through the router; the metrics name it by
    its route, as for a request the router matched."""
    body = registratie(schoolRegistratieId="direct-1", pgn=make_bsn(4242))
    async with app_client("ingest") as client:
        created = await client.post(
            "/v1/registraties", json=body, headers=auth("school", brins=["99AA"])
        )
        refused = await client.post("/v1/registraties", json=body)
        other_method = await client.get("/v1/registraties")
        metrics = (await client.get("/metrics")).text
    assert created.status_code == 201, created.text
    assert created.headers["x-request-id"]  # the edge's headers
    assert refused.status_code == 401
    assert other_method.status_code == 405  # the router's answer
    assert routed == ["/v1/registraties", "/metrics"]  # the GET only, of the three
    assert 'http_requests_total{method="POST",route="/v1/registraties",status="201"} 1.0' in metrics
    assert 'http_requests_total{method="POST",route="/v1/registraties",status="401"} 1.0' in metrics


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
