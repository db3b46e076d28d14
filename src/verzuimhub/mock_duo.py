"""A mock of DUO's verzuimregister (ROD) for development and tests.

Foundation stage: health and a protected-free intake that the melding service's DUO client
will call. The strict legal-field contract and fault injection arrive with the melding
service.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from verzuimhub_shared.app import ServiceSpec, create_service_app
from verzuimhub_shared.settings import ServiceSettings


class MockDuoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VZH_DUO_", extra="ignore")

    port: int = Field(8004, description="Port the HTTP server listens on.")
    database_url: str = Field(
        "sqlite+aiosqlite:///:memory:",
        description="Unused by the mock (state in memory); kept for the common settings.",
    )


def create_app(settings: MockDuoSettings | None = None) -> FastAPI:
    settings = settings or MockDuoSettings()
    spec = ServiceSpec(
        name="mock-duo",
        title="Mock DUO verzuimregister",
        description="Nabootsing van DUO's verzuimregister voor ontwikkeling en tests.",
        migrations_package=None,
        routers=[],
    )
    return create_service_app(spec, settings)
