"""DuoClient against the mock DUO (in process) and against scripted transports."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from verzuimhub.testing import eventually
from verzuimhub_melding.duo.breaker import BreakerState, CircuitBreaker
from verzuimhub_melding.duo.client import (
    DuoCircuitOpen,
    DuoClient,
    DuoPermanentError,
    DuoRetryableError,
    backoff_delay,
    intrekking_key,
    is_retryable_status,
    retry_delay,
)
from verzuimhub_melding.duo.contract import (
    LEGAL_FIELDS,
    DuoReceipt,
    DuoStatus,
    Intrekking,
    Leerling,
    Verzuimmelding,
    field_paths,
    payload,
)

BASE_URL = "http://duo.test"
MeldingFactory = Callable[..., Verzuimmelding]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _duo(http: httpx.AsyncClient, *, timeout: float = 2.0, **breaker: Any) -> DuoClient:
    return DuoClient(BASE_URL, client=http, timeout=timeout, breaker=CircuitBreaker(**breaker))


def _scripted(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url=BASE_URL)


def _receipt(melding_id: str = "melding-1") -> dict[str, Any]:
    return {
        "meldingsnummer": "DUO-1",
        "meldingId": melding_id,
        "status": "Geregistreerd",
        "tijdstip": "2025-02-05T10:00:00Z",
    }


# -- against the mock ------------------------------------------------------------------------


async def test_submit_sends_exactly_the_legal_fields_with_the_melding_id_as_key(
    duo_http: httpx.AsyncClient, duo_test: Any, make_melding: MeldingFactory
) -> None:
    melding = make_melding()
    receipt = await _duo(duo_http).submit(melding)
    assert receipt.status is DuoStatus.GEREGISTREERD
    assert receipt.melding_id == melding.melding_id

    (verzoek,) = await duo_test.verzoeken()
    assert verzoek["idempotencyKey"] == melding.melding_id
    raw = orjson.loads(verzoek["inhoud"])
    assert field_paths(raw) <= LEGAL_FIELDS
    assert raw == payload(melding)
    (ontvangen,) = await duo_test.ontvangen()
    assert ontvangen["meldingsnummer"] == receipt.meldingsnummer


async def test_resubmission_returns_the_same_meldingsnummer_and_duo_keeps_one(
    duo_http: httpx.AsyncClient, duo_test: Any, make_melding: MeldingFactory
) -> None:
    duo = _duo(duo_http)
    first = await duo.submit(make_melding())
    again = await duo.submit(make_melding())
    assert again == first
    assert len(await duo_test.ontvangen()) == 1


async def test_the_same_id_with_other_content_is_a_permanent_422(
    duo_http: httpx.AsyncClient, make_melding: MeldingFactory
) -> None:
    duo = _duo(duo_http)
    await duo.submit(make_melding())
    with pytest.raises(DuoPermanentError) as caught:
        await duo.submit(make_melding(alleLessenVerzuimd=True))
    assert caught.value.status == 422
    assert caught.value.problem["status"] == 422


async def test_a_payload_duo_refuses_is_permanent_with_its_invalid_params(
    duo_http: httpx.AsyncClient, make_melding: MeldingFactory
) -> None:
    valid = make_melding()
    # Bypass our own validation to see DUO's answer to a bad payload.
    leerling = Leerling.model_construct(pgn="123456789", geboortedatum=valid.leerling.geboortedatum)
    broken = Verzuimmelding.model_construct(
        **(dict(valid) | {"woongemeente": "Amsterdam", "leerling": leerling})
    )
    with pytest.raises(DuoPermanentError) as caught:
        await _duo(duo_http).submit(broken)
    assert caught.value.status == 400
    names = {p["name"] for p in caught.value.problem["invalidParams"]}
    assert names == {"woongemeente", "leerling.pgn"}


async def test_withdraw_and_withdraw_again(
    duo_http: httpx.AsyncClient, duo_test: Any, make_melding: MeldingFactory
) -> None:
    duo = _duo(duo_http)
    submitted = await duo.submit(make_melding())
    intrekking = Intrekking(reden="alsnog_geoorloofd")
    withdrawn = await duo.withdraw("melding-1", intrekking)
    assert withdrawn.status is DuoStatus.INGETROKKEN
    assert withdrawn.meldingsnummer == submitted.meldingsnummer
    assert await duo.withdraw("melding-1", intrekking) == withdrawn
    (ontvangen,) = await duo_test.ontvangen()
    assert ontvangen["status"] == "Ingetrokken"
    keys = [v["idempotencyKey"] for v in await duo_test.verzoeken()]
    assert keys == ["melding-1", intrekking_key("melding-1"), intrekking_key("melding-1")]

    with pytest.raises(DuoPermanentError) as other_reason:
        await duo.withdraw("melding-1", Intrekking(reden="dubbele_melding"))
    assert other_reason.value.status == 422
    with pytest.raises(DuoPermanentError) as unknown:
        await duo.withdraw("onbekend", intrekking)
    assert unknown.value.status == 404


async def test_withdraw_refuses_an_id_that_is_not_a_melding_id(
    duo_http: httpx.AsyncClient,
) -> None:
    with pytest.raises(ValueError, match="pattern"):
        await _duo(duo_http).withdraw("../../v1/test", Intrekking(reden="onterecht_gemeld"))


async def test_a_hanging_duo_times_out_as_retryable_and_the_retry_delivers_once(
    duo_http: httpx.AsyncClient, duo_test: Any, make_melding: MeldingFactory
) -> None:
    await duo_test.storingen(timeoutRate=1.0, hangMs=10_000)
    duo = _duo(duo_http, timeout=0.05)
    with pytest.raises(DuoRetryableError) as caught:
        await duo.submit(make_melding())
    assert caught.value.status is None
    assert await duo_test.ontvangen() == []
    await duo_test.geen_storingen()
    await duo.submit(make_melding())
    assert len(await duo_test.ontvangen()) == 1


async def test_commit_then_drop_the_retry_gets_the_stored_answer(
    duo_http: httpx.AsyncClient, duo_test: Any, make_melding: MeldingFactory
) -> None:
    await duo_test.storingen(dropAfterCommitRate=1.0)
    duo = _duo(duo_http)
    with pytest.raises(DuoRetryableError, match="verbinding"):
        await duo.submit(make_melding())
    (stored,) = await duo_test.ontvangen()  # DUO did store it; the client cannot know

    receipt = await duo.submit(make_melding())  # a replay is never dropped
    assert receipt.meldingsnummer == stored["meldingsnummer"]
    assert len(await duo_test.ontvangen()) == 1


async def test_a_retry_while_duo_still_works_on_the_key_is_a_retryable_409(
    duo_http: httpx.AsyncClient, duo_test: Any, make_melding: MeldingFactory
) -> None:
    await duo_test.storingen(timeoutRate=1.0, hangMs=10_000)
    slow = asyncio.create_task(_duo(duo_http, timeout=30).submit(make_melding()))

    async def received() -> bool:  # from then on it is in progress
        return bool(await duo_test.verzoeken())

    await eventually(received)
    duo = _duo(duo_http)
    with pytest.raises(DuoRetryableError) as caught:
        await duo.submit(make_melding())
    assert caught.value.status == 409
    assert duo.breaker.consecutive_failures == 0  # DUO is up: not a breaker failure
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    await duo_test.geen_storingen()
    await duo.submit(make_melding())
    assert len(await duo_test.ontvangen()) == 1


async def test_half_of_all_requests_failing_still_delivers_every_melding_exactly_once(
    duo_app: FastAPI, duo_test: Any, make_melding: MeldingFactory
) -> None:
    """A worker-style loop: retry on DuoRetryableError, wait out an open circuit."""
    await duo_test.storingen(errorRate=0.5, dropAfterCommitRate=0.2, seed=20250205)
    clock = FakeClock()
    rng = random.Random(1)
    # raise_app_exceptions=False: a dropped answer reaches the client as a 500, as behind a
    # real server; the 50% 503s and the drops both count toward the breaker.
    transport = httpx.ASGITransport(app=duo_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        duo = _duo(http, failure_threshold=4, reset_timeout=30.0, clock=clock)
        delivered: dict[str, DuoReceipt] = {}
        retries = circuit_waits = 0
        for n in range(40):
            melding = make_melding(meldingId=f"melding-{n}", woongemeente=f"GM{n % 3:04d}")
            attempt = 0
            while melding.melding_id not in delivered:
                try:
                    delivered[melding.melding_id] = await duo.submit(melding)
                except DuoCircuitOpen as exc:
                    circuit_waits += 1
                    clock.now += exc.retry_after or 0.0  # nothing was sent: no attempt used
                except DuoRetryableError as exc:
                    delay = retry_delay(exc, attempt, base=1.0, cap=60.0, rng=rng)
                    assert 0.0 <= delay <= min(60.0, 2.0**attempt)
                    attempt += 1
                    retries += 1
                    clock.now += delay
                assert attempt < 30, "a melding never got through"

    stored = await duo_test.ontvangen()
    assert sorted(m["meldingId"] for m in stored) == sorted(delivered)
    assert len({m["meldingsnummer"] for m in stored}) == 40
    for m in stored:
        assert delivered[m["meldingId"]].meldingsnummer == m["meldingsnummer"]
    assert retries > 20
    assert circuit_waits > 0
    per_gemeente = [len(await duo_test.ontvangen(woongemeente=f"GM{g:04d}")) for g in range(3)]
    assert per_gemeente == [14, 13, 13]


# -- classification, against scripted answers ------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 409, 425, 429])
async def test_server_trouble_is_retryable(status: int, make_melding: MeldingFactory) -> None:
    async with _scripted(lambda _: httpx.Response(status, headers={"Retry-After": "7"})) as http:
        with pytest.raises(DuoRetryableError) as caught:
            await _duo(http).submit(make_melding())
    assert caught.value.status == status
    assert caught.value.retry_after == 7.0
    assert is_retryable_status(status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 413, 415, 422])
async def test_a_refused_request_is_permanent(status: int, make_melding: MeldingFactory) -> None:
    problem = {"status": status, "title": "x", "detail": "waarom"}
    async with _scripted(lambda _: httpx.Response(status, json=problem)) as http:
        with pytest.raises(DuoPermanentError, match="waarom") as caught:
            await _duo(http).submit(make_melding())
    assert caught.value.problem == problem
    assert not is_retryable_status(status)


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError],
)
async def test_transport_failures_are_retryable(
    error: type[httpx.TransportError], make_melding: MeldingFactory
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error("kapot", request=request)

    async with _scripted(fail) as http:
        with pytest.raises(DuoRetryableError):
            await _duo(http).submit(make_melding())


@pytest.mark.parametrize("body", [b"", b"<html>ok</html>", b'{"meldingsnummer": "x"}'])
async def test_an_unreadable_success_is_retryable(
    body: bytes, make_melding: MeldingFactory
) -> None:
    async with _scripted(lambda _: httpx.Response(201, content=body)) as http:
        with pytest.raises(DuoRetryableError, match="onleesbaar"):
            await _duo(http).submit(make_melding())


async def test_trace_context_and_key_go_along(make_melding: MeldingFactory) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=_receipt())

    async with _scripted(answer) as http:
        await _duo(http).submit(make_melding())
    (request,) = seen
    assert request.headers["idempotency-key"] == "melding-1"
    assert request.headers["traceparent"].startswith("00-")
    assert request.headers["content-type"] == "application/json"
    assert request.url == f"{BASE_URL}/v1/verzuimmeldingen"


async def test_the_breaker_opens_and_then_sends_nothing_until_a_trial(
    make_melding: MeldingFactory,
) -> None:
    clock = FakeClock()
    calls: list[int] = []
    status = [503]

    def answer(_: httpx.Request) -> httpx.Response:
        calls.append(status[0])
        if status[0] == 201:
            return httpx.Response(201, json=_receipt())
        return httpx.Response(status[0])

    async with _scripted(answer) as http:
        duo = _duo(http, failure_threshold=3, reset_timeout=10.0, clock=clock)
        for _ in range(3):
            with pytest.raises(DuoRetryableError):
                await duo.submit(make_melding())
        assert duo.breaker.state is BreakerState.OPEN
        with pytest.raises(DuoCircuitOpen) as caught:
            await duo.submit(make_melding())
        assert caught.value.retry_after == pytest.approx(10.0)
        assert len(calls) == 3  # the refused call never left

        clock.now += 10
        status[0] = 201
        await duo.submit(make_melding())
        assert duo.breaker.state is BreakerState.CLOSED


async def test_a_permanent_error_does_not_count_against_duo(make_melding: MeldingFactory) -> None:
    async with _scripted(lambda _: httpx.Response(400, json={"status": 400})) as http:
        duo = _duo(http, failure_threshold=2)
        for _ in range(5):
            with pytest.raises(DuoPermanentError):
                await duo.submit(make_melding())
        assert duo.breaker.state is BreakerState.CLOSED


async def test_owned_client_is_closed_and_an_injected_one_is_not() -> None:
    async with DuoClient(BASE_URL) as own:
        inner = own._client
    assert inner.is_closed
    async with _scripted(lambda _: httpx.Response(204)) as http:
        async with DuoClient(BASE_URL, client=http):
            pass
        assert not http.is_closed


# -- backoff ---------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [0, 1, 2, 5, 10, 50, 5000])
def test_backoff_stays_within_full_jitter_bounds(attempt: int) -> None:
    rng = random.Random(attempt)
    ceiling = min(60.0, 0.5 * 2.0 ** min(attempt, 100))
    delays = [backoff_delay(attempt, base=0.5, cap=60.0, rng=rng) for _ in range(500)]
    assert all(0.0 <= d <= ceiling for d in delays)
    # Full jitter: spread over the whole range, not bunched near the ceiling.
    assert min(delays) < 0.05 * ceiling
    assert max(delays) > 0.95 * ceiling


def test_backoff_is_deterministic_for_a_seed_and_refuses_nonsense() -> None:
    first = [backoff_delay(a, rng=random.Random(3)) for a in range(8)]
    assert first == [backoff_delay(a, rng=random.Random(3)) for a in range(8)]
    with pytest.raises(ValueError, match="≥ 0"):
        backoff_delay(-1)


def test_retry_delay_honours_retry_after_up_to_the_cap() -> None:
    rng = random.Random(0)
    assert retry_delay(DuoRetryableError("x", retry_after=40), 0, cap=60, rng=rng) == 40
    assert retry_delay(DuoRetryableError("x", retry_after=4000), 0, cap=60, rng=rng) == 60
    assert retry_delay(DuoRetryableError("x"), 0, base=1, cap=60, rng=rng) <= 1
