"""One error base class, rendered as RFC 9457 application/problem+json by one handler."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from verzuimhub_shared.logging import get_logger

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://verzuimhub.nl/problemen/"

log = get_logger(__name__)


@dataclass(frozen=True)
class InvalidParam:
    name: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "reason": self.reason}


class ProblemError(Exception):
    """Base of every expected failure; subclasses set status, title and type slug."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Interne fout"
    slug: ClassVar[str] = "interne-fout"

    def __init__(
        self,
        detail: str | None = None,
        *,
        invalid_params: Sequence[InvalidParam] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.invalid_params = list(invalid_params)
        self.headers = headers or {}

    def body(self, instance: str | None = None) -> dict[str, Any]:
        return problem_body(
            self.status, self.title, self.detail, self.slug, instance, self.invalid_params
        )


class BadRequest(ProblemError):
    status, title, slug = 400, "Ongeldige invoer", "ongeldige-invoer"


class Unauthorized(ProblemError):
    status, title, slug = 401, "Niet geauthenticeerd", "niet-geauthenticeerd"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="verzuimhub"'})


class Forbidden(ProblemError):
    status, title, slug = 403, "Geen toegang", "geen-toegang"


class NotFound(ProblemError):
    status, title, slug = 404, "Niet gevonden", "niet-gevonden"


class Conflict(ProblemError):
    status, title, slug = 409, "Conflict", "conflict"


class PayloadTooLarge(ProblemError):
    status, title, slug = 413, "Verzoek te groot", "verzoek-te-groot"


class RequestTimeout(ProblemError):
    status, title, slug = 408, "Verzoek duurde te lang", "verzoek-te-traag"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Connection": "close"})


class TooManyRequests(ProblemError):
    status, title, slug = 429, "Te veel verzoeken", "te-veel-verzoeken"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class UnprocessableIdempotencyKey(ProblemError):
    status, title, slug = 422, "Idempotency-Key hergebruikt", "idempotency-key-hergebruikt"


class ServiceUnavailable(ProblemError):
    status, title, slug = 503, "Niet beschikbaar", "niet-beschikbaar"


def problem_body(
    status: int,
    title: str,
    detail: str,
    slug: str,
    instance: str | None = None,
    invalid_params: Sequence[InvalidParam] = (),
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if invalid_params:
        body["invalidParams"] = [p.as_dict() for p in invalid_params]
    return body


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=int(body["status"]),
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _loc_name(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_params(errors: Sequence[Any]) -> list[InvalidParam]:
    """Pydantic/FastAPI errors as invalidParams, one per problem, none dropped."""
    params = []
    for error in errors:
        reason = str(error.get("msg", "ongeldig"))
        # Never echo the rejected input: it may be a BSN.
        params.append(InvalidParam(_loc_name(error.get("loc", ())), reason))
    return params


_STATUS_TITLES = {
    404: ("Niet gevonden", "niet-gevonden"),
    405: ("Methode niet toegestaan", "methode-niet-toegestaan"),
    408: ("Verzoek duurde te lang", "verzoek-te-traag"),
    413: ("Verzoek te groot", "verzoek-te-groot"),
    429: ("Te veel verzoeken", "te-veel-verzoeken"),
}


def install_error_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProblemError)
        return problem_response(exc.body(request.url.path), exc.headers)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        params = validation_params(exc.errors())
        body = problem_body(
            400,
            BadRequest.title,
            f"{len(params)} ongeldige parameter(s)",
            BadRequest.slug,
            request.url.path,
            params,
        )
        return problem_response(body)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        title, slug = _STATUS_TITLES.get(exc.status_code, ("Fout", "fout"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        if exc.status_code == 404:
            detail = "Deze resource bestaat niet"
        body = problem_body(exc.status_code, title, detail, slug, request.url.path)
        return problem_response(body, dict(exc.headers or {}))

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled_exception", exc_type=type(exc).__name__, path=request.url.path)
        body = problem_body(
            500, "Interne fout", "Er ging iets mis; probeer het later opnieuw", "interne-fout"
        )
        from verzuimhub_shared.middleware import response_headers_for

        return problem_response(body, response_headers_for(request.url.path))

    async def on_database(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DBAPIError)
        if not exc.connection_invalidated:
            raise exc  # an unexpected failure: the server error handler below
        # The server dropped the connection (a restart, a failover): SQLAlchemy has
        # discarded the pool's connections; a retry gets a new one.
        log.warning("database_connection_lost", path=request.url.path)
        gone = ServiceUnavailable(
            "De database was even niet bereikbaar; probeer het opnieuw",
            headers={"Retry-After": "1"},
        )
        return problem_response(gone.body(request.url.path), gone.headers)

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(DBAPIError, on_database)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
