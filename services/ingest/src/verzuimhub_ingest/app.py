"""create_app for ingest: registrations and exemptions in, the event feed out."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from verzuimhub_ingest.api import OPENAPI_MODELS, routers
from verzuimhub_ingest.domain.catalogue import load_catalogue
from verzuimhub_ingest.models import AUDIT
from verzuimhub_ingest.service import IngestContext
from verzuimhub_ingest.settings import IngestSettings
from verzuimhub_ingest.worker import workers
from verzuimhub_shared.app import ServiceSpec, create_service_app
from verzuimhub_shared.crypto import Pseudonymiser, Sealer, parse_keys
from verzuimhub_shared.refdata import load_refdata, sample_refdata

NAME = "ingest"


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()
    pseudonymiser = Pseudonymiser(settings.pseudonym_secret)
    sealer = Sealer(parse_keys(settings.encryption_keys), settings.encryption_active_key)
    context = IngestContext(
        catalogue=load_catalogue(settings.catalogue_file),
        refdata=load_refdata(settings.refdata_dir) if settings.refdata_dir else sample_refdata(),
        pseudonymiser=pseudonymiser,
        sealer=sealer,
        today=today_in_nl,
    )
    spec = ServiceSpec(
        name=NAME,
        title="Verzuimhub ingest",
        description="Verzuimregistraties van scholen en vrijstellingen van gemeenten; "
        "de gebeurtenissenfeed voor de andere diensten.",
        migrations_package="verzuimhub_ingest",
        routers=routers,
        workers=workers,
        openapi_models=OPENAPI_MODELS,
        audit_table=AUDIT,
        extra_state={"ingest": context, "sealer": sealer},
    )
    return create_service_app(spec, settings)


def today_in_nl() -> date:
    return datetime.now(ZoneInfo("Europe/Amsterdam")).date()
