"""The DUO side of the melding service: the contract, the client and its circuit breaker.

The outbox worker uses::

    async with DuoClient(settings.duo_url) as duo:
        try:
            receipt = await duo.submit(melding)          # DuoReceipt
        except DuoCircuitOpen as exc:                    # nothing sent; wait exc.retry_after
            ...
        except DuoRetryableError as exc:                 # retry later, same melding id
            delay = retry_delay(exc, attempt)
        except DuoPermanentError as exc:                 # dead-letter; exc.problem says why
            ...
"""

from verzuimhub_melding.duo.breaker import BreakerState, CircuitBreaker
from verzuimhub_melding.duo.client import (
    DuoCircuitOpen,
    DuoClient,
    DuoError,
    DuoPermanentError,
    DuoRetryableError,
    backoff_delay,
    intrekking_key,
    is_retryable_status,
    retry_delay,
)
from verzuimhub_melding.duo.contract import (
    INTREKKING_FIELDS,
    LEGAL_FIELDS,
    Contactpersoon,
    DuoReceipt,
    DuoStatus,
    GemeentelijkeActie,
    Intrekking,
    IntrekkingReden,
    Leerling,
    Leslocatie,
    OngeoorloofdeReden,
    Prioriteit,
    Verzuimdag,
    Verzuimmelding,
    Verzuimsoort,
    field_paths,
    payload,
)

__all__ = [
    "INTREKKING_FIELDS",
    "LEGAL_FIELDS",
    "BreakerState",
    "CircuitBreaker",
    "Contactpersoon",
    "DuoCircuitOpen",
    "DuoClient",
    "DuoError",
    "DuoPermanentError",
    "DuoReceipt",
    "DuoRetryableError",
    "DuoStatus",
    "GemeentelijkeActie",
    "Intrekking",
    "IntrekkingReden",
    "Leerling",
    "Leslocatie",
    "OngeoorloofdeReden",
    "Prioriteit",
    "Verzuimdag",
    "Verzuimmelding",
    "Verzuimsoort",
    "backoff_delay",
    "field_paths",
    "intrekking_key",
    "is_retryable_status",
    "payload",
    "retry_delay",
]
