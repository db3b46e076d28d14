"""The registry of the hub's services: how to build, migrate and configure each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from verzuimhub_shared.settings import ServiceSettings


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    env_prefix: str
    default_port: int
    migrations_package: str | None
    settings_cls: Callable[..., ServiceSettings]
    create_app: Callable[..., FastAPI]

    def settings(self, **overrides: Any) -> ServiceSettings:
        return self.settings_cls(**overrides)


def _registry() -> dict[str, ServiceEntry]:
    from verzuimhub.mock_duo import MockDuoSettings
    from verzuimhub.mock_duo import create_app as create_mock_duo
    from verzuimhub_ingest.app import create_app as create_ingest
    from verzuimhub_ingest.settings import IngestSettings
    from verzuimhub_melding.app import create_app as create_melding
    from verzuimhub_melding.settings import MeldingSettings
    from verzuimhub_swv_aggregate.app import create_app as create_swv
    from verzuimhub_swv_aggregate.settings import SwvSettings

    entries = [
        ServiceEntry(
            "ingest", "VZH_INGEST_", 8001, "verzuimhub_ingest", IngestSettings, create_ingest
        ),
        ServiceEntry(
            "melding", "VZH_MELDING_", 8002, "verzuimhub_melding", MeldingSettings, create_melding
        ),
        ServiceEntry(
            "swv-aggregate", "VZH_SWV_", 8003, "verzuimhub_swv_aggregate", SwvSettings, create_swv
        ),
        ServiceEntry("mock-duo", "VZH_DUO_", 8004, None, MockDuoSettings, create_mock_duo),
    ]
    return {e.name: e for e in entries}


_CACHE: dict[str, ServiceEntry] = {}


def services() -> dict[str, ServiceEntry]:
    if not _CACHE:
        _CACHE.update(_registry())
    return _CACHE


def service(name: str) -> ServiceEntry:
    try:
        return services()[name]
    except KeyError:
        raise SystemExit(f"unknown service {name!r}; choose from {', '.join(services())}") from None


#: Services with a database of their own (mock DUO keeps its state in memory).
DATABASE_SERVICES = ("ingest", "melding", "swv-aggregate")
