"""The edge every service shares: problem+json errors, headers, health, metrics, OpenAPI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Query

from verzuimhub.services import services
from verzuimhub_shared.app import ServiceSpec, create_service_app
from verzuimhub_shared.errors import install_error_handlers
from verzuimhub_shared.settings import ServiceSettings
from verzuimhub_shared.validation import service_router, unchecked_routes

SERVICES = ["ingest", "melding", "swv-aggregate", "mock-duo"]


@pytest.mark.parametrize("name", SERVICES)
async def test_health_ready_on_postgres_at_head(app_client: Callable[..., Any], name: str) -> None:
    async with app_client(name) as client:
        live = await client.get("/health/live")
        ready = await client.get("/health/ready")
    assert live.status_code == 200
    assert ready.status_code == 200, ready.text
    if services()[name].migrations_package:
        assert ready.json()["checks"] == {"database": "ok", "migrations": "at head"}


async def test_ready_is_503_when_the_database_is_unreachable(
    app_client: Callable[..., Any],
) -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/nothing"
    async with app_client("ingest", database_url=url) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("unreachable")


@pytest.mark.parametrize("name", SERVICES)
async def test_every_response_carries_api_version_and_security_headers(
    app_client: Callable[..., Any], name: str
) -> None:
    async with app_client(name) as client:
        for path in ("/health/live", "/v1/openapi.json", "/v1/nope"):
            response = await client.get(path)
            assert response.headers["api-version"] == "1.0.0"
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["x-request-id"]


async def test_person_data_routes_are_not_cached_and_openapi_is_cors_open(
    app_client: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    async with app_client("ingest") as client:
        feed = await client.get("/v1/feed", headers=auth("consumer", consumer="melding"))
        doc = await client.get("/v1/openapi.json")
    assert feed.status_code == 200
    assert feed.headers["cache-control"] == "no-store"
    assert "access-control-allow-origin" not in feed.headers
    assert doc.headers["access-control-allow-origin"] == "*"


async def test_unknown_route_and_trailing_slash_are_404_problem(
    app_client: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    async with app_client("ingest") as client:
        unknown = await client.get("/v1/bestaat-niet")
        slash = await client.get("/v1/feed/", headers=auth("consumer", consumer="melding"))
    for response in (unknown, slash):
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert {"type", "title", "status", "detail"} <= body.keys()


async def test_invalid_query_lists_every_problem_as_400(
    app_client: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    async with app_client("ingest") as client:
        response = await client.get(
            "/v1/feed",
            params={"after": "-1", "limit": "abc"},
            headers=auth("consumer", consumer="melding"),
        )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    names = {p["name"] for p in response.json()["invalidParams"]}
    assert names == {"after", "limit"}


async def test_unexpected_exception_is_500_problem_without_internals(
    app_client: Callable[..., Any],
) -> None:
    from verzuimhub.services import service
    from verzuimhub_shared.app import lifespan_context

    entry = service("mock-duo")
    app = entry.create_app(entry.settings(env="test", run_workers=False))

    @app.get("/v1/kapot")
    async def broken() -> None:
        raise RuntimeError("secret internal detail 123456782")

    import httpx

    async with lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/v1/kapot")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "123456782" not in response.text
    assert "RuntimeError" not in response.text


async def test_request_body_over_the_limit_is_413(app_client: Callable[..., Any]) -> None:
    async with app_client("ingest", max_body_bytes=100) as client:
        response = await client.post("/v1/feed", content=b"x" * 1000)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_traceparent_is_continued(app_client: Callable[..., Any]) -> None:
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    async with app_client("melding") as client:
        response = await client.get("/health/live", headers={"traceparent": incoming})
    trace_id = response.headers["traceparent"].split("-")[1]
    assert trace_id == "0af7651916cd43dd8448eb211c80319c"


async def test_metrics_count_requests(app_client: Callable[..., Any]) -> None:
    async with app_client("swv-aggregate") as client:
        await client.get("/health/live")
        await client.get("/v1/bestaat-niet")
        await client.get("/v1/ook-niet")
        await client.post("/v1/bestaat-niet")
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert 'http_requests_total{method="GET",route="unmatched",status="404"} 2.0' in response.text
    assert 'http_requests_total{method="POST",route="unmatched",status="404"} 1.0' in response.text
    count = 'http_request_duration_seconds_count{method="GET",route="unmatched"} 2.0'
    assert count in response.text


async def test_a_query_parameter_the_route_does_not_take_is_refused_by_name(
    app_client: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    """As a body's unknown field is: a misspelt filter must not answer with everything."""
    school = auth("school", brins=["99AA"])
    async with app_client("melding") as client:
        known = await client.get(
            "/v1/scholen/99AA/meldingen?status=concept&limit=5", headers=school
        )
        misspelt = await client.get("/v1/scholen/99AA/meldingen?stauts=concept", headers=school)
    assert known.status_code == 200, known.text
    assert misspelt.status_code == 400
    assert misspelt.headers["content-type"].startswith("application/problem+json")
    assert misspelt.json()["invalidParams"] == [
        {"name": "stauts", "reason": "onbekende queryparameter"}
    ]


async def test_a_page_outside_the_api_document_takes_any_query(
    app_client: Callable[..., Any],
) -> None:
    """The dashboard is opened from links, which may carry tracking parameters."""
    async with app_client("swv-aggregate") as client:
        page = await client.get("/dashboard?utm_source=nieuwsbrief")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")


def _page(after: Annotated[int, Query(alias="naPositie")] = 0, limit: int = 10) -> list[int]:
    return [after, limit]


_THINGS = service_router()


@_THINGS.get("/things")
async def _things(
    paged: Annotated[list[int], Depends(_page)], soort: str | None = None
) -> dict[str, Any]:
    return {"paged": paged, "soort": soort}


async def test_query_parameters_of_a_dependency_and_aliases_are_known() -> None:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(_THINGS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        ok = await c.get("/things?naPositie=3&limit=2&soort=a")
        plain = await c.get("/things")
        bad = await c.get("/things?after=3&y=1&y=2")
    assert ok.json() == {"paged": [3, 2], "soort": "a"}
    assert plain.status_code == 200
    assert bad.status_code == 400
    assert [p["name"] for p in bad.json()["invalidParams"]] == ["after", "y"]


def test_a_service_refuses_a_router_whose_routes_do_not_check_their_query() -> None:
    plain = APIRouter()

    @plain.get("/plain")
    async def _plain() -> None: ...

    @plain.get("/hidden", include_in_schema=False)
    async def _hidden() -> None: ...

    assert unchecked_routes([_THINGS, plain]) == ["['GET'] /plain"]
    spec = ServiceSpec(
        name="t", title="t", description="t", migrations_package=None, routers=[plain]
    )
    with pytest.raises(TypeError, match="/plain"):
        create_service_app(spec, ServiceSettings())


async def test_a_request_cancelled_as_its_body_arrives_stays_cancelled() -> None:
    """A caller's cancellation (a client's own time-out, in process) that lands just as a
    body part arrives is not swallowed: the request does not run on to an answer."""
    import asyncio

    from verzuimhub_shared.metrics import Metrics
    from verzuimhub_shared.middleware import EdgeMiddleware

    answered: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()  # the body: the caller is cancelled as it arrives
        await asyncio.sleep(0)
        answered.append(b"ran on")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    edge = EdgeMiddleware(app, api_version="1", metrics=Metrics("test"), max_body_bytes=1000)
    caller: asyncio.Task[None] | None = None

    async def receive() -> dict[str, Any]:
        assert caller is not None
        caller.cancel()
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Any) -> None:
        pass

    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/v1/x",
        "headers": [],
        "app": None,
    }
    caller = asyncio.create_task(edge(scope, receive, send))
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert answered == []
