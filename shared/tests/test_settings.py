from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from verzuimhub_ingest.settings import IngestSettings

GOOD: dict[str, Any] = {
    "env": "production",
    "jwt_issuer": "https://login.example.nl",
    "jwks_url": "https://login.example.nl/jwks.json",
    "database_url": "postgresql+asyncpg://ingest@db/ingest",
    "pseudonym_secret": "a-real-secret",
    "encryption_keys": "k1=a-real-key",
    "encryption_active_key": "k1",
}


def test_production_with_real_secrets_starts() -> None:
    assert IngestSettings(**GOOD).env == "production"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"jwt_issuer": "https://dev.verzuimhub.invalid"}, "development issuer"),
        ({"pseudonym_secret": "dev-only:pseudonym"}, "pseudonym_secret"),
        ({"encryption_keys": "k1=dev-only:x"}, "encryption_keys"),
        ({"database_url": "sqlite+aiosqlite:///x.db"}, "SQLite"),
        ({"jwks_url": None}, "no jwt_public_key_files"),
        (
            {"jwks_url": None, "jwt_public_key_files": [Path("dev-only-signing-key.pub.pem")]},
            "development key",
        ),
    ],
)
def test_production_refuses_development_secrets(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        IngestSettings(**(GOOD | change))


def test_environment_prefix_is_per_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VZH_INGEST_PORT", "9101")
    monkeypatch.setenv("VZH_MELDING_PORT", "9102")
    assert IngestSettings().port == 9101
