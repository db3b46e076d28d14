"""JWKS keys (fetched with httpx, cached) and trace context on every outgoing call."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from verzuimhub_shared import devkeys
from verzuimhub_shared.auth import TokenVerifier
from verzuimhub_shared.errors import Unauthorized
from verzuimhub_shared.http import http_client
from verzuimhub_shared.tracing import current_trace, new_trace


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _jwks(public_pem: Path, kid: str) -> dict[str, object]:
    key = serialization.load_pem_public_key(public_pem.read_bytes())
    assert isinstance(key, rsa.RSAPublicKey)
    numbers = key.public_numbers()
    return {
        "keys": [
            {
                "kty": "RSA",
                "kid": kid,
                "alg": "RS256",
                "use": "sig",
                "n": _b64(numbers.n),
                "e": _b64(numbers.e),
            }
        ]
    }


async def test_tokens_verify_against_a_cached_jwks(tmp_path: Path) -> None:
    private, public = devkeys.ensure_keypair(tmp_path)
    fetches = []

    def handler(request: httpx.Request) -> httpx.Response:
        fetches.append(request.url)
        return httpx.Response(200, json=_jwks(public, devkeys.KID))

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        verifier = TokenVerifier(
            issuer="https://dev.verzuimhub.invalid",
            audience="verzuimhub",
            jwks_url="https://login.example/jwks.json",
            http_client=client,
        )
        for role in ("admin", "swv"):
            claims = devkeys.claims_for(role, swv="PO-99-01" if role == "swv" else None)
            principal = await verifier.verify(devkeys.sign(claims, private))
            assert principal.subject == claims["sub"]
        other_private, _ = devkeys.ensure_keypair(tmp_path / "other")
        with pytest.raises(Unauthorized):
            await verifier.verify(devkeys.sign(devkeys.claims_for("admin"), other_private))
    assert len(fetches) == 1  # fetched once, then cached


async def test_outgoing_calls_carry_the_trace_and_request_id() -> None:
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(204)

    incoming = new_trace("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "req-42")
    token = current_trace.set(incoming)
    try:
        async with http_client(transport=httpx.MockTransport(handler)) as client:
            await client.get("https://duo.example/v1/x")
    finally:
        current_trace.reset(token)
    [headers] = seen
    _, trace_id, span_id, _ = headers["traceparent"].split("-")
    assert trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert span_id != "b7ad6b7169203331"  # a new span of the same trace
    assert headers["x-request-id"] == "req-42"
