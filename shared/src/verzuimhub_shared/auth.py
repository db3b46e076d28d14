"""Bearer-token verification (RS256 JWTs, python-jose) and the caller's organisation.

``algorithms`` is pinned to RS256; ``aud``, ``iss`` and ``exp`` are required and checked.
Keys come from PEM files or a JWKS document (fetched with httpx, cached). Verified tokens
are cached until shortly before they expire, so a busy client costs one RSA check.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from jose import jwk, jwt
from jose.exceptions import JOSEError

from verzuimhub_shared.errors import Forbidden, Unauthorized

ALGORITHMS = ["RS256"]

#: Scopes per action. Roles in development tokens map onto these.
SCOPE_REGISTRATIES_WRITE = "registraties:schrijven"
SCOPE_REGISTRATIES_READ = "registraties:lezen"
SCOPE_VRIJSTELLINGEN_WRITE = "vrijstellingen:schrijven"
SCOPE_MELDINGEN_SCHOOL = "meldingen:school"
SCOPE_MELDINGEN_GEMEENTE = "meldingen:gemeente"
SCOPE_AGGREGATEN_READ = "aggregaten:lezen"
SCOPE_FEED_READ = "feed:lezen"
SCOPE_ADMIN = "beheer"

ROLE_SCOPES: dict[str, list[str]] = {
    "school": [SCOPE_REGISTRATIES_WRITE, SCOPE_REGISTRATIES_READ, SCOPE_MELDINGEN_SCHOOL],
    "gemeente": [SCOPE_VRIJSTELLINGEN_WRITE, SCOPE_MELDINGEN_GEMEENTE],
    "swv": [SCOPE_AGGREGATEN_READ],
    "consumer": [SCOPE_FEED_READ],
    "admin": [SCOPE_ADMIN],
}


@dataclass(frozen=True)
class Principal:
    """Who is calling, and for which organisation(s)."""

    subject: str
    scopes: frozenset[str]
    brins: frozenset[str] = frozenset()
    gemeente: str | None = None
    swv: str | None = None
    consumer: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @cached_property  # in the rate limit's key, every request (a token may name many BRINs)
    def organisation(self) -> str:
        if self.brins:
            return "brin:" + ",".join(sorted(self.brins))
        if self.gemeente:
            return "gemeente:" + self.gemeente
        if self.swv:
            return "swv:" + self.swv
        if self.consumer:
            return "consumer:" + self.consumer
        return "beheer" if SCOPE_ADMIN in self.scopes else "onbekend"

    @cached_property
    def rate_key(self) -> str:
        """Whom the edge's rate limit counts a request against."""
        return f"token:{self.organisation}|{self.subject}"

    def require_brin(self, brin: str) -> None:
        if brin not in self.brins:
            raise Forbidden(f"Dit token geeft geen toegang tot BRIN {brin}")

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        scope = claims.get("scope", "")
        scopes = frozenset(scope.split() if isinstance(scope, str) else scope)
        brin = claims.get("brin", [])
        brins = frozenset([brin] if isinstance(brin, str) else brin)
        return cls(
            subject=str(claims.get("sub", "")),
            scopes=scopes,
            brins=brins,
            gemeente=claims.get("gemeente"),
            swv=claims.get("swv"),
            consumer=claims.get("consumer"),
            claims=claims,
        )


KeyLoader = Callable[[], Awaitable[dict[str, Any]]]


class TokenVerifier:
    """Verifies bearer tokens against PEM public keys or a JWKS document."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        public_key_files: list[Path] | None = None,
        jwks_url: str | None = None,
        jwks_cache_seconds: int = 300,
        http_client: httpx.AsyncClient | None = None,
        cache_size: int = 4096,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self._pem_keys = [p.read_text() for p in public_key_files or []]
        self._jwks_url = jwks_url
        self._jwks_cache_seconds = jwks_cache_seconds
        self._jwks: dict[str, Any] | None = None
        self._jwks_fetched = 0.0
        self._http = http_client
        self._cache: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._cache_size = cache_size

    async def _keys(self) -> list[Any]:
        keys: list[Any] = list(self._pem_keys)
        if self._jwks_url:
            now = time.monotonic()
            if self._jwks is None or now - self._jwks_fetched > self._jwks_cache_seconds:
                client = self._http or httpx.AsyncClient(timeout=5.0)
                try:
                    response = await client.get(self._jwks_url)
                    response.raise_for_status()
                    self._jwks = response.json()
                    self._jwks_fetched = now
                finally:
                    if self._http is None:
                        await client.aclose()
            keys.extend((self._jwks or {}).get("keys", []))
        return keys

    async def verify(self, token: str) -> Principal:
        cached = self._cache.get(token)
        now = time.time()
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(token)
            return cached[1]
        try:
            header = jwt.get_unverified_header(token)
        except JOSEError as exc:
            raise Unauthorized("Token is onleesbaar") from exc
        if header.get("alg") not in ALGORITHMS:
            raise Unauthorized("Token-algoritme niet toegestaan")
        keys = await self._keys()
        kid = header.get("kid")
        candidates = [
            k for k in keys if not isinstance(k, dict) or kid is None or k.get("kid") == kid
        ]
        claims: dict[str, Any] | None = None
        for key in candidates:
            try:
                material = jwk.construct(key, "RS256") if isinstance(key, dict) else key
                claims = jwt.decode(
                    token,
                    material,
                    algorithms=ALGORITHMS,
                    audience=self.audience,
                    issuer=self.issuer,
                    options={"require_aud": True, "require_iss": True, "require_exp": True},
                )
                break
            except JOSEError:
                continue
        if claims is None:
            raise Unauthorized("Token ongeldig, verlopen of niet voor deze dienst")
        principal = Principal.from_claims(claims)
        # Cache until 5 s before expiry, never beyond.
        self._cache[token] = (float(claims["exp"]) - 5, principal)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return principal


#: The ASGI scope's key for the Principal of a request's bearer token, once the edge has
#: verified it (for the rate limit): the route's ``ScopeBearer`` then need not again.
VERIFIED_PRINCIPAL = "verzuimhub.principal"


class ScopeBearer(SecurityBase):
    """A FastAPI dependency that is also the OpenAPI document's bearer scheme: a verified
    token carrying ``scope`` yields its Principal.

    One dependency instead of a scope check on top of ``HTTPBearer``: that level of
    FastAPI's dependency solving cost a request ~85,000 instructions (~5 % of a single
    registration's own work, counted with callgrind), and FastAPI documents a security
    scheme for any dependency that is a ``SecurityBase``."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.model = HTTPBearerModel(bearerFormat="JWT")
        self.scheme_name = "bearer"

    async def __call__(self, request: Request) -> Principal:
        principal: Principal | None = request.scope.get(VERIFIED_PRINCIPAL)
        if principal is None:  # else the edge verified this request's token (rate limit)
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if not token or scheme.lower() != "bearer":
                raise Unauthorized("Bearer-token ontbreekt")
            verifier: TokenVerifier = request.app.state.token_verifier
            principal = await verifier.verify(token)
        if self.scope not in principal.scopes:
            raise Forbidden(f"Scope {self.scope} ontbreekt")
        return principal


def require_scope(scope: str) -> ScopeBearer:
    """A FastAPI dependency: a verified token carrying ``scope`` yields its Principal."""
    return ScopeBearer(scope)


# Route-signature aliases, one per scope: ``principal: FeedReader``.
RegistratiesWriter = Annotated[Principal, Depends(require_scope(SCOPE_REGISTRATIES_WRITE))]
RegistratiesReader = Annotated[Principal, Depends(require_scope(SCOPE_REGISTRATIES_READ))]
VrijstellingenWriter = Annotated[Principal, Depends(require_scope(SCOPE_VRIJSTELLINGEN_WRITE))]
SchoolMeldingen = Annotated[Principal, Depends(require_scope(SCOPE_MELDINGEN_SCHOOL))]
GemeenteMeldingen = Annotated[Principal, Depends(require_scope(SCOPE_MELDINGEN_GEMEENTE))]
AggregatenReader = Annotated[Principal, Depends(require_scope(SCOPE_AGGREGATEN_READ))]
FeedReader = Annotated[Principal, Depends(require_scope(SCOPE_FEED_READ))]
Admin = Annotated[Principal, Depends(require_scope(SCOPE_ADMIN))]
