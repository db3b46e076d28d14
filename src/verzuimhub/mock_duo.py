"""A mock of DUO's verzuimregister (ROD) for development and tests.

It speaks the hub's own DUO contract (``verzuimhub_melding.duo.contract``) and validates with
the very same models, so an unknown or missing field answers 400 problem+json listing every
problem in ``invalidParams``. State lives in memory, per app.

Business routes (what the melding service's ``DuoClient`` calls):

- ``POST /v1/verzuimmeldingen`` with ``Idempotency-Key`` equal to the body's ``meldingId``:
  201 with a ``DuoReceipt`` (a new meldingsnummer, status Geregistreerd), filed under the
  woongemeente. Same key and same payload again: the stored answer (201, header
  ``Idempotent-Replayed: true``); same key, other payload: 422; same key while the first is
  still being processed: 409.
- ``POST /v1/verzuimmeldingen/{meldingId}/intrekking``: status Ingetrokken; repeating it with
  the same reden returns the stored answer, with another reden 422; an unknown melding 404.

Test routes (``/v1/test/...``): what was received (``ontvangen``, optionally per
``woongemeente``, with each body exactly as it arrived in ``ruweInhoud``), every request that
reached a business route (``verzoeken``), and fault injection (``storingen``). Faults apply to
business routes only; each request draws three numbers from one ``random.Random(seed)`` in a
fixed order, so a given seed and request order always give the same faults:

- ``latencyMs``: every request waits this long first;
- ``errorRate``: this fraction is answered 503 problem+json, nothing stored;
- ``timeoutRate``: this fraction hangs ``hangMs`` (set it above the client's timeout) before
  being processed normally, as a slow DUO whose caller gave up would. A retry with the same
  key meanwhile gets 409. In-process (``httpx.ASGITransport``) the caller's timeout cancels
  the hanging handler, so nothing is stored then;
- ``dropAfterCommitRate``: this fraction is stored and then the response is lost. The handler
  raises ``SimulatedConnectionDrop`` after storing; it subclasses ``httpx.RemoteProtocolError``,
  so an in-process httpx client (``ASGITransport``, which re-raises app exceptions) sees
  exactly what a dropped connection looks like, and behind a real server the shared error
  handler turns it into a 500. Either way the client cannot know the melding was stored.
"""

import asyncio
import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

import httpx
import orjson
from fastapi import Depends, FastAPI, Header, Path, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic_settings import SettingsConfigDict

from verzuimhub_melding.duo.contract import (
    INTREKKING_FIELDS,
    LEGAL_FIELDS,
    DuoReceipt,
    DuoStatus,
    Intrekking,
    Verzuimmelding,
    field_paths,
    payload,
)
from verzuimhub_shared.app import ServiceSpec, create_service_app
from verzuimhub_shared.errors import (
    BadRequest,
    Conflict,
    InvalidParam,
    NotFound,
    ServiceUnavailable,
    UnprocessableIdempotencyKey,
)
from verzuimhub_shared.logging import get_logger
from verzuimhub_shared.settings import ServiceSettings
from verzuimhub_shared.validation import service_router

log = get_logger(__name__)

MELDING_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
GEMEENTE_PATTERN = r"^GM[0-9]{4}$"


class MockDuoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VZH_DUO_", extra="ignore")

    port: int = Field(8004, description="Port the HTTP server listens on.")
    database_url: str = Field(
        "sqlite+aiosqlite:///:memory:",
        description="Unused by the mock (state in memory); kept for the common settings.",
    )


class SimulatedConnectionDrop(httpx.RemoteProtocolError):
    """Raised after a melding is stored, so its answer never reaches the caller."""


# -- test-route schemas ----------------------------------------------------------------------


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class Storingen(_Schema):
    """Faults the mock injects into business routes (fractions between 0 and 1)."""

    error_rate: float = Field(0.0, ge=0, le=1, description="Fractie beantwoord met 503.")
    latency_ms: int = Field(0, ge=0, le=60_000, description="Vertraging van elk verzoek.")
    timeout_rate: float = Field(
        0.0, ge=0, le=1, description="Fractie die hangMs blijft hangen (time-out bij de client)."
    )
    hang_ms: int = Field(30_000, ge=0, le=600_000, description="Hoe lang een time-out hangt.")
    drop_after_commit_rate: float = Field(
        0.0, ge=0, le=1, description="Fractie die wordt opgeslagen maar nooit beantwoord."
    )
    seed: int = Field(0, description="Zaad van de toevalsgenerator: dezelfde storingen per run.")


class OntvangenMelding(_Schema):
    meldingsnummer: str
    melding_id: str
    woongemeente: str
    status: DuoStatus
    ontvangen_op: AwareDatetime
    melding: Verzuimmelding = Field(description="De melding zoals DUO die vastlegde.")
    ruwe_inhoud: str = Field(description="De body van het verzoek precies zoals ontvangen.")
    intrekking: Intrekking | None = None
    ruwe_intrekking: str | None = None


class OntvangenLijst(_Schema):
    meldingen: list[OntvangenMelding]


class Verzoek(_Schema):
    methode: str
    pad: str
    idempotency_key: str | None
    inhoud: str = Field(description="De body precies zoals ontvangen.")
    storing: str | None = Field(description="fout, timeout, verbroken of leeg.")


class VerzoekenLijst(_Schema):
    verzoeken: list[Verzoek]


# -- state -----------------------------------------------------------------------------------


@dataclass
class _Stored:
    fingerprint: str
    receipt: DuoReceipt
    melding: Verzuimmelding
    raw: str
    intrekking: Intrekking | None = None
    intrekking_raw: str | None = None
    intrekking_receipt: DuoReceipt | None = None


@dataclass(frozen=True)
class _Draw:
    error: bool
    timeout: bool
    drop: bool


@dataclass
class DuoState:
    """Everything the mock knows, in memory."""

    meldingen: dict[str, _Stored] = field(default_factory=dict)  # by the hub's melding id
    per_gemeente: dict[str, list[str]] = field(default_factory=dict)
    in_progress: set[str] = field(default_factory=set)
    verzoeken: list[Verzoek] = field(default_factory=list)
    storingen: Storingen = field(default_factory=Storingen)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    volgnummer: int = 0

    def configure(self, storingen: Storingen) -> None:
        self.storingen = storingen
        self.rng = random.Random(storingen.seed)

    def clear(self) -> None:
        self.meldingen.clear()
        self.per_gemeente.clear()
        self.verzoeken.clear()

    def draw(self) -> _Draw:
        # Always three draws in this order, so the sequence depends only on the seed.
        error, timeout, drop = self.rng.random(), self.rng.random(), self.rng.random()
        s = self.storingen
        return _Draw(
            error < s.error_rate, timeout < s.timeout_rate, drop < s.drop_after_commit_rate
        )

    def register(self, melding: Verzuimmelding, raw: str, fingerprint: str) -> DuoReceipt:
        self.volgnummer += 1
        receipt = DuoReceipt(
            meldingsnummer=f"DUO-{self.volgnummer:08d}",
            melding_id=melding.melding_id,
            status=DuoStatus.GEREGISTREERD,
            tijdstip=datetime.now(UTC),
        )
        self.meldingen[melding.melding_id] = _Stored(fingerprint, receipt, melding, raw)
        self.per_gemeente.setdefault(melding.woongemeente, []).append(melding.melding_id)
        log.info(
            "duo_melding_registered",
            melding_id=melding.melding_id,
            meldingsnummer=receipt.meldingsnummer,
            woongemeente=melding.woongemeente,
        )
        return receipt


def _state(request: Request) -> DuoState:
    state: DuoState = request.app.state.duo
    return state


StateDep = Annotated[DuoState, Depends(_state)]
IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=128)]
OptionalIdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128)
]
MeldingIdPath = Annotated[str, Path(alias="meldingId", pattern=MELDING_ID_PATTERN)]
WoongemeenteQuery = Annotated[str | None, Query(pattern=GEMEENTE_PATTERN)]


def _fingerprint(model: BaseModel) -> str:
    canonical = orjson.dumps(payload(model), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


async def _storing(state: DuoState, request: Request, key: str | None) -> _Draw:
    """Log the request, then apply latency and the 503 fault; the caller applies the rest."""
    raw = (await request.body()).decode("utf-8", errors="replace")
    draw = state.draw()
    kind = (
        "fout" if draw.error else "timeout" if draw.timeout else "verbroken" if draw.drop else None
    )
    state.verzoeken.append(
        Verzoek(
            methode=request.method,
            pad=request.url.path,
            idempotency_key=key,
            inhoud=raw,
            storing=kind,
        )
    )
    if state.storingen.latency_ms:
        await asyncio.sleep(state.storingen.latency_ms / 1000)
    if draw.error:
        raise ServiceUnavailable("Gesimuleerde storing bij DUO")
    return draw


async def _only_wire_names(request: Request, allowed: frozenset[str]) -> None:
    """The models also accept python names (``melding_id``); on the wire only the contract's
    lowerCamelCase names are valid."""
    unexpected = sorted(field_paths(orjson.loads(await request.body())) - allowed)
    if unexpected:
        raise BadRequest(
            f"{len(unexpected)} ongeldige parameter(s)",
            invalid_params=[
                InvalidParam(name, "onbekend veld: alleen de wettelijke velden (lowerCamelCase)")
                for name in unexpected
            ],
        )


def _replayed(response: Response) -> None:
    response.headers["Idempotent-Replayed"] = "true"


# -- business routes -------------------------------------------------------------------------

router = service_router(prefix="/v1", tags=["verzuimmeldingen"])

_ERRORS: dict[int | str, dict[str, str]] = {
    409: {"description": "Dezelfde Idempotency-Key wordt nog verwerkt"},
    422: {"description": "Idempotency-Key hergebruikt met een andere inhoud"},
    503: {"description": "DUO is (gesimuleerd) niet beschikbaar"},
}


@router.post(
    "/verzuimmeldingen",
    status_code=201,
    response_model=DuoReceipt,
    operation_id="registreerVerzuimmelding",
    summary="Een verzuimmelding registreren",
    responses=_ERRORS,
)
async def registreer_verzuimmelding(
    melding: Verzuimmelding,
    idempotency_key: IdempotencyKey,
    request: Request,
    response: Response,
    state: StateDep,
) -> DuoReceipt:
    if idempotency_key != melding.melding_id:
        raise BadRequest(
            "De Idempotency-Key is het meldingId van de hub",
            invalid_params=[InvalidParam("Idempotency-Key", "moet gelijk zijn aan meldingId")],
        )
    await _only_wire_names(request, LEGAL_FIELDS)
    draw = await _storing(state, request, idempotency_key)
    fingerprint = _fingerprint(melding)
    stored = state.meldingen.get(melding.melding_id)
    if stored is not None:
        if stored.fingerprint != fingerprint:
            raise UnprocessableIdempotencyKey(
                "Deze Idempotency-Key hoort bij een melding met een andere inhoud"
            )
        _replayed(response)
        return stored.receipt
    if idempotency_key in state.in_progress:
        raise Conflict("Een verzoek met deze Idempotency-Key wordt nog verwerkt")
    state.in_progress.add(idempotency_key)
    try:
        if draw.timeout:
            await asyncio.sleep(state.storingen.hang_ms / 1000)
        raw = (await request.body()).decode("utf-8", errors="replace")
        receipt = state.register(melding, raw, fingerprint)
    finally:
        state.in_progress.discard(idempotency_key)
    if draw.drop:
        raise SimulatedConnectionDrop("Server disconnected without sending a response.")
    return receipt


@router.post(
    "/verzuimmeldingen/{meldingId}/intrekking",
    response_model=DuoReceipt,
    operation_id="trekVerzuimmeldingIn",
    summary="Een verzuimmelding intrekken",
    responses={**_ERRORS, 404: {"description": "Onbekende melding"}},
)
async def trek_verzuimmelding_in(
    melding_id: MeldingIdPath,
    intrekking: Intrekking,
    request: Request,
    response: Response,
    state: StateDep,
    idempotency_key: OptionalIdempotencyKey = None,
) -> DuoReceipt:
    await _only_wire_names(request, INTREKKING_FIELDS)
    draw = await _storing(state, request, idempotency_key)
    stored = state.meldingen.get(melding_id)
    if stored is None:
        raise NotFound("DUO kent geen melding met dit meldingId")
    if stored.intrekking is not None and stored.intrekking_receipt is not None:
        if stored.intrekking != intrekking:
            raise UnprocessableIdempotencyKey("De melding is al ingetrokken met een andere reden")
        _replayed(response)
        return stored.intrekking_receipt
    guard = f"{melding_id}:intrekking"
    if guard in state.in_progress:
        raise Conflict("Deze intrekking wordt nog verwerkt")
    state.in_progress.add(guard)
    try:
        if draw.timeout:
            await asyncio.sleep(state.storingen.hang_ms / 1000)
        receipt = stored.receipt.model_copy(
            update={"status": DuoStatus.INGETROKKEN, "tijdstip": datetime.now(UTC)}
        )
        stored.intrekking = intrekking
        stored.intrekking_raw = (await request.body()).decode("utf-8", errors="replace")
        stored.intrekking_receipt = receipt
    finally:
        state.in_progress.discard(guard)
    log.info("duo_melding_withdrawn", melding_id=melding_id, reden=intrekking.reden.value)
    if draw.drop:
        raise SimulatedConnectionDrop("Server disconnected without sending a response.")
    return receipt


# -- test routes -----------------------------------------------------------------------------

test_router = service_router(prefix="/v1/test", tags=["test"])


@test_router.get(
    "/ontvangen",
    response_model=OntvangenLijst,
    operation_id="lijstOntvangenMeldingen",
    summary="Wat DUO ontving, eventueel per woongemeente",
)
async def lijst_ontvangen_meldingen(
    state: StateDep, woongemeente: WoongemeenteQuery = None
) -> OntvangenLijst:
    ids = (
        state.per_gemeente.get(woongemeente, [])
        if woongemeente
        else [i for gemeente_ids in state.per_gemeente.values() for i in gemeente_ids]
    )
    meldingen = []
    for melding_id in ids:
        stored = state.meldingen[melding_id]
        status = stored.intrekking_receipt.status if stored.intrekking_receipt else None
        meldingen.append(
            OntvangenMelding(
                meldingsnummer=stored.receipt.meldingsnummer,
                melding_id=melding_id,
                woongemeente=stored.melding.woongemeente,
                status=status or stored.receipt.status,
                ontvangen_op=stored.receipt.tijdstip,
                melding=stored.melding,
                ruwe_inhoud=stored.raw,
                intrekking=stored.intrekking,
                ruwe_intrekking=stored.intrekking_raw,
            )
        )
    return OntvangenLijst(meldingen=meldingen)


@test_router.delete(
    "/ontvangen",
    status_code=204,
    response_class=Response,
    operation_id="wisOntvangenMeldingen",
    summary="Alle ontvangen meldingen en verzoeken vergeten",
)
async def wis_ontvangen_meldingen(state: StateDep) -> Response:
    state.clear()
    return Response(status_code=204)


@test_router.get(
    "/verzoeken",
    response_model=VerzoekenLijst,
    operation_id="lijstVerzoeken",
    summary="Elk verzoek dat een DUO-route bereikte, met de body zoals ontvangen",
)
async def lijst_verzoeken(state: StateDep) -> VerzoekenLijst:
    return VerzoekenLijst(verzoeken=list(state.verzoeken))


@test_router.get(
    "/storingen",
    response_model=Storingen,
    operation_id="toonStoringen",
    summary="De ingestelde storingen",
)
async def toon_storingen(state: StateDep) -> Storingen:
    return state.storingen


@test_router.post(
    "/storingen",
    response_model=Storingen,
    operation_id="stelStoringenIn",
    summary="Storingen instellen (met een vast zaad: herhaalbaar)",
)
async def stel_storingen_in(storingen: Storingen, state: StateDep) -> Storingen:
    state.configure(storingen)
    return state.storingen


@test_router.delete(
    "/storingen",
    status_code=204,
    response_class=Response,
    operation_id="herstelStoringen",
    summary="Geen storingen meer",
)
async def herstel_storingen(state: StateDep) -> Response:
    state.configure(Storingen())
    return Response(status_code=204)


def create_app(settings: MockDuoSettings | None = None) -> FastAPI:
    settings = settings or MockDuoSettings()
    spec = ServiceSpec(
        name="mock-duo",
        title="Mock DUO verzuimregister",
        description="Nabootsing van DUO's verzuimregister voor ontwikkeling en tests: het "
        "eigen DUO-contract van de hub, idempotent, met instelbare storingen.",
        migrations_package=None,
        routers=[router, test_router],
        extra_state={"duo": DuoState()},
    )
    return create_service_app(spec, settings)
