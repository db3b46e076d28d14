"""Request bodies validated with a context (catalogue, reference data, today), so that a
400 lists *every* problem at once, named by its field, without echoing the value."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar, get_type_hints

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette._exception_handler import wrap_app_handling_exceptions
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from verzuimhub_shared.errors import BadRequest, InvalidParam, validation_params

M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request) -> bytes:
    """The request's body, as ``request.body()`` reads it (``ClientDisconnect`` when the
    client goes away first), without its async generator and ``aclosing`` wrapper: ~19,000
    instructions of a single registration (callgrind). Kept where Starlette keeps it, so
    ``request.body()`` still answers afterwards."""
    chunks = []
    while True:
        message = await request.receive()
        if message["type"] != "http.request":  # http.disconnect
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    request._body = body
    return body


async def json_body(request: Request) -> tuple[Any, bytes]:
    raw = await read_body(request)
    try:
        return orjson.loads(raw), raw
    except orjson.JSONDecodeError:
        raise BadRequest(
            "De inhoud is geen geldige JSON", invalid_params=[InvalidParam("body", "geen JSON")]
        ) from None


def problems_of(exc: ValidationError) -> list[InvalidParam]:
    return validation_params(exc.errors(include_input=False))


def validate(model: type[M], data: Any, context: dict[str, Any] | None = None) -> M:
    try:
        return model.model_validate(data, context=context, by_alias=True, by_name=False)
    except ValidationError as exc:
        params = problems_of(exc)
        raise BadRequest(f"{len(params)} ongeldige parameter(s)", invalid_params=params) from None


def json_response(status: int, model: BaseModel | dict[str, Any]) -> Response:
    """A model (by alias: lowerCamelCase) or a plain dict as a JSON response."""
    body = (
        model.model_dump_json(by_alias=True).encode()
        if isinstance(model, BaseModel)
        else orjson.dumps(model)
    )
    return Response(body, status_code=status, media_type="application/json")


def body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its body by hand (see ADR 0008)."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


class ServiceRoute(APIRoute):
    """The route class of every service router: a request naming a query parameter the
    route does not take (directly or through a dependency, by alias) is refused with 400,
    naming it, as a body's unknown field is refused. A misspelt filter
    (``?stauts=concept``) would otherwise be ignored and answer with everything. It holds
    the API to its OpenAPI document, so routes outside the document (the dashboard's page
    and files, opened from links that may carry anything) are not checked (ADR 0011).

    A route class, not a dependency: FastAPI's solving of one more dependency cost every
    request ~70,000 instructions (callgrind); this costs a request without a query string
    one lookup. Dependencies given to ``include_router`` are not among the route's own, so
    their query parameters would be refused: the services take a router's routes as the
    app's own (``app.include_routes``).

    A route that takes only the request and dependencies that take only the request, and
    answers with a ``Response`` it makes itself (ingest's single registration), is served
    by a direct handler instead of FastAPI's (see ``_direct_handler``), and reached
    without the router (:class:`DirectRoutes`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The route's own app serves it as the app's own route (app.include_routes).
        # Through include_router, FastAPI builds another for the inclusion, with the
        # inclusion's dependencies and the app's overrides, from get_route_handler.
        direct = _direct_handler(self)
        #: Whether this route's app is the direct one (and ``DirectRoutes`` may call it).
        self.served_directly = False
        if direct is not None and self.max_body_size is None:  # else FastAPI applies it
            self.app = _direct_app(self._checked(direct), self.app, self.overridden)
            self.served_directly = True

    def overridden(self) -> bool:
        """Whether the router's dependency overrides are set: a route served directly is
        then served by FastAPI's app, which applies them."""
        provider = self.dependency_overrides_provider
        return provider is not None and bool(getattr(provider, "dependency_overrides", None))

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self._checked(super().get_route_handler())

    def _checked(self, handler: Handler) -> Handler:
        if not self.include_in_schema:
            return handler
        known = frozenset(_query_names(self.dependant))

        async def checked(request: Request) -> Response:
            scope = request.scope
            if scope.get("query_string"):
                unknown = sorted(set(request.query_params) - known)
                if unknown:
                    raise BadRequest(
                        f"{len(unknown)} onbekende parameter(s)",
                        invalid_params=[
                            InvalidParam(name, "onbekende queryparameter") for name in unknown
                        ],
                    )
                _refuse_nul(request.query_params.multi_items())
            if "\x00" in scope["path"]:
                _refuse_nul((name, str(value)) for name, value in request.path_params.items())
            return await handler(request)

        return checked


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _refuse_nul(params: Iterable[tuple[str, str]]) -> None:
    """A NUL character (``%00``) in a path or query parameter: no identifier, code or
    cursor holds one, and PostgreSQL refuses it in text (which was a 500)."""
    names = sorted({name for name, value in params if "\x00" in value})
    if names:
        raise BadRequest(
            f"{len(names)} ongeldige parameter(s)",
            invalid_params=[InvalidParam(name, "bevat een NUL-teken") for name in names],
        )


def _direct_handler(route: APIRoute) -> Handler | None:
    """For a route that takes only the request and dependencies that take only the request
    (``principal: RegistratiesWriter``), and answers with a ``Response`` it makes itself:
    a handler that awaits the dependencies and calls the endpoint. None for any other
    route."""
    dependant = route.dependant
    endpoint = dependant.call
    if (
        endpoint is None
        or not inspect.iscoroutinefunction(endpoint)
        or _takes_more_than_the_request(dependant)
        or not _answers_itself(endpoint)
    ):
        return None
    dependencies = []
    for sub in dependant.dependencies:
        call = sub.call
        if (
            sub.name is None  # a route-level dependency: its value is not passed
            or call is None
            or sub.dependencies
            or _takes_more_than_the_request(sub)
            or not (
                inspect.iscoroutinefunction(call)
                or inspect.iscoroutinefunction(type(call).__call__)  # ScopeBearer
            )
        ):
            return None
        dependencies.append((sub.name, call, sub.request_param_name))
    request_name = dependant.request_param_name

    async def direct(request: Request) -> Response:
        values: dict[str, Any] = {}
        for name, call, takes_request in dependencies:
            values[name] = await (call(**{takes_request: request}) if takes_request else call())
        if request_name:
            values[request_name] = request
        return await endpoint(**values)

    return direct


def _direct_app(handler: Handler, fastapi_app: Any, overridden: Callable[[], bool]) -> Any:
    """The route's ASGI app around the direct handler, instead of FastAPI's: a request, the
    handler, its response. FastAPI's wraps each request in two exit stacks (for
    dependencies with ``yield``, which such a route has none of) and in its own copy of
    the exception handling the app's ``ExceptionMiddleware`` does anyway. FastAPI's
    handler and dependency solving, and this wrapping, cost a request ~200,000
    instructions (callgrind). With dependency overrides set, FastAPI's app serves it."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if overridden():
            await fastapi_app(scope, receive, send)
            return
        response = await handler(Request(scope, receive, send))
        await response(scope, receive, send)

    return app


class DirectRoutes:
    """ASGI middleware just inside the edge: a request for a route that :class:`ServiceRoute`
    serves directly goes straight to that route's app, with the app's exception handlers,
    instead of through Starlette's ``ExceptionMiddleware``, FastAPI's exit stack (for the
    files of form bodies, which such a route does not read) and the router's matching of
    every route in turn: ~41,000 instructions of a single registration's ~841,000
    (callgrind, ADR 0030). Every other request goes on as before.

    A route is taken when its path has no parameters and the router itself would choose
    it for that method and path (no route before it matches them). The table is made at
    the first request, as Starlette builds its middleware. A request with a ``root_path``
    (which the router strips before matching), and one for a route whose dependency
    overrides are set (FastAPI's app serves it, and needs the exit stack), go through the
    router."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: dict[tuple[str, str], ServiceRoute] | None = None
        self._handlers: tuple[Any, Any] = ({}, {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            routes = self._routes
            if routes is None:
                routes = self._routes = self._find(scope["app"])
            route = routes.get((scope["method"], scope["path"]))
            if route is not None and not route.overridden():  # else FastAPI's app, below
                # What the router puts in the scope for a route it matched.
                scope.setdefault("router", scope["app"].router)
                scope["endpoint"] = route.endpoint
                scope["path_params"] = {}
                scope["route"] = route
                scope["starlette.exception_handlers"] = self._handlers
                request = Request(scope, receive, send)
                await wrap_app_handling_exceptions(route.app, request)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _find(self, app: Any) -> dict[tuple[str, str], ServiceRoute]:
        layer: Any = self.app
        while layer is not None and not isinstance(layer, ExceptionMiddleware):
            layer = getattr(layer, "app", None)
        if layer is None:  # not a Starlette app's stack: leave every request to it
            return {}
        self._handlers = (layer._exception_handlers, layer._status_handlers)
        found: dict[tuple[str, str], ServiceRoute] = {}
        for route in app.router.routes:
            if not (isinstance(route, ServiceRoute) and route.served_directly):
                continue
            if route.param_convertors:
                continue
            for method in route.methods or ():
                if _first_match(app.router.routes, method, route.path) is route:
                    found[(method, route.path)] = route
        return found


def _first_match(routes: Iterable[Any], method: str, path: str) -> Any:
    """The route the router would hand a request for ``method`` and ``path``."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "headers": [],  # a Host route reads them
        "query_string": b"",
    }
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
    return None


def _takes_more_than_the_request(dependant: Dependant) -> bool:
    return bool(
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
    )


def _answers_itself(endpoint: Callable[..., Any]) -> bool:
    """The endpoint's return annotation is a ``Response`` (FastAPI passes one on as it is)."""
    try:
        returns = get_type_hints(endpoint).get("return")
    except Exception:  # an annotation that does not resolve: leave it to FastAPI
        return False
    return isinstance(returns, type) and issubclass(returns, Response)


def service_router(**kwargs: Any) -> APIRouter:
    """An ``APIRouter`` whose routes are :class:`ServiceRoute`."""
    return APIRouter(route_class=ServiceRoute, **kwargs)


def unchecked_routes(routers: Iterable[APIRouter]) -> list[str]:
    """Routes of the OpenAPI document that would not refuse an unknown query parameter
    (made by a router that is not a :func:`service_router`)."""
    return [
        f"{sorted(route.methods or ())} {route.path}"
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
        and route.include_in_schema
        and not isinstance(route, ServiceRoute)
    ]


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names
