"""The dashboard's routes through ASGI: the page and its files, their headers, that nothing
points to another address, and the development sign-in (present only in development)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jose import jwt

from verzuimhub_shared import devkeys
from verzuimhub_swv_aggregate.dashboard.router import ASSETS, dev_signing_key
from verzuimhub_swv_aggregate.settings import SwvSettings

pytestmark = pytest.mark.postgres

#: XML namespace names are identifiers, never fetched.
NAMESPACES = {"http://www.w3.org/2000/svg"}
URL = re.compile(r"""https?://[^\s"'<>)`]+""", re.IGNORECASE)


async def _served_files(client: Any) -> dict[str, str]:
    files = {"/dashboard": (await client.get("/dashboard")).text}
    for name in ASSETS:
        files[f"/dashboard/static/{name}"] = (await client.get(f"/dashboard/static/{name}")).text
    return files


async def test_page_and_files_with_their_media_types(app_client: Callable[..., Any]) -> None:
    async with app_client("swv-aggregate") as client:
        page = await client.get("/dashboard")
        assets = {name: await client.get(f"/dashboard/static/{name}") for name in ASSETS}
        unknown = await client.get("/dashboard/static/geheim.py")
        slash = await client.get("/dashboard/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<html lang="nl">' in page.text
    assert 'data-ontwikkel-aanmelding="nee"' in page.text  # env=test: no development sign-in
    for name, response in assets.items():
        assert response.status_code == 200, name
        assert response.headers["content-type"] == ASSETS[name]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["etag"]
    assert assets["dashboard.js"].headers["content-type"].startswith("text/javascript")
    assert assets["dashboard.css"].headers["content-type"].startswith("text/css")
    assert unknown.status_code == 404
    assert slash.status_code == 404  # no trailing slash, like every route


async def test_page_headers_are_strict(app_client: Callable[..., Any]) -> None:
    async with app_client("swv-aggregate") as client:
        page = await client.get("/dashboard")
    csp = {
        part.split()[0]: part.split()[1:]
        for part in page.headers["content-security-policy"].split("; ")
    }
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in page.headers["content-security-policy"]
    assert "'unsafe-eval'" not in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"


async def test_assets_revalidate_with_their_etag(app_client: Callable[..., Any]) -> None:
    async with app_client("swv-aggregate") as client:
        first = await client.get("/dashboard/static/dashboard.js")
        again = await client.get(
            "/dashboard/static/dashboard.js", headers={"If-None-Match": first.headers["etag"]}
        )
    assert first.headers["cache-control"] == "no-cache"
    assert again.status_code == 304
    assert again.content == b""


async def test_nothing_points_to_another_address(app_client: Callable[..., Any]) -> None:
    async with app_client("swv-aggregate") as client:
        files = await _served_files(client)
    for path, text in files.items():
        outside = set(URL.findall(text)) - NAMESPACES
        assert not outside, f"{path} refers to {outside}"
        assert not re.search(r"""["'`(]\s*//[a-z0-9]""", text, re.IGNORECASE), path
    html = files["/dashboard"]
    # Every src and href is a path of this app (or a fragment); no inline script or style.
    for ref in re.findall(r"""(?:src|href)="([^"]*)\"""", html):
        assert ref.startswith(("/dashboard/static/", "#")), ref
    assert all(" src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    assert "<style" not in html
    assert " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)
    css = files["/dashboard/static/dashboard.css"]
    assert "@import" not in css
    assert "url(" not in css
    js = files["/dashboard/static/dashboard.js"]
    assert ".innerHTML" not in js
    assert "insertAdjacentHTML" not in js
    assert "eval(" not in js
    for target in re.findall(r"""fetch\(\s*['"`]([^'"`]*)""", js):
        assert target.startswith("/"), target


async def test_dashboard_is_not_in_the_api_document(app_client: Callable[..., Any]) -> None:
    async with app_client("swv-aggregate") as client:
        document = (await client.get("/v1/openapi.json")).json()
    assert not [p for p in document["paths"] if p.startswith("/dashboard")]


# --- development sign-in -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_no_development_sign_in_outside_development(
    app_client: Callable[..., Any], method: str
) -> None:
    async with app_client("swv-aggregate") as client:
        answer = await client.request(
            method, "/dashboard/ontwikkel-aanmelding", json={"swvCode": "PO-99-01"}
        )
        missing = await client.request(method, "/dashboard/bestaat-niet")
    assert answer.status_code == 404
    # Exactly the answer of a path that does not exist: nothing tells the route is there.
    expected = missing.json() | {"instance": "/dashboard/ontwikkel-aanmelding"}
    assert answer.json() == expected


async def test_no_development_sign_in_without_the_development_key(
    app_client: Callable[..., Any], key_dir: Path, tmp_path: Path
) -> None:
    other = tmp_path / "issuer-public-key.pem"
    shutil.copy(key_dir / devkeys.PUBLIC_NAME, other)
    async with app_client(
        "swv-aggregate", env="development", jwt_public_key_files=[other]
    ) as client:
        page = await client.get("/dashboard")
        answer = await client.get("/dashboard/ontwikkel-aanmelding")
    assert 'data-ontwikkel-aanmelding="nee"' in page.text
    assert answer.status_code == 404


def test_never_in_production(key_dir: Path) -> None:
    public = [key_dir / devkeys.PUBLIC_NAME]
    for env in ("production", "test"):
        settings = SwvSettings.model_construct(env=env, jwt_public_key_files=public)
        assert dev_signing_key(settings) is None
    development = SwvSettings.model_construct(env="development", jwt_public_key_files=public)
    assert dev_signing_key(development) == key_dir / devkeys.PRIVATE_NAME


async def test_development_sign_in_gives_a_working_swv_token(
    clean_dbs: Any, app_client: Callable[..., Any]
) -> None:
    async with app_client("swv-aggregate", env="development") as client:
        page = await client.get("/dashboard")
        regions = await client.get("/dashboard/ontwikkel-aanmelding")
        signed = await client.post("/dashboard/ontwikkel-aanmelding", json={"swvCode": "po-99-01"})
        token = signed.json()["token"]
        figures = await client.get(
            "/v1/regios/PO-99-01/cijfers",
            params={"periode": "2025-2026"},
            headers={"Authorization": f"Bearer {token}"},
        )
        other = await client.get(
            "/v1/regios/PO-99-02/cijfers",
            params={"periode": "2025-2026"},
            headers={"Authorization": f"Bearer {token}"},
        )
        unknown = await client.post("/dashboard/ontwikkel-aanmelding", json={"swvCode": "XX-00-00"})
        malformed = await client.post("/dashboard/ontwikkel-aanmelding", content=b"{")
    assert 'data-ontwikkel-aanmelding="ja"' in page.text
    assert {"code": "PO-99-01", "naam": regions.json()["regios"][0]["naam"]} in regions.json()[
        "regios"
    ]
    assert signed.status_code == 200
    assert signed.headers["cache-control"] == "no-store"
    claims = jwt.get_unverified_claims(token)
    assert claims["swv"] == "PO-99-01"
    assert claims["scope"] == "aggregaten:lezen"  # an SWV token, nothing more
    assert signed.json()["geldigSeconden"] == claims["exp"] - claims["iat"]
    assert figures.status_code == 200
    assert other.status_code == 404
    assert unknown.status_code == 400
    assert [p["name"] for p in unknown.json()["invalidParams"]] == ["swvCode"]
    assert malformed.status_code == 400
