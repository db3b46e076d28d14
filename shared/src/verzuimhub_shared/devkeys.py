"""Development keys and tokens: a key pair made on first use in the data directory.

Never for production: the key file names carry the development marker, which production
settings refuse, and tokens are issued by the development issuer.
"""

from __future__ import annotations

import base64
import os
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt

from verzuimhub_shared.auth import ROLE_SCOPES
from verzuimhub_shared.settings import DEV_ISSUER, DEV_SECRET_MARKER

PRIVATE_NAME = f"{DEV_SECRET_MARKER}-signing-key.pem"
PUBLIC_NAME = f"{DEV_SECRET_MARKER}-signing-key.pub.pem"
KID = "dev-1"

#: Every service accepts this audience; production configures its own.
AUDIENCE = "verzuimhub"


def ensure_keypair(directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    private, public = directory / PRIVATE_NAME, directory / PUBLIC_NAME
    if not private.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = private.with_suffix(".tmp")
        tmp.write_bytes(pem)
        os.chmod(tmp, 0o600)
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        tmp.replace(private)
    return private, public


def ensure_secret(directory: Path, name: str, nbytes: int = 32) -> str:
    """A random development secret kept in the data dir, marked as development-only."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{DEV_SECRET_MARKER}-{name}.key"
    if not path.exists():
        raw = base64.urlsafe_b64encode(secrets.token_bytes(nbytes)).decode()
        path.write_text(f"{DEV_SECRET_MARKER}:{raw}")
        os.chmod(path, 0o600)
    return path.read_text().strip()


def claims_for(
    role: str,
    *,
    brins: list[str] | None = None,
    gemeente: str | None = None,
    swv: str | None = None,
    consumer: str | None = None,
    ttl: int = 3600,
    issuer: str = DEV_ISSUER,
    audience: str | list[str] = AUDIENCE,
    subject: str | None = None,
) -> dict[str, Any]:
    if role not in ROLE_SCOPES:
        raise ValueError(f"unknown role {role!r}; choose from {sorted(ROLE_SCOPES)}")
    required = {"school": brins, "gemeente": gemeente, "swv": swv, "consumer": consumer}
    if role in required and not required[role]:
        raise ValueError(f"role {role} needs its organisation claim")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject or f"dev-{role}-{uuid.uuid4().hex[:8]}",
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
        "scope": " ".join(ROLE_SCOPES[role]),
        "role": role,
    }
    if brins:
        claims["brin"] = list(brins)
    if gemeente:
        claims["gemeente"] = gemeente
    if swv:
        claims["swv"] = swv
    if consumer:
        claims["consumer"] = consumer
    return claims


def sign(claims: dict[str, Any], private_key_file: Path, kid: str = KID) -> str:
    return str(
        jwt.encode(claims, private_key_file.read_text(), algorithm="RS256", headers={"kid": kid})
    )


def mint(role: str, key_dir: Path, **kwargs: Any) -> str:
    private, _ = ensure_keypair(key_dir)
    return sign(claims_for(role, **kwargs), private)
