from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from verzuimhub_shared.settings import DEV_SECRET_MARKER, ServiceSettings


class MeldingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VZH_MELDING_", extra="ignore")

    port: int = Field(8002, description="Port the HTTP server listens on.")
    database_url: str = Field(
        "sqlite+aiosqlite:///./.verzuimhub/melding.db",
        description="SQLAlchemy async URL of melding's own database.",
    )
    ingest_url: str = Field("http://127.0.0.1:8001", description="Base URL of ingest.")
    feed_token_file: Path | None = Field(
        None, description="File holding the consumer token for ingest's feed (re-read)."
    )
    feed_batch_size: int = Field(
        5000, ge=1, le=5000, description="Events fetched from ingest per batch (ingest's most)."
    )
    feed_poll_seconds: float = Field(
        0.2,
        gt=0,
        description="Pause before asking ingest's feed again when it had nothing new: half "
        "of it is the mean wait from a registration to its melding.",
    )
    evaluation_defer_seconds: float = Field(
        5.0,
        ge=0,
        description="While the consumer catches up on a backlog, the rules run in rounds this "
        "far apart (later events would change the same pupils again).",
    )
    duo_url: str = Field("http://127.0.0.1:8004", description="Base URL of DUO (ROD).")
    duo_timeout_seconds: float = Field(10.0, description="Timeout of one call to DUO.")
    duo_max_attempts: int = Field(
        10, description="Attempts before an outbox item goes to the dead-letter state."
    )
    duo_backoff_base_seconds: float = Field(1.0, description="First retry delay to DUO.")
    duo_backoff_cap_seconds: float = Field(300.0, description="Longest retry delay to DUO.")
    duo_breaker_failures: int = Field(5, description="Failures in a row that open the breaker.")
    duo_breaker_reset_seconds: float = Field(30.0, description="Open breaker cool-down.")
    pseudonym_secret: str = Field(
        f"{DEV_SECRET_MARKER}:melding-pseudonym",
        description="Secret for melding's own keyed pseudonyms of PGNs.",
    )
    encryption_keys: str = Field(
        f"dev1={DEV_SECRET_MARKER}:melding-encryption",
        description="AES-GCM keys for PGNs and contact data at rest: kid=secret,kid=secret "
        "(a key id holds no '.').",
    )
    encryption_active_key: str = Field("dev1", description="Key id new data is sealed with.")
    v4_gemeenten: list[str] = Field(
        default_factory=list,
        description="Gemeenten (GMxxxx) that ask for the 16-uur melding of pupils aged 18+.",
    )
    mbo_unit: Literal["klokuur", "lesuur"] = Field(
        "klokuur", description="Unit the 16-uur rule counts in for mbo."
    )
    refdata_dir: Path | None = Field(
        None, description="Directory with reference data; the shipped sample when unset."
    )
    worker_interval_seconds: float = Field(0.5, description="Idle pause of the background loops.")

    def production_problems(self) -> list[str]:
        problems = []
        if DEV_SECRET_MARKER in self.pseudonym_secret:
            problems.append("pseudonym_secret is a development secret")
        if DEV_SECRET_MARKER in self.encryption_keys:
            problems.append("encryption_keys contain a development key")
        return problems
