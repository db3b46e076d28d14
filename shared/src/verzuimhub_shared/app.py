"""The app factory every service uses: the same edge, errors, health, metrics and docs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from sqlalchemy import Table
from starlette.responses import JSONResponse, Response

from verzuimhub_shared.audit_api import audit_router
from verzuimhub_shared.auth import TokenVerifier
from verzuimhub_shared.db import Database
from verzuimhub_shared.errors import install_error_handlers
from verzuimhub_shared.logging import configure_logging, get_logger
from verzuimhub_shared.metrics import CONTENT_TYPE, Metrics
from verzuimhub_shared.middleware import EdgeMiddleware
from verzuimhub_shared.migrations import at_head
from verzuimhub_shared.openapi import build_openapi
from verzuimhub_shared.ratelimit import RateLimiter
from verzuimhub_shared.settings import ServiceSettings
from verzuimhub_shared.validation import DirectRoutes, unchecked_routes

API_VERSION = "1.0.0"

log = get_logger(__name__)

Worker = Callable[[FastAPI, asyncio.Event], Awaitable[None]]


@dataclass
class ServiceSpec:
    """What distinguishes one service: its name, migrations, routes, workers."""

    name: str
    title: str
    description: str
    migrations_package: str | None
    routers: Sequence[APIRouter]
    workers: Sequence[Worker] = ()
    extra_state: dict[str, Any] = field(default_factory=dict)
    #: Request-body models read by hand (to report every problem at once), for the docs.
    openapi_models: Sequence[type[BaseModel]] = ()
    #: The service's append-only audit log; when set, admins may query it (GET /v1/audit).
    audit_table: Table | None = None


def create_service_app(spec: ServiceSpec, settings: ServiceSettings) -> FastAPI:
    metrics = Metrics(spec.name)
    limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, json=settings.log_json, service=spec.name)
        db = Database(settings.database_url, pool_size=settings.database_pool_size)
        app.state.db = db
        app.state.token_verifier = TokenVerifier(
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            public_key_files=settings.jwt_public_key_files,
            jwks_url=settings.jwks_url,
            jwks_cache_seconds=settings.jwks_cache_seconds,
        )
        stop = asyncio.Event()
        app.state.stop = stop
        # What the service started on its own (a group commit's writers) and ends before
        # its database is disposed of.
        on_stop: list[Callable[[], Awaitable[None]]] = []
        app.state.on_stop = on_stop
        tasks = []
        if settings.run_workers:
            tasks = [
                asyncio.create_task(_supervise(worker, app, stop), name=worker.__name__)
                for worker in spec.workers
            ]
        log.info("service_started", service=spec.name, workers=len(tasks))
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for close in on_stop:
                await close()
            await db.dispose()
            log.info("service_stopped", service=spec.name)

    app = FastAPI(
        title=spec.title,
        description=spec.description,
        version=API_VERSION,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        # The hub's own trace context, metrics and logs (tracing, metrics, logging): FastAPI's
        # OpenTelemetry stays off, and no longer asks every request whether a provider is
        # configured (~30,000 instructions a request, callgrind).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.router.redirect_slashes = False
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.spec = spec
    app.state.rate_limiter = limiter
    for key, value in spec.extra_state.items():
        setattr(app.state, key, value)
    install_error_handlers(app)
    routers = [*spec.routers]
    if spec.audit_table is not None:
        routers.append(audit_router(spec.audit_table))
    unchecked = unchecked_routes(routers)
    if unchecked:  # ADR 0011
        raise TypeError(f"routes not made by validation.service_router: {unchecked}")
    for router in routers:
        include_routes(app, router)
    # After the API's routes: a request is matched against the routes in order, and the
    # probes and the scraper come seldom (four matches less for every API request).
    _health_routes(app, spec)

    openapi_doc: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not openapi_doc:
            openapi_doc.update(
                build_openapi(
                    app,
                    version=API_VERSION,
                    public_base_url=settings.public_base_url,
                    models=spec.openapi_models,
                )
            )
            document_edge_responses(openapi_doc)
        return openapi_doc

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/v1/openapi.json", include_in_schema=False)
    async def openapi_json() -> JSONResponse:
        return JSONResponse(openapi())

    # Inside the edge (added first: the last added is outermost), so that a request it
    # serves has passed the edge's checks and is counted and logged as any other.
    app.add_middleware(DirectRoutes)
    app.add_middleware(
        EdgeMiddleware,
        api_version=API_VERSION,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_seconds=settings.body_timeout_seconds,
        rate_limiter=limiter,
    )
    return app


def include_routes(app: FastAPI, router: APIRouter) -> None:
    """The router's routes become the app's own. FastAPI's ``include_router`` keeps the
    router behind a wrapper that every request is matched through, asking each time
    whether the router's routes changed (~67,000 instructions a request, callgrind).

    A route already carries what its router gives it (prefix, tags, dependencies,
    responses). What ``include_router`` would add is its own arguments and the app's
    defaults: the services pass none and set no app-wide dependencies, response class or
    operation ids, so the OpenAPI documents are the same either way (compared). One thing
    does not carry over: ``app.dependency_overrides`` do not reach these routes."""
    app.router.routes.extend(router.routes)


_EDGE_DESCRIPTIONS = {
    "404": "Niet gevonden (of niet van deze organisatie)",
    "408": "De inhoud van het verzoek kwam te traag binnen",
    "409": "Een verzoek met deze Idempotency-Key is nog in behandeling",
    "413": "Verzoek te groot",
    "422": "Idempotency-Key hergebruikt met een andere inhoud",
    "429": "Te veel verzoeken; zie de header Retry-After",
}


def document_edge_responses(doc: dict[str, Any]) -> None:
    """Answers the edge and the shared mechanisms give on top of what a route declares:
    429 everywhere (rate limit), 408/413 where a body is read, 404 where a path names a
    resource, 409/422 where an Idempotency-Key is accepted."""

    def problem(code: str) -> dict[str, Any]:
        return {
            "description": _EDGE_DESCRIPTIONS[code],
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }

    for path_item in doc.get("paths", {}).values():
        for op in path_item.values():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            responses: dict[str, Any] = op["responses"]
            params = op.get("parameters", [])
            codes = ["429"]
            if "requestBody" in op:
                codes += ["408", "413"]
            if any(p.get("in") == "path" for p in params):
                codes.append("404")
            if any(p.get("in") == "header" and p.get("name") == "Idempotency-Key" for p in params):
                codes += ["409", "422"]
            for code in codes:
                responses.setdefault(code, problem(code))


def _health_routes(app: FastAPI, spec: ServiceSpec) -> None:
    @app.get("/health/live", include_in_schema=False)
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/health/ready", include_in_schema=False)
    async def ready() -> Response:
        db: Database = app.state.db
        checks: dict[str, str] = {}
        try:
            await db.ping()
            checks["database"] = "ok"
        except Exception as exc:  # readiness reports, it does not raise
            checks["database"] = f"unreachable: {type(exc).__name__}"
        if spec.migrations_package and checks["database"] == "ok":
            try:
                head = await at_head(spec.migrations_package, db.engine)
                checks["migrations"] = "at head" if head else "behind"
            except Exception as exc:
                checks["migrations"] = f"unknown: {type(exc).__name__}"
        ok = all(v in ("ok", "at head") for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(app.state.metrics.render(), media_type=CONTENT_TYPE)


async def _supervise(worker: Worker, app: FastAPI, stop: asyncio.Event) -> None:
    """Keep a worker loop running; a crash is logged and the loop restarts after a pause."""
    while not stop.is_set():
        try:
            await worker(app, stop)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("worker_crashed", worker=worker.__name__, exc_type=type(exc).__name__)
            await sleep_or_stop(stop, 2.0)


async def sleep_or_stop(
    stop: asyncio.Event, seconds: float, wake: asyncio.Event | None = None
) -> bool:
    """Sleep up to ``seconds``, or until ``wake`` is set (the caller clears it); True when
    stop was requested."""
    waits = {asyncio.ensure_future(event.wait()) for event in (stop, wake) if event is not None}
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
    return stop.is_set()


def lifespan_context(app: FastAPI) -> AbstractAsyncContextManager[Any]:
    """Run an app's lifespan outside a server (tests, CLI)."""
    return app.router.lifespan_context(app)
