"""create_app for melding: due meldingen, the school's confirmation, DUO, gemeenten."""

from __future__ import annotations

from fastapi import FastAPI

from verzuimhub_melding.api import routers
from verzuimhub_melding.settings import MeldingSettings
from verzuimhub_melding.worker import workers
from verzuimhub_shared.app import ServiceSpec, create_service_app

NAME = "melding"


def create_app(settings: MeldingSettings | None = None) -> FastAPI:
    settings = settings or MeldingSettings()
    spec = ServiceSpec(
        name=NAME,
        title="Verzuimhub melding",
        description="Verzuimmeldingen: wat de wet vraagt, de bevestiging door de school, "
        "doorzending naar DUO en inzage voor de woongemeente.",
        migrations_package="verzuimhub_melding",
        routers=routers,
        workers=workers,
    )
    return create_service_app(spec, settings)
