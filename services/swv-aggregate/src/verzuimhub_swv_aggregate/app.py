"""create_app for swv-aggregate: anonymised regional figures for SWV analysts."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from verzuimhub_shared.app import ServiceSpec, create_service_app
from verzuimhub_shared.refdata import load_refdata, sample_refdata
from verzuimhub_swv_aggregate.api import routers
from verzuimhub_swv_aggregate.disclosure import DisclosureConfig
from verzuimhub_swv_aggregate.noise import laplace_counts
from verzuimhub_swv_aggregate.service import AggregateContext
from verzuimhub_swv_aggregate.settings import SwvSettings
from verzuimhub_swv_aggregate.worker import workers

NAME = "swv-aggregate"


def create_app(settings: SwvSettings | None = None) -> FastAPI:
    settings = settings or SwvSettings()
    refdata = load_refdata(settings.refdata_dir) if settings.refdata_dir else sample_refdata()
    minutes = {
        **dict.fromkeys(("po", "sbo", "so"), settings.minutes_per_lesdag_po),
        **dict.fromkeys(("vo", "vso", "mbo"), settings.minutes_per_lesdag_vo),
    }
    context = AggregateContext(
        refdata=refdata,
        minutes_per_lesdag=minutes,
        tier2_percentage=settings.tier2_percentage,
        tier3_percentage=settings.tier3_percentage,
        today=today_in_nl,
    )
    disclosure = DisclosureConfig(
        threshold=settings.disclosure_threshold,
        protection=min(settings.disclosure_protection, settings.disclosure_threshold - 2),
        rounding_base=settings.rounding_base,
    )
    noise = laplace_counts(settings.dp_epsilon) if settings.dp_epsilon else None
    spec = ServiceSpec(
        name=NAME,
        title="Verzuimhub swv-aggregate",
        description="Geanonimiseerde regionale cijfers voor samenwerkingsverbanden, "
        "met onderdrukking van kleine aantallen. Alleen vaste perioden (schoolweek, maand, "
        "schooljaar); de eigen regio in detail, landelijke cijfers voor iedereen.",
        migrations_package="verzuimhub_swv_aggregate",
        routers=routers,
        workers=workers,
        extra_state={"aggregate": context, "disclosure": disclosure, "noise": noise},
    )
    return create_service_app(spec, settings)


def today_in_nl() -> date:
    return datetime.now(ZoneInfo("Europe/Amsterdam")).date()
