"""create_app for melding: due meldingen, the school's confirmation, DUO, gemeenten."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from verzuimhub_melding.api import OPENAPI_MODELS, routers
from verzuimhub_melding.models import AUDIT
from verzuimhub_melding.service import MeldingContext, loaded_holidays, rules_config
from verzuimhub_melding.settings import MeldingSettings
from verzuimhub_melding.worker import workers
from verzuimhub_shared.app import ServiceSpec, create_service_app
from verzuimhub_shared.crypto import Pseudonymiser, Sealer, parse_keys
from verzuimhub_shared.refdata import load_refdata, sample_refdata

NAME = "melding"


def today_in_nl() -> date:
    return datetime.now(ZoneInfo("Europe/Amsterdam")).date()


def create_app(settings: MeldingSettings | None = None) -> FastAPI:
    settings = settings or MeldingSettings()
    context = MeldingContext(
        refdata=load_refdata(settings.refdata_dir) if settings.refdata_dir else sample_refdata(),
        pseudonymiser=Pseudonymiser(settings.pseudonym_secret),
        sealer=Sealer(parse_keys(settings.encryption_keys), settings.encryption_active_key),
        rules=rules_config(settings.v4_gemeenten, settings.mbo_unit),
        today=today_in_nl,
        holidays=loaded_holidays(settings.refdata_dir),
    )
    spec = ServiceSpec(
        name=NAME,
        title="Verzuimhub melding",
        description="Verzuimmeldingen: wat de wet vraagt, de bevestiging door de school, "
        "doorzending naar DUO en inzage voor de woongemeente.",
        migrations_package="verzuimhub_melding",
        routers=routers,
        workers=workers,
        openapi_models=OPENAPI_MODELS,
        audit_table=AUDIT,
        extra_state={"melding": context},
    )
    return create_service_app(spec, settings)
