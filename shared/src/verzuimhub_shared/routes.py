"""The routes an app actually serves, with the scope each demands: for the authorisation
matrix, the fuzzer and anyone who wants to know what a service exposes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from verzuimhub_shared.auth import ScopeBearer


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    #: The scope the route's bearer-token dependency demands; None for a public route.
    scope: str | None
    in_schema: bool
    operation_id: str | None


def _scope_of(dependant: Any) -> str | None:
    if dependant is None:
        return None
    for dep in dependant.dependencies:
        if isinstance(dep.call, ScopeBearer):
            return dep.call.scope
        found = _scope_of(dep)
        if found is not None:
            return found
    return None


def _flatten(routes: Any) -> Iterator[Any]:
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:  # FastAPI's lazily included routers
            yield from contexts()
        else:
            yield route


def iter_routes(app: FastAPI) -> list[RouteInfo]:
    """Every (method, path) the app answers, HEAD and OPTIONS left out."""
    found = []
    for route in _flatten(app.routes):
        path = getattr(route, "path", None)
        methods = getattr(route, "methods", None) or set()
        if not path or not methods:
            continue
        for method in sorted(methods - {"HEAD", "OPTIONS"}):
            found.append(
                RouteInfo(
                    method=method,
                    path=str(path),
                    scope=_scope_of(getattr(route, "dependant", None)),
                    in_schema=bool(getattr(route, "include_in_schema", True)),
                    operation_id=getattr(route, "operation_id", None),
                )
            )
    return sorted(found, key=lambda r: (r.path, r.method))
