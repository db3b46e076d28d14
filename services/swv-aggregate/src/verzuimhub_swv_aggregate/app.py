"""create_app for swv-aggregate: anonymised regional figures for SWV analysts."""

from __future__ import annotations

from fastapi import FastAPI

from verzuimhub_shared.app import ServiceSpec, create_service_app
from verzuimhub_swv_aggregate.api import routers
from verzuimhub_swv_aggregate.settings import SwvSettings
from verzuimhub_swv_aggregate.worker import workers

NAME = "swv-aggregate"


def create_app(settings: SwvSettings | None = None) -> FastAPI:
    settings = settings or SwvSettings()
    spec = ServiceSpec(
        name=NAME,
        title="Verzuimhub swv-aggregate",
        description="Geanonimiseerde regionale cijfers voor samenwerkingsverbanden, "
        "met onderdrukking van kleine aantallen.",
        migrations_package="verzuimhub_swv_aggregate",
        routers=routers,
        workers=workers,
    )
    return create_service_app(spec, settings)
