"""Routes of the SWV dashboard (no ``from __future__ import annotations``: FastAPI reads them).

- ``GET /dashboard``: the page shell. No token needed: it holds no figures. Strict
  Content-Security-Policy (same origin only, no inline script or style, Trusted Types).
- ``GET /dashboard/static/{bestand}``: the page's own script, style sheet and icon.
- ``GET``/``POST /dashboard/ontwikkel-aanmelding``: development sign-in. Only answers when
  the service runs with ``env=development`` *and* its token key is the development key pair
  of ``verzuimhub up`` (private key next to the public one); otherwise it answers exactly like
  a route that does not exist.

None of these routes are part of the ``/v1`` API, so none appear in the OpenAPI document.
"""

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.exceptions import HTTPException

from verzuimhub_shared import devkeys
from verzuimhub_shared.errors import BadRequest, InvalidParam, NotFound
from verzuimhub_shared.settings import ServiceSettings
from verzuimhub_swv_aggregate.service import AggregateContext

router = APIRouter(include_in_schema=False)

#: Tokens from the development sign-in last a working day, like those `verzuimhub up` prints.
DEV_TOKEN_TTL = 8 * 3600

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}

#: The only files served under /dashboard/static, with their media types.
ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
_DEV_MARKER = "{{ontwikkel-aanmelding}}"


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def _read(name: str) -> bytes:
    return (resources.files(__package__ or __name__) / "assets" / name).read_bytes()


@cache
def _asset(name: str) -> Asset:
    body = _read(name)
    return Asset(body, ASSETS[name], '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


@cache
def _page() -> str:
    return _read("index.html").decode("utf-8")


def dev_signing_key(settings: ServiceSettings) -> Path | None:
    """The development private key, when this service may offer the development sign-in."""
    if settings.env != "development" or not settings.jwt_public_key_files:
        return None
    public = settings.jwt_public_key_files[0]
    if public.name != devkeys.PUBLIC_NAME:
        return None
    private = public.parent / devkeys.PRIVATE_NAME
    return private if private.is_file() else None


def _require_dev_key(request: Request) -> Path:
    key = dev_signing_key(request.app.state.settings)
    if key is None:
        # The same answer as any path that does not exist: nothing tells it is there.
        raise HTTPException(status_code=404)
    return key


@router.get("/dashboard")
async def dashboard_page(request: Request) -> Response:
    dev = dev_signing_key(request.app.state.settings) is not None
    html = _page().replace(_DEV_MARKER, "ja" if dev else "nee")
    return Response(html, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/dashboard/static/{bestand}")
async def dashboard_asset(
    request: Request, bestand: Annotated[str, PathParam(max_length=40)]
) -> Response:
    if bestand not in ASSETS:
        raise NotFound("Dit bestand bestaat niet")
    asset = _asset(bestand)
    headers = {
        # Revalidate every time (cheap: an ETag); the files change with each release.
        "Cache-Control": "no-cache",
        "ETag": asset.etag,
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


class _DevModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class OntwikkelRegio(_DevModel):
    code: str
    naam: str


class OntwikkelRegios(_DevModel):
    regios: list[OntwikkelRegio]


class OntwikkelAanmelding(_DevModel):
    swv_code: str = Field(max_length=16)


class OntwikkelToken(_DevModel):
    token: str
    swv_code: str
    geldig_seconden: int


@router.get("/dashboard/ontwikkel-aanmelding")
async def dev_regions(request: Request) -> Response:
    _require_dev_key(request)
    context: AggregateContext = request.app.state.aggregate
    regios = [OntwikkelRegio(code=s.code, naam=s.name) for s in context.refdata.swvs.values()]
    body = OntwikkelRegios(regios=sorted(regios, key=lambda r: r.code))
    return Response(body.model_dump_json(by_alias=True), media_type="application/json")


@router.post("/dashboard/ontwikkel-aanmelding")
async def dev_sign_in(request: Request, aanmelding: OntwikkelAanmelding) -> Response:
    """A development SWV token for one region of the reference data (never in production)."""
    key = _require_dev_key(request)
    settings: ServiceSettings = request.app.state.settings
    context: AggregateContext = request.app.state.aggregate
    code = aanmelding.swv_code.upper()
    if code not in context.refdata.swvs:
        raise BadRequest(
            "Onbekende regio",
            invalid_params=[InvalidParam("swvCode", "geen samenwerkingsverband")],
        )
    claims = devkeys.claims_for(
        "swv",
        swv=code,
        ttl=DEV_TOKEN_TTL,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        subject=f"dev-dashboard-{code.lower()}",
    )
    body = OntwikkelToken(
        token=devkeys.sign(claims, key), swv_code=code, geldig_seconden=DEV_TOKEN_TTL
    )
    return Response(body.model_dump_json(by_alias=True), media_type="application/json")
