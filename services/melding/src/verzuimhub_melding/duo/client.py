"""DuoClient: one attempt per call to DUO's verzuimregister, with the failure classified.

The client never loops: the melding service's outbox worker owns retries and dead-lettering.
It uses ``backoff_delay``/``retry_delay`` and the exception classes below:

- ``DuoRetryableError``: try again later with the same melding id. Timeouts, broken
  connections, 5xx, 429, 408, 409 (the same key is still being processed) and a 2xx whose
  body cannot be read (DUO may have stored the melding: the replay returns its answer).
- ``DuoCircuitOpen`` (a ``DuoRetryableError``): the breaker refused the call; nothing was sent,
  so a worker need not count it as an attempt.
- ``DuoPermanentError``: DUO refused the request itself (other 4xx, e.g. 400 with
  ``invalidParams``, 422 Idempotency-Key reused with another payload, 404 unknown melding).
  Retrying cannot help; the worker dead-letters it for a person to look at.

Exactly once: every submit carries the hub's melding id as ``Idempotency-Key``. A retry after
any ambiguous failure (timeout, dropped connection after DUO stored the melding) gets DUO's
stored answer, never a second melding.
"""

from __future__ import annotations

import asyncio
import random
from types import TracebackType
from typing import Any

import httpx
import orjson
from pydantic import TypeAdapter, ValidationError

from verzuimhub_melding.duo.breaker import CircuitBreaker
from verzuimhub_melding.duo.contract import (
    DuoReceipt,
    Intrekking,
    MeldingId,
    Verzuimmelding,
    payload,
)
from verzuimhub_shared.http import http_client
from verzuimhub_shared.logging import get_logger
from verzuimhub_shared.tracing import outgoing_headers

__all__ = [
    "MELDINGEN_PATH",
    "DuoCircuitOpen",
    "DuoClient",
    "DuoError",
    "DuoPermanentError",
    "DuoRetryableError",
    "backoff_delay",
    "intrekking_key",
    "is_retryable_status",
    "retry_delay",
]

log = get_logger(__name__)

MELDINGEN_PATH = "/v1/verzuimmeldingen"

_MELDING_ID: TypeAdapter[str] = TypeAdapter(MeldingId)

#: 4xx answers that say "not now" rather than "never": retry them.
_RETRYABLE_4XX = frozenset({408, 409, 425, 429})


class DuoError(Exception):
    """Base of every failure of a DUO call; ``status`` is DUO's HTTP status when it answered."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DuoRetryableError(DuoError):
    """Try again later with the same melding id; ``retry_after`` is DUO's hint in seconds."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class DuoCircuitOpen(DuoRetryableError):
    """The breaker is open: nothing was sent. ``retry_after`` is when a trial call may go."""


class DuoPermanentError(DuoError):
    """DUO refused the request itself; ``problem`` is its problem+json body when it sent one."""

    def __init__(
        self, message: str, *, status: int | None = None, problem: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.problem = problem or {}


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP error status is worth a retry (5xx, 408, 409, 425, 429)."""
    return status >= 500 or status in _RETRYABLE_4XX


def backoff_delay(
    attempt: int, base: float = 1.0, cap: float = 300.0, rng: random.Random | None = None
) -> float:
    """Exponential backoff with full jitter: uniform in ``[0, min(cap, base * 2**attempt)]``.

    ``attempt`` counts the failed attempts before this wait, from 0. Pure given ``rng``.
    """
    if attempt < 0 or base < 0 or cap < 0:
        raise ValueError("attempt, base and cap must be ≥ 0")
    ceiling = min(cap, base * 2.0 ** min(attempt, 1000))
    return (rng or random).uniform(0.0, ceiling)


def retry_delay(
    error: DuoRetryableError,
    attempt: int,
    base: float = 1.0,
    cap: float = 300.0,
    rng: random.Random | None = None,
) -> float:
    """The wait before the next attempt: the jittered backoff, but never sooner than DUO's
    ``Retry-After`` or the breaker's reopening (capped by ``cap``)."""
    delay = backoff_delay(attempt, base, cap, rng)
    if error.retry_after is not None:
        delay = max(delay, min(cap, error.retry_after))
    return delay


def intrekking_key(melding_id: str) -> str:
    """The Idempotency-Key of the withdrawal of a melding."""
    return f"{melding_id}:intrekking"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date, or absent: the backoff decides


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


class DuoClient:
    """One attempt per call. Use as ``async with DuoClient(url) as duo: await duo.submit(m)``.

    ``client``: an httpx.AsyncClient to use instead of the client's own (tests pass one over
    ``httpx.ASGITransport``); the caller closes it. ``timeout`` bounds each whole call
    (connect, send, wait, read), not only each socket operation.
    """

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.breaker = breaker or CircuitBreaker()
        self._owns_client = client is None
        self._client = client or http_client(
            timeout=httpx.Timeout(timeout, connect=min(3.0, timeout))
        )

    async def __aenter__(self) -> DuoClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def submit(self, melding: Verzuimmelding) -> DuoReceipt:
        """Deliver a melding; the same melding id always gets the same DUO meldingsnummer."""
        receipt = await self._post(MELDINGEN_PATH, payload(melding), key=melding.melding_id)
        log.info(
            "duo_melding_submitted",
            melding_id=melding.melding_id,
            meldingsnummer=receipt.meldingsnummer,
            status=receipt.status.value,
        )
        return receipt

    async def withdraw(self, melding_id: str, intrekking: Intrekking) -> DuoReceipt:
        """Withdraw a melding DUO has registered (status Ingetrokken); repeating is safe."""
        melding_id = _MELDING_ID.validate_python(melding_id)
        receipt = await self._post(
            f"{MELDINGEN_PATH}/{melding_id}/intrekking",
            payload(intrekking),
            key=intrekking_key(melding_id),
        )
        log.info(
            "duo_melding_withdrawn",
            melding_id=melding_id,
            meldingsnummer=receipt.meldingsnummer,
            status=receipt.status.value,
        )
        return receipt

    async def _post(self, path: str, body: dict[str, Any], *, key: str) -> DuoReceipt:
        if not self.breaker.allow():
            raise DuoCircuitOpen(
                "DUO-circuit open: geen verzoek verstuurd", retry_after=self.breaker.retry_after()
            )
        try:
            receipt = await self._attempt(path, body, key)
        except DuoRetryableError as exc:
            # 409: DUO is working on this very key, so it is up.
            if exc.status == 409:
                self.breaker.record_success()
            else:
                self.breaker.record_failure()
            log.warning("duo_call_failed", path_kind=_kind(path), retryable=True, status=exc.status)
            raise
        except DuoPermanentError as exc:
            self.breaker.record_success()  # DUO answered; the request was wrong
            log.warning(
                "duo_call_failed", path_kind=_kind(path), retryable=False, status=exc.status
            )
            raise
        except BaseException:
            # A bug or a cancellation says nothing about DUO: only free a half-open trial slot.
            self.breaker.release()
            raise
        self.breaker.record_success()
        return receipt

    async def _attempt(self, path: str, body: dict[str, Any], key: str) -> DuoReceipt:
        headers = {
            **outgoing_headers(),
            "Idempotency-Key": key,
            "Content-Type": "application/json",
            "Accept": "application/json, application/problem+json",
        }
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._client.post(
                    self.base_url + path, content=orjson.dumps(body), headers=headers
                )
        except TimeoutError:
            raise DuoRetryableError(f"DUO antwoordde niet binnen {self.timeout} s") from None
        except httpx.TimeoutException as exc:
            raise DuoRetryableError(f"time-out bij DUO: {type(exc).__name__}") from None
        except httpx.TransportError as exc:
            # Connection refused, reset or dropped, possibly after DUO stored the melding.
            raise DuoRetryableError(f"verbinding met DUO mislukt: {type(exc).__name__}") from None

        status = response.status_code
        if status >= 400:
            if is_retryable_status(status):
                raise DuoRetryableError(
                    f"DUO antwoordde {status}", status=status, retry_after=_retry_after(response)
                )
            problem = _problem(response)
            raise DuoPermanentError(
                f"DUO weigerde het verzoek ({status}): {problem.get('detail', '')}".rstrip(": "),
                status=status,
                problem=problem,
            )
        if not 200 <= status < 300:
            raise DuoPermanentError(f"onverwacht antwoord van DUO ({status})", status=status)
        try:
            return DuoReceipt.model_validate_json(response.content)
        except ValidationError:
            # DUO accepted but the answer is unreadable: it may have stored the melding, and a
            # retry with the same key returns the stored answer.
            raise DuoRetryableError(
                f"onleesbaar antwoord van DUO ({status})", status=status
            ) from None


def _kind(path: str) -> str:
    return "intrekking" if path.endswith("/intrekking") else "melding"
