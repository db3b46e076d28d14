"""Request bodies validated with a context (catalogue, reference data, today), so that a
400 lists *every* problem at once, named by its field, without echoing the value."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from verzuimhub_shared.errors import BadRequest, InvalidParam, validation_params

M = TypeVar("M", bound=BaseModel)


async def json_body(request: Request) -> tuple[Any, bytes]:
    raw = await request.body()
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
    their query parameters would be refused: the services include routers without."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not self.include_in_schema:
            return handler
        known = frozenset(_query_names(self.dependant))

        async def checked(request: Request) -> Response:
            if request.scope.get("query_string"):
                unknown = sorted(set(request.query_params) - known)
                if unknown:
                    raise BadRequest(
                        f"{len(unknown)} onbekende parameter(s)",
                        invalid_params=[
                            InvalidParam(name, "onbekende queryparameter") for name in unknown
                        ],
                    )
            return await handler(request)

        return checked


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
