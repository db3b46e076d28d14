"""The DUO contract carries exactly the legal fields of a verzuimmelding, nothing more."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic.alias_generators import to_snake

from verzuimhub_melding.duo.contract import (
    INTREKKING_FIELDS,
    LEGAL_FIELDS,
    DuoReceipt,
    Intrekking,
    OngeoorloofdeReden,
    Prioriteit,
    Verzuimmelding,
    Verzuimsoort,
    field_paths,
    is_valid_pgn,
    payload,
)

MeldingData = Callable[..., dict[str, Any]]

#: Every object in a melding, by where it sits in the JSON (``()`` is the melding itself).
CONTAINERS: list[tuple[str | int, ...]] = [
    (),
    ("leerling",),
    ("gemeentelijkeActie",),
    ("leslocatie",),
    ("contactpersoon",),
    ("verzuimdagen", 0),
]


def _at(data: dict[str, Any], where: tuple[str | int, ...]) -> dict[str, Any]:
    node: Any = data
    for step in where:
        node = node[step]
    assert isinstance(node, dict)
    return node


def _errors(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        Verzuimmelding.model_validate(data)
    return [(".".join(str(p) for p in e["loc"]), e["type"]) for e in caught.value.errors()]


def test_a_full_melding_serialises_to_exactly_the_legal_fields(melding_data: MeldingData) -> None:
    melding = Verzuimmelding.model_validate(melding_data())
    body = payload(melding)
    assert field_paths(body) == LEGAL_FIELDS
    assert Verzuimmelding.model_validate(body) == melding


def test_optional_fields_are_left_out_when_absent(melding_data: MeldingData) -> None:
    data = melding_data(
        vermoedelijkeReden=None,
        telefoonLeerlingOfOuder=None,
        gemeentelijkeActie={"gewenst": False},
    )
    body = payload(Verzuimmelding.model_validate(data))
    assert "vermoedelijkeReden" not in body
    assert "telefoonLeerlingOfOuder" not in body
    assert body["gemeentelijkeActie"] == {"gewenst": False}


def test_python_names_work_too(make_melding: Callable[..., Verzuimmelding]) -> None:
    melding = make_melding()
    rebuilt = Verzuimmelding(**melding.model_dump())
    assert rebuilt == melding


@pytest.mark.parametrize("where", CONTAINERS, ids=lambda w: ".".join(map(str, w)) or "melding")
def test_an_unknown_field_is_rejected_at_every_level(
    melding_data: MeldingData, where: tuple[str | int, ...]
) -> None:
    data = copy.deepcopy(melding_data())
    _at(data, where)["opmerking"] = "mag nooit mee"
    path = ".".join(map(str, (*where, "opmerking")))
    assert _errors(data) == [(path, "extra_forbidden")]


@pytest.mark.parametrize(
    "field", ["geslachtsnaam", "voornamen", "geslacht", "adres", "postcode", "bsn", "naam"]
)
@pytest.mark.parametrize("where", [(), ("leerling",)], ids=["melding", "leerling"])
def test_names_and_addresses_are_never_accepted(
    melding_data: MeldingData, field: str, where: tuple[str, ...]
) -> None:
    data = copy.deepcopy(melding_data())
    _at(data, where)[field] = "x"
    assert ("extra_forbidden") in {kind for _, kind in _errors(data)}


@pytest.mark.parametrize("field", ["reden", "categorie", "toelichting", "notitie"])
def test_a_verzuimdag_never_carries_a_reason_or_note(melding_data: MeldingData, field: str) -> None:
    data = copy.deepcopy(melding_data())
    data["verzuimdagen"][1][field] = "ziekte"
    assert _errors(data) == [(f"verzuimdagen.1.{field}", "extra_forbidden")]


@pytest.mark.parametrize(
    "reden", ["ziekte", "medisch_bezoek", "godsdienst", "schorsing", "verlof_vakantie"]
)
def test_the_presumed_reason_is_an_unauthorised_category_only(
    melding_data: MeldingData, reden: str
) -> None:
    assert _errors(melding_data(vermoedelijkeReden=reden)) == [("vermoedelijkeReden", "enum")]


def test_every_unauthorised_category_and_verzuimsoort_is_accepted(
    melding_data: MeldingData,
) -> None:
    assert {r.value for r in OngeoorloofdeReden} == {
        "te_laat",
        "spijbelen",
        "luxe_verzuim",
        "ongeoorloofd_overig",
    }
    assert {s.value for s in Verzuimsoort} == {"V3", "V4", "LRV", "RMC", "L", "O"}
    for reden in OngeoorloofdeReden:
        for soort in Verzuimsoort:
            Verzuimmelding.model_validate(
                melding_data(vermoedelijkeReden=reden.value, verzuimsoort=soort.value)
            )


@pytest.mark.parametrize("actie", ["", "   ", None])
def test_the_action_already_taken_is_required(melding_data: MeldingData, actie: Any) -> None:
    assert [loc for loc, _ in _errors(melding_data(ondernomenActie=actie))] == ["ondernomenActie"]
    data = melding_data()
    del data["ondernomenActie"]
    assert _errors(data) == [("ondernomenActie", "missing")]


@pytest.mark.parametrize(
    "actie",
    [
        {"gewenst": True},
        {"gewenst": False, "prioriteit": "hoog"},
        {"gewenst": True, "prioriteit": "x"},
    ],
)
def test_a_priority_comes_with_wanted_municipal_action_only(
    melding_data: MeldingData, actie: dict[str, Any]
) -> None:
    assert [loc for loc, _ in _errors(melding_data(gemeentelijkeActie=actie))] == [
        "gemeentelijkeActie" + (".prioriteit" if actie.get("prioriteit") == "x" else "")
    ]


@pytest.mark.parametrize("pgn", ["111222333", "101222331"])
def test_a_bsn_or_an_onderwijsnummer_identifies_the_pupil(
    melding_data: MeldingData, pgn: str
) -> None:
    data = melding_data(leerling={"pgn": pgn, "geboortedatum": "2011-03-14"})
    assert Verzuimmelding.model_validate(data).leerling.pgn == pgn


@pytest.mark.parametrize("pgn", ["111222334", "000000000", "12345678", "1112223333", "abcdefghi"])
def test_an_invalid_pgn_is_rejected_without_echoing_it(melding_data: MeldingData, pgn: str) -> None:
    data = melding_data(leerling={"pgn": pgn, "geboortedatum": "2011-03-14"})
    with pytest.raises(ValidationError) as caught:
        Verzuimmelding.model_validate(data)
    (error,) = caught.value.errors(include_input=False)
    assert error["loc"] == ("leerling", "pgn")
    assert pgn not in str(error["msg"])
    assert not is_valid_pgn(pgn)


@pytest.mark.parametrize(
    ("overrides", "location"),
    [
        ({"startkwalificatie": "true"}, "startkwalificatie"),
        ({"alleLessenVerzuimd": 1}, "alleLessenVerzuimd"),
        ({"begindatum": 20250113}, "begindatum"),
        ({"einddatum": "2025-02-04T00:00:00Z"}, "einddatum"),
        ({"woongemeente": "0363"}, "woongemeente"),
        ({"leslocatie": {"brin": "12ab", "vestigingsnummer": "01"}}, "leslocatie.brin"),
        ({"verzuimsoort": "16uur"}, "verzuimsoort"),
        ({"meldingId": "../x"}, "meldingId"),
        ({"telefoonLeerlingOfOuder": "bel maar"}, "telefoonLeerlingOfOuder"),
        ({"verzuimdagen": []}, "verzuimdagen"),
        (
            {"verzuimdagen": [{"datum": "2025-01-13", "uren": "6", "geoorloofd": False}]},
            "verzuimdagen.0.uren",
        ),
        (
            {"verzuimdagen": [{"datum": "2025-01-13", "uren": 0, "geoorloofd": False}]},
            "verzuimdagen.0.uren",
        ),
        (
            {"verzuimdagen": [{"datum": "2025-01-13", "uren": 25, "geoorloofd": False}]},
            "verzuimdagen.0.uren",
        ),
    ],
)
def test_values_are_checked_strictly(
    melding_data: MeldingData, overrides: dict[str, Any], location: str
) -> None:
    assert [loc for loc, _ in _errors(melding_data(**overrides))] == [location]


@pytest.mark.parametrize(
    "overrides",
    [
        {"begindatum": "2025-02-05"},
        {
            "verzuimdagen": [
                {"datum": "2025-01-13", "uren": 6.0, "geoorloofd": False},
                {"datum": "2025-01-13", "uren": 1.0, "geoorloofd": True},
            ]
        },
        {"verzuimdagen": [{"datum": "2025-02-05", "uren": 6.0, "geoorloofd": False}]},
    ],
    ids=["begin-after-end", "duplicate-day", "day-after-end"],
)
def test_dates_are_consistent(melding_data: MeldingData, overrides: dict[str, Any]) -> None:
    assert [loc for loc, _ in _errors(melding_data(**overrides))] == [""]


def test_intrekking_and_receipt_forbid_unknown_fields() -> None:
    assert field_paths(payload(Intrekking(reden="onterecht_gemeld"))) == INTREKKING_FIELDS
    with pytest.raises(ValidationError):
        Intrekking.model_validate({"reden": "onterecht_gemeld", "toelichting": "was ziek"})
    with pytest.raises(ValidationError):
        Intrekking.model_validate({"reden": "was ziek"})
    receipt = {
        "meldingsnummer": "DUO-1",
        "meldingId": "m-1",
        "status": "Geregistreerd",
        "tijdstip": "2025-02-05T10:00:00+01:00",
    }
    assert DuoReceipt.model_validate(receipt).status == "Geregistreerd"
    with pytest.raises(ValidationError):
        DuoReceipt.model_validate(receipt | {"extra": 1})
    with pytest.raises(ValidationError):  # a time without a zone
        DuoReceipt.model_validate(receipt | {"tijdstip": "2025-02-05T10:00:00"})


# -- property-based --------------------------------------------------------------------------

_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2)


@st.composite
def pgns(draw: st.DrawFn) -> str:
    digits = draw(st.lists(st.integers(0, 9), min_size=8, max_size=8))
    onderwijsnummer = draw(st.booleans())
    if onderwijsnummer:
        digits[0] = 1
    target = 5 if onderwijsnummer else 0
    # sum(w*d) - last ≡ target (mod 11)  →  last ≡ sum(w*d) - target
    last = (sum(w * d for w, d in zip(_WEIGHTS, digits, strict=True)) - target) % 11
    pgn = "".join(map(str, digits)) + str(last)
    return draw(st.just(pgn).filter(lambda p: last < 10 and is_valid_pgn(p)))


_text = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != "")
_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
_phone = st.from_regex(r"\A0[0-9]{2}-[0-9]{7}\Z")


@st.composite
def meldingen(draw: st.DrawFn) -> dict[str, Any]:
    einddatum = draw(st.dates(date(2020, 8, 1), date(2030, 7, 31)))
    begindatum = einddatum - timedelta(days=draw(st.integers(0, 60)))
    offsets = draw(st.lists(st.integers(0, 120), min_size=1, max_size=15, unique=True))
    gewenst = draw(st.booleans())
    data: dict[str, Any] = {
        "meldingId": draw(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z")),
        "woongemeente": draw(st.from_regex(r"\AGM[0-9]{4}\Z")),
        "leerling": {
            "pgn": draw(pgns()),
            "geboortedatum": draw(st.dates(date(1995, 1, 1), date(2020, 1, 1))).isoformat(),
        },
        "startkwalificatie": draw(st.booleans()),
        "begindatum": begindatum.isoformat(),
        "einddatum": einddatum.isoformat(),
        "verzuimsoort": draw(st.sampled_from(Verzuimsoort)).value,
        "alleLessenVerzuimd": draw(st.booleans()),
        "ondernomenActie": draw(_text),
        "gemeentelijkeActie": {"gewenst": gewenst}
        | ({"prioriteit": draw(st.sampled_from(Prioriteit)).value} if gewenst else {}),
        "leslocatie": {
            "brin": draw(st.from_regex(r"\A[0-9]{2}[A-Z]{2}\Z")),
            "vestigingsnummer": draw(st.from_regex(r"\A[0-9]{2}\Z")),
        },
        "contactpersoon": {
            "naam": draw(_text),
            "functie": draw(_text),
            "telefoon": draw(_phone),
            "email": f"{draw(_word)}@{draw(_word)}.nl",
        },
        "verzuimdagen": [
            {
                "datum": (einddatum - timedelta(days=offset)).isoformat(),
                "uren": draw(st.floats(0.25, 24, allow_nan=False)),
                "geoorloofd": draw(st.booleans()),
            }
            for offset in offsets
        ],
    }
    if draw(st.booleans()):
        data["vermoedelijkeReden"] = draw(st.sampled_from(OngeoorloofdeReden)).value
    if draw(st.booleans()):
        data["telefoonLeerlingOfOuder"] = draw(_phone)
    return data


@settings(max_examples=150, deadline=None)
@given(meldingen())
def test_serialised_meldingen_contain_only_legal_fields(data: dict[str, Any]) -> None:
    melding = Verzuimmelding.model_validate(data)
    body = payload(melding)
    assert field_paths(body) <= LEGAL_FIELDS
    assert Verzuimmelding.model_validate(body) == melding


@settings(max_examples=100, deadline=None)
@given(meldingen(), st.sampled_from(CONTAINERS), st.text(min_size=1, max_size=20))
def test_any_extra_key_anywhere_is_rejected(
    data: dict[str, Any], where: tuple[str | int, ...], key: str
) -> None:
    node = _at(data, where)
    known = {path.rsplit(".", 1)[-1].removesuffix("[]") for path in LEGAL_FIELDS}
    known |= {to_snake(name) for name in known}  # python names are accepted too
    if key in node or key in known:
        return
    node[key] = "x"
    with pytest.raises(ValidationError):
        Verzuimmelding.model_validate(data)
