"""Melding's decoder of ingest's feed: straight from the response bytes into structs of the
contract models (ADR 0020), with the same outcome as parsing first and validating with the
models after (the general path, which also takes batches holding a type melding does not
apply, or an event only the models' lax validation takes)."""

from __future__ import annotations

import json
from datetime import date
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from verzuimhub_melding.service import (
    IngestBatch,
    decode_ingest_events,
    decode_ingest_feed,
    decode_ingest_feed_in_turns,
)
from verzuimhub_shared import events as ev
from verzuimhub_shared.crypto import Pseudonymiser
from verzuimhub_shared.testing.events import ingetrokken_voor_melding, voor_melding
from verzuimhub_shared.testing.loop import turns_given

CTX: Any = SimpleNamespace(pseudonymiser=Pseudonymiser("test-secret"))


def put(position: int, registratie_id: str, pgn: str, versie: int = 1) -> dict[str, Any]:
    data = voor_melding(registratie_id, pgn, versie=versie, datum=date(2026, 3, position % 28 + 1))
    return envelope(position, ev.REGISTRATIE_VASTGELEGD, data)


def gone(position: int, registratie_id: str) -> dict[str, Any]:
    return envelope(position, ev.REGISTRATIE_INGETROKKEN, ingetrokken_voor_melding(registratie_id))


def envelope(position: int, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"e{position}",
        "source": ev.SOURCE_INGEST,
        "type": kind,
        "time": "2026-03-02T08:00:00Z",
        "datacontenttype": "application/json",
        "position": position,
        "data": data,
    }


def served(events: list[dict[str, Any]]) -> bytes:
    """A page as ingest serves it: one event per line."""
    return b"[" + b",\n".join(orjson.dumps(e) for e in events) + b"]"


def both(events: list[dict[str, Any]]) -> tuple[Any, IngestBatch]:
    """The one-pass decoding and the general path's batch."""
    content = served(events)
    page = decode_ingest_feed(CTX, content)
    assert decode_ingest_feed(CTX, orjson.dumps(events)) == page  # not cut into lines
    return page, decode_ingest_events(CTX, orjson.loads(content))


def test_a_batch_decodes_to_the_last_state_per_registration_in_feed_order() -> None:
    events = [
        put(11, "r1", "111111110"),
        put(12, "r2", "222222220"),
        gone(13, "r1"),
        put(14, "r3", "111111110"),
        put(15, "r3", "111111110", versie=2),
    ]
    page, general = both(events)
    assert (page.count, page.last_position) == (5, 15)
    assert page.batch == general
    assert {rid: (op, data.versie) for rid, (op, data) in page.batch.final.items()} == {
        "r1": ("del", 2),
        "r2": ("put", 1),
        "r3": ("put", 2),
    }
    assert page.batch.link == {
        pgn: CTX.pseudonymiser.pseudonym(pgn, "melding-link") for pgn in ("111111110", "222222220")
    }


def test_a_type_melding_does_not_apply_is_skipped_and_still_counted() -> None:
    newer = envelope(22, "nl.verzuimhub.registratie.verplaatst.v1", {"registratieId": "r9"})
    page, general = both([put(21, "r1", "111111110"), newer])
    assert (page.count, page.last_position) == (2, 22)  # the cursor moves past it
    assert page.batch == general
    assert list(page.batch.final) == ["r1"]


def test_an_empty_batch() -> None:
    page, general = both([])
    assert (page.count, page.batch) == (0, general)


@pytest.mark.parametrize(
    "spoil",
    [
        lambda data: data.pop("pgn"),  # a field the law needs is missing
        lambda data: data.update(notitie="vrij"),  # a field the contract does not have
        lambda data: data.update(soort="onbekend"),  # a value outside the contract
    ],
)
def test_a_malformed_event_is_refused(spoil: Any) -> None:
    bad = put(32, "r2", "222222220")
    spoil(bad["data"])
    content = served([put(31, "r1", "111111110"), put(33, "r3", "333333330"), bad])
    with pytest.raises(ValidationError):
        decode_ingest_feed(CTX, content)
    with pytest.raises(ValidationError):
        decode_ingest_events(CTX, orjson.loads(content))


def test_a_page_framed_otherwise_decodes_the_same() -> None:
    """Pretty-printed, with line breaks inside its events."""
    events = [put(51, "r1", "111111110"), gone(52, "r1"), put(53, "r2", "222222220")]
    pretty = json.dumps(events, indent=1).encode()
    assert b",\n" in pretty
    assert decode_ingest_feed(CTX, pretty) == decode_ingest_feed(CTX, served(events))


def test_known_types_take_the_one_pass_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A page of known types never becomes dicts: were the structs to refuse what ingest
    serves, every batch would quietly take the general path (and its CPU)."""
    content = orjson.dumps([put(41, "r1", "111111110"), gone(42, "r1")])

    def general_path(_: bytes) -> None:
        raise AssertionError("parsed as dicts")

    monkeypatch.setattr(orjson, "loads", general_path)
    assert decode_ingest_feed(CTX, content).count == 2
    assert decode_ingest_feed(CTX, served([put(41, "r1", "111111110"), gone(42, "r1")])).count == 2


def test_an_event_only_pydantic_would_coerce_is_decoded_by_the_contract_model() -> None:
    """The one-pass path (msgspec) refuses a version sent as text, or a field by its Python
    name; the contract model takes both (lax), as it always did. The page takes the general
    path and decodes to the same structs, with the model's values."""
    coerced = put(62, "r2", "222222220")
    coerced["data"]["versie"] = "3"
    snake = put(63, "r3", "333333330")
    snake["data"]["luxe_verzuim"] = snake["data"].pop("luxeVerzuim")
    events = [put(61, "r1", "111111110"), coerced, snake]
    page, general = both(events)
    assert page.batch == general
    assert page.batch.final["r2"][1].versie == 3
    assert page.batch.final["r3"][1].luxe_verzuim is False
    plain, _ = both([put(61, "r1", "111111110")])
    assert type(page.batch.final["r1"][1]) is type(plain.batch.final["r1"][1])


async def test_a_large_page_decodes_the_same_in_turns_of_the_event_loop() -> None:
    """In parts and pseudonyms a few hundred at a time, with turns of the event loop
    between them (ADR 0023): the same page as in one piece, and other tasks run
    meanwhile. A page framed otherwise, or one taking the general path, the same too."""
    events = [put(n, f"r{n}", f"{100_000_000 + n}") for n in range(1, 1501)]
    events[700:702] = [gone(701, "r3"), put(702, "r3", "100000003", versie=2)]
    content = served(events)
    async with turns_given() as turns:
        page = await decode_ingest_feed_in_turns(CTX, content)
    seen = turns()
    assert page == decode_ingest_feed(CTX, content)
    assert (page.count, page.last_position, len(page.batch.link)) == (1500, 1500, 1498)
    assert seen >= len(content) // (256 * 1024) + 1498 // 100  # parts, then pseudonyms
    newer = envelope(1501, "nl.verzuimhub.registratie.verplaatst.v1", {"registratieId": "r9"})
    for other in (json.dumps(events, indent=1).encode(), served([*events, newer])):
        assert await decode_ingest_feed_in_turns(CTX, other) == decode_ingest_feed(CTX, other)
