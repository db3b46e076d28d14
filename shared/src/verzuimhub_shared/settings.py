"""Settings: one base class, one subclass per service with its own environment prefix.

Every field has a description: it is the help text printed by ``verzuimhub settings`` and
the README's settings table is generated from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The issuer of development tokens. A production deployment must name its own issuer.
DEV_ISSUER = "https://dev.verzuimhub.invalid"
#: Marker put in every development secret; production refuses any secret containing it.
DEV_SECRET_MARKER = "dev-only"

Environment = Literal["development", "test", "production"]


class ServiceSettings(BaseSettings):
    """Settings every service shares. Subclasses set ``model_config`` with their env prefix."""

    model_config = SettingsConfigDict(env_prefix="VZH_", extra="ignore")

    env: Environment = Field(
        "development",
        description="development, test or production; production refuses development keys.",
    )
    host: str = Field("127.0.0.1", description="Interface the HTTP server binds to.")
    port: int = Field(8000, description="Port the HTTP server listens on.")
    database_url: str = Field(
        "sqlite+aiosqlite:///./.verzuimhub/service.db",
        description="SQLAlchemy async URL: postgresql+asyncpg://… or sqlite+aiosqlite:///…",
    )
    database_pool_size: int = Field(10, description="Connection pool size (PostgreSQL).")
    log_level: str = Field("INFO", description="Log level: DEBUG, INFO, WARNING, ERROR.")
    log_json: bool = Field(True, description="JSON log lines (true) or console rendering.")
    jwt_public_key_files: list[Path] = Field(
        default_factory=list,
        description="PEM files with RSA public keys accepted for RS256 bearer tokens.",
    )
    jwks_url: str | None = Field(
        None, description="JWKS document URL; keys are fetched with httpx and cached."
    )
    jwks_cache_seconds: int = Field(300, description="How long a fetched JWKS is trusted.")
    jwt_issuer: str = Field(DEV_ISSUER, description="Required `iss` of every bearer token.")
    jwt_audience: str = Field("verzuimhub", description="Required `aud` of every bearer token.")
    run_workers: bool = Field(
        True, description="Run this service's background workers inside the API process."
    )
    public_base_url: str = Field(
        "https://localhost", description="Base URL announced in the OpenAPI `servers` list."
    )
    max_body_bytes: int = Field(
        8 * 1024 * 1024, description="Largest accepted request body; larger answers 413."
    )
    body_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="Longest wait for the next chunk of a request body; a slower client "
        "gets 408 and the connection is closed.",
    )
    rate_limit_per_minute: int = Field(
        6000,
        ge=0,
        description="Requests per minute per caller (token organisation and subject, or "
        "client address without a valid token), per process; 0 switches it off.",
    )
    rate_limit_burst: int = Field(
        1000, ge=1, description="Requests a caller may send at once before the rate applies."
    )
    retention_interval_seconds: float = Field(
        3600.0, gt=0, description="Pause between two runs of the retention purge."
    )
    audit_retention_years: int = Field(
        5, ge=1, description="Years the audit log is kept (the purge never takes under one)."
    )
    idempotency_retention_days: int = Field(
        7, ge=1, description="Days a stored Idempotency-Key answer is kept for retries."
    )

    @model_validator(mode="after")
    def _refuse_development_secrets_in_production(self) -> ServiceSettings:
        if self.env != "production":
            return self
        problems = []
        if self.jwt_issuer == DEV_ISSUER:
            problems.append("jwt_issuer is the development issuer")
        if not self.jwt_public_key_files and not self.jwks_url:
            problems.append("no jwt_public_key_files or jwks_url configured")
        for path in self.jwt_public_key_files:
            if DEV_SECRET_MARKER in path.name:
                problems.append(f"jwt key {path.name} is a development key")
        if self.database_url.startswith("sqlite"):
            problems.append("database_url is SQLite; production runs on PostgreSQL")
        problems.extend(self.production_problems())
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self

    def production_problems(self) -> list[str]:
        """Extra checks a service adds for its own secrets."""
        return []
