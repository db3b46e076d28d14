"""Request bodies validated with a context (catalogue, reference data, today), so that a
400 lists *every* problem at once, named by its field, without echoing the value."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from fastapi import Request, Response
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


async def known_query_parameters(request: Request) -> None:
    """Refuse a query parameter the route does not take (400, naming it), as a body's unknown
    field is refused: a misspelt filter (``?stauts=concept``) would otherwise be ignored and
    answer with everything. Every service router gets this as a dependency; it holds the
    API to its OpenAPI document, so routes outside the document (the dashboard's page and
    files, opened from links that may carry anything) are not checked (ADR 0011)."""
    if not request.scope.get("query_string"):
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema:
        return
    known: frozenset[str] | None = getattr(route, _KNOWN, None)
    if known is None:
        known = frozenset(_query_names(route.dependant))
        setattr(route, _KNOWN, known)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise BadRequest(
            f"{len(unknown)} onbekende parameter(s)",
            invalid_params=[InvalidParam(name, "onbekende queryparameter") for name in unknown],
        )


_KNOWN = "_verzuimhub_query_names"


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names
