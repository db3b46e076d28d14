"""``events.struct_of``: a contract model as a msgspec struct, which a consumer decodes with
first and falls back from to the model. The fallback is only sound if the struct never
accepts what the model refuses, and gives the model's values when it accepts."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError, field_validator

from verzuimhub_shared import events as ev

CONTRACTS = [
    model
    for model in vars(ev).values()
    if isinstance(model, type) and issubclass(model, ev.Contract) and model is not ev.Contract
]

#: Values of every JSON kind, including the near misses pydantic's lax mode coerces.
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 0.0, 1.0, 2.5, 1e308, -0.0]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(
        [
            "5",
            "1.0",
            "true",
            "false",
            "2026-03-02",
            "2026-02-30",
            "2026-03-02T00:00:00",
            "20260302",
            "po",
            "vo",
            "klokuur",
            "ongeoorloofd",
            "geoorloofd",
            "",
            "\x00",
        ]
    ),
    st.dates().map(date.isoformat),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _valid(model: type[BaseModel]) -> dict[str, Any]:
    """A JSON object the model accepts, by its wire names."""
    samples: dict[Any, Any] = {str: "x", int: 3, float: 2.5, bool: True, date: "2026-03-02"}
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        args = getattr(annotation, "__args__", ())
        if annotation in samples:
            value = samples[annotation]
        elif args and all(isinstance(a, str) for a in args):  # a Literal
            value = args[0]
        else:  # X | None
            value = samples[next(a for a in args if a is not type(None))]
        out[info.alias or name] = value
    return out


@st.composite
def payloads(draw: st.DrawFn) -> tuple[type[BaseModel], bytes]:
    model = draw(st.sampled_from(CONTRACTS))
    payload = _valid(model)
    for key in draw(st.lists(st.sampled_from(sorted(payload)), max_size=3, unique=True)):
        action = draw(st.sampled_from(["junk", "drop", "python name"]))
        if action == "junk":
            payload[key] = draw(JUNK)
        elif action == "drop":
            del payload[key]
        else:
            names = {info.alias or n: n for n, info in model.model_fields.items()}
            payload[names[key]] = payload.pop(key)
    if draw(st.booleans()):
        payload[draw(st.sampled_from(["notitie", "reden", "extra"]))] = draw(JUNK)
    return model, json.dumps(payload).encode()  # stdlib: big ints, lone surrogates escaped


@settings(max_examples=1500, deadline=None)
@given(payloads())
def test_the_struct_accepts_only_what_the_model_accepts_with_the_same_values(
    case: tuple[type[BaseModel], bytes],
) -> None:
    model, content = case
    try:
        decoded = msgspec.json.decode(content, type=ev.struct_of(model))
    except msgspec.ValidationError:
        return  # the consumer falls back to the model, whatever it decides
    validated = model.model_validate_json(content)  # raises if the struct was too lenient
    as_struct = msgspec.structs.asdict(decoded)
    assert as_struct == dict(validated)
    assert [type(v) for v in as_struct.values()] == [type(v) for v in dict(validated).values()]


def test_each_contract_has_a_struct_with_its_fields_and_wire_names() -> None:
    for model in CONTRACTS:
        struct = ev.struct_of(model)
        assert struct.__struct_fields__ == tuple(model.model_fields)
        assert struct.__struct_encode_fields__ == tuple(
            info.alias for info in model.model_fields.values()
        )
        assert msgspec.json.decode(orjson.dumps(_valid(model)), type=struct) is not None
        assert ev.struct_of(model) is struct  # made once


def test_a_valid_event_decodes_to_the_models_values() -> None:
    content = orjson.dumps(_valid(ev.RegistratieVoorMelding) | {"aantalEenheden": 4})
    decoded: Any = msgspec.json.decode(content, type=ev.struct_of(ev.RegistratieVoorMelding))
    model = ev.RegistratieVoorMelding.model_validate_json(content)
    assert msgspec.structs.asdict(decoded) == dict(model)
    assert decoded.aantal_eenheden == 4.0
    assert isinstance(decoded.aantal_eenheden, float)


class _Checked(ev.Contract):
    code: str

    @field_validator("code")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


class _Constrained(ev.Contract):
    code: str = Field(max_length=4)


class _Nested(ev.Contract):
    inner: ev.RegistratieIngetrokkenVoorSwv


class _Listed(ev.Contract):
    codes: list[str]


@pytest.mark.parametrize("model", [_Checked, _Constrained, _Nested, _Listed])
def test_a_model_whose_checks_msgspec_would_skip_is_refused(model: type[BaseModel]) -> None:
    """A struct of such a model would accept what the model refuses (or changes)."""
    with pytest.raises(TypeError):
        ev.struct_of(model)


def test_the_refusals_are_real() -> None:
    """What the test above guards against: each of these models refuses or changes a value
    a naive struct would take as it is."""
    with pytest.raises(ValidationError):
        _Constrained.model_validate({"code": "toolong"})
    assert _Checked.model_validate({"code": "ab"}).code == "AB"
