from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from verzuimhub_shared.settings import ServiceSettings


class MeldingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VZH_MELDING_", extra="ignore")

    port: int = Field(8002, description="Port the HTTP server listens on.")
    database_url: str = Field(
        "sqlite+aiosqlite:///./.verzuimhub/melding.db",
        description="SQLAlchemy async URL of melding's own database.",
    )
    ingest_url: str = Field("http://127.0.0.1:8001", description="Base URL of ingest.")
    duo_url: str = Field("http://127.0.0.1:8004", description="Base URL of DUO (ROD).")
    feed_token_file: Path | None = Field(
        None, description="File holding the consumer token for ingest's feed (re-read)."
    )
