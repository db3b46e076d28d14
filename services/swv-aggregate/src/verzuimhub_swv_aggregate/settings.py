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
    feed_batch_size: int = Field(
        1000, ge=1, le=5000, description="Events fetched and applied per feed transaction."
    )
    disclosure_threshold: int = Field(
        10, ge=3, description="Smallest published count k; smaller counts are suppressed."
    )
    disclosure_protection: int = Field(
        5, ge=1, description="Narrowest interval an attacker may derive for a hidden count."
    )
    dp_epsilon: float | None = Field(
        None,
        gt=0,
        description="Differential privacy: OpenDP Laplace noise (scale 1/ε) on each published "
        "count before suppression; needs the [dp] extra; off when unset.",
    )
    rounding_base: int | None = Field(
        None, description="Round published counts to this base (e.g. 5); unset is exact."
    )
    tier2_percentage: int = Field(
        5, ge=1, le=100, description="Attendance tier 2 from this % of scheduled time missed."
    )
    tier3_percentage: int = Field(
        10, ge=1, le=100, description="Attendance tier 3 from this % of scheduled time missed."
    )
    minutes_per_lesdag_po: int = Field(
        300, ge=1, description="Scheduled minutes per lesdag for po, sbo and so (tiers)."
    )
    minutes_per_lesdag_vo: int = Field(
        330, ge=1, description="Scheduled minutes per lesdag for vo, vso and mbo (tiers)."
    )
    refdata_dir: Path | None = Field(
        None, description="Directory with reference data; the shipped sample when unset."
    )
