from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from verzuimhub_shared.settings import ServiceSettings


class SwvSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VZH_SWV_", extra="ignore")

    port: int = Field(8003, description="Port the HTTP server listens on.")
    database_url: str = Field(
        "sqlite+aiosqlite:///./.verzuimhub/swv-aggregate.db",
        description="SQLAlchemy async URL of swv-aggregate's own database.",
    )
    ingest_url: str = Field("http://127.0.0.1:8001", description="Base URL of ingest.")
    melding_url: str = Field("http://127.0.0.1:8002", description="Base URL of melding.")
    feed_token_file: Path | None = Field(
        None,
        description="File holding the consumer token for the ingest and melding feeds (re-read).",
    )
