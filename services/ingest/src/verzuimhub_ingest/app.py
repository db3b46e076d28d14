"""create_app for ingest: registrations and exemptions in, the event feed out."""

from __future__ import annotations

from fastapi import FastAPI

from verzuimhub_ingest.api import routers
from verzuimhub_ingest.settings import IngestSettings
from verzuimhub_ingest.worker import workers
from verzuimhub_shared.app import ServiceSpec, create_service_app
from verzuimhub_shared.crypto import Pseudonymiser, Sealer, parse_keys

NAME = "ingest"


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()
    spec = ServiceSpec(
        name=NAME,
        title="Verzuimhub ingest",
        description="Verzuimregistraties van scholen en vrijstellingen van gemeenten; "
        "de gebeurtenissenfeed voor de andere diensten.",
        migrations_package="verzuimhub_ingest",
        routers=routers,
        workers=workers,
        extra_state={
            "pseudonymiser": Pseudonymiser(settings.pseudonym_secret),
            "sealer": Sealer(parse_keys(settings.encryption_keys), settings.encryption_active_key),
        },
    )
    return create_service_app(spec, settings)
