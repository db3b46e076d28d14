from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from verzuimhub_shared.settings import DEV_SECRET_MARKER, ServiceSettings

DEV_PSEUDONYM_SECRET = f"{DEV_SECRET_MARKER}:pseudonym"
DEV_ENCRYPTION_KEYS = f"dev1={DEV_SECRET_MARKER}:encryption"


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VZH_INGEST_", extra="ignore")

    port: int = Field(8001, description="Port the HTTP server listens on.")
    database_url: str = Field(
        "sqlite+aiosqlite:///./.verzuimhub/ingest.db",
        description="SQLAlchemy async URL of ingest's own database.",
    )
    pseudonym_secret: str = Field(
        DEV_PSEUDONYM_SECRET, description="Secret for the keyed HMAC pseudonyms of PGNs."
    )
    encryption_keys: str = Field(
        DEV_ENCRYPTION_KEYS,
        description="AES-GCM keys for identities and notes at rest: kid=secret,kid=secret "
        "(a key id holds no '.').",
    )
    encryption_active_key: str = Field("dev1", description="Key id new data is sealed with.")
    catalogue_file: Path | None = Field(
        None, description="Category catalogue JSON; the shipped catalogue when unset."
    )
    refdata_dir: Path | None = Field(
        None, description="Directory with reference data; the shipped sample when unset."
    )

    def production_problems(self) -> list[str]:
        problems = []
        if DEV_SECRET_MARKER in self.pseudonym_secret:
            problems.append("pseudonym_secret is a development secret")
        if DEV_SECRET_MARKER in self.encryption_keys:
            problems.append("encryption_keys contain a development key")
        return problems
