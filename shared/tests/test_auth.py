"""Bearer-token attacks against a real service app: every one answers 401 problem+json."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from verzuimhub_shared import devkeys

ROUTE = "/v1/feed-cursors"  # melding, admin scope


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())


@pytest.fixture
def admin_claims() -> dict[str, Any]:
    return devkeys.claims_for("admin")


async def _status(app_client: Callable[..., Any], token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with app_client("melding") as client:
        response = await client.get(ROUTE, headers=headers)
    return response.status_code, response


async def test_valid_admin_token_is_accepted(
    app_client: Callable[..., Any], mint: Callable[..., str]
) -> None:
    status, _ = await _status(app_client, mint("admin"))
    assert status == 200


async def test_no_token_is_401_problem(app_client: Callable[..., Any]) -> None:
    status, response = await _status(app_client, None)
    assert status == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401


async def test_alg_none_is_rejected(
    app_client: Callable[..., Any], admin_claims: dict[str, Any]
) -> None:
    token = _unsigned({"alg": "none", "typ": "JWT"}, admin_claims) + "."
    status, _ = await _status(app_client, token)
    assert status == 401


async def test_hs256_signed_with_the_public_key_is_rejected(
    app_client: Callable[..., Any], admin_claims: dict[str, Any], key_dir: Path
) -> None:
    public_pem = (key_dir / devkeys.PUBLIC_NAME).read_bytes()
    signing_input = _unsigned({"alg": "HS256", "typ": "JWT", "kid": devkeys.KID}, admin_claims)
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    status, _ = await _status(app_client, signing_input + "." + _b64(signature))
    assert status == 401


async def test_token_from_another_key_is_rejected(
    app_client: Callable[..., Any], tmp_path: Path, admin_claims: dict[str, Any]
) -> None:
    other_private, _ = devkeys.ensure_keypair(tmp_path)
    status, _ = await _status(app_client, devkeys.sign(admin_claims, other_private))
    assert status == 401


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"exp": int(time.time()) - 60}, "expired"),
        ({"aud": "another-service"}, "wrong audience"),
        ({"iss": "https://evil.example"}, "wrong issuer"),
        ({"exp": None}, "no exp"),
        ({"aud": None}, "no aud"),
        ({"iss": None}, "no iss"),
    ],
)
async def test_bad_claims_are_rejected(
    app_client: Callable[..., Any],
    key_dir: Path,
    admin_claims: dict[str, Any],
    change: dict[str, Any],
    reason: str,
) -> None:
    claims = {**admin_claims, **change}
    claims = {k: v for k, v in claims.items() if v is not None}
    private = key_dir / devkeys.PRIVATE_NAME
    status, response = await _status(app_client, devkeys.sign(claims, private))
    assert status == 401, reason
    assert response.json()["title"]


async def test_tampered_payload_is_rejected(
    app_client: Callable[..., Any], mint: Callable[..., str]
) -> None:
    header, _, signature = mint("swv", swv="PO-99-01").split(".")
    forged = _b64(json.dumps(devkeys.claims_for("admin")).encode())
    status, _ = await _status(app_client, f"{header}.{forged}.{signature}")
    assert status == 401


async def test_valid_token_without_the_scope_is_403(
    app_client: Callable[..., Any], mint: Callable[..., str]
) -> None:
    status, response = await _status(app_client, mint("school", brins=["12AB"]))
    assert status == 403
    assert response.headers["content-type"] == "application/problem+json"


async def test_garbage_token_is_401(app_client: Callable[..., Any]) -> None:
    status, _ = await _status(app_client, "not-a-jwt")
    assert status == 401


@pytest.mark.parametrize("rate_limit", [600, 0])
async def test_a_token_is_verified_once_per_request(
    app_client: Callable[..., Any],
    mint: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    rate_limit: int,
) -> None:
    """The edge verifies it for the rate limit and hands the route its Principal; without
    a rate limit, the route verifies it."""
    from verzuimhub_shared.auth import TokenVerifier

    verified: list[str] = []
    real = TokenVerifier.verify

    async def counting(self: TokenVerifier, token: str) -> Any:
        verified.append(token)
        return await real(self, token)

    monkeypatch.setattr(TokenVerifier, "verify", counting)
    token = mint("admin")
    async with app_client("melding", rate_limit_per_minute=rate_limit) as client:
        response = await client.get(ROUTE, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert verified == [token]
