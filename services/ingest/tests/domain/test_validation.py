from __future__ import annotations

import itertools
import json
from datetime import date, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from verzuimhub_ingest.domain.catalogue import default_catalogue, parse_catalogue
from verzuimhub_ingest.domain.validation import (
    MINUTES_PER_DAY,
    Problem,
    collect,
    earliest_registration_date,
    elfproef_remainder,
    is_valid_bsn,
    is_valid_onderwijsnummer,
    pgn_kind,
    validate_brin,
    validate_bsn,
    validate_category,
    validate_day_total,
    validate_gemeente_code,
    validate_minutes,
    validate_onderwijsnummer,
    validate_pc4,
    validate_pgn,
    validate_registration_date,
    validate_school,
    validate_vestigingsnummer,
)
from verzuimhub_shared.periods import (
    AGE_BANDS,
    age_band,
    age_band_on,
    age_on,
    iso_week_label,
    school_year_bounds,
    school_year_of,
    school_year_start,
)
from verzuimhub_shared.refdata import sample_refdata

WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)


def _with_check_digit(first_eight: str, remainder: int) -> str | None:
    """Complete 8 digits with the 9th so the elfproef sum leaves ``remainder``; None if the
    required check digit would be 10."""
    partial = sum(w * int(d) for w, d in zip(WEIGHTS, first_eight, strict=False))
    check = (partial - remainder) % 11
    return None if check == 10 else f"{first_eight}{check}"


eight_digits = st.text(alphabet="0123456789", min_size=8, max_size=8)


@st.composite
def bsns(draw: st.DrawFn) -> str:
    number = _with_check_digit(draw(eight_digits), 0)
    assume(number is not None and number != "000000000")
    assert number is not None
    return number


@st.composite
def onderwijsnummers(draw: st.DrawFn) -> str:
    tail = draw(st.text(alphabet="0123456789", min_size=7, max_size=7))
    number = _with_check_digit("1" + tail, 5)
    assume(number is not None)
    assert number is not None
    return number


def single_digit_changes(number: str) -> list[str]:
    return [
        number[:i] + digit + number[i + 1 :]
        for i in range(len(number))
        for digit in "0123456789"
        if digit != number[i]
    ]


# -- BSN -------------------------------------------------------------------------------------


@pytest.mark.parametrize("bsn", ["111222333", "123456782", "999999990", "010000008"])
def test_known_valid_bsns(bsn: str) -> None:
    assert is_valid_bsn(bsn)
    assert validate_bsn(bsn) == []
    assert pgn_kind(bsn) == "bsn"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("123456789", "elfproef"),
        ("111222334", "elfproef"),
        ("12345678", "9 cijfers"),
        ("1234567820", "9 cijfers"),
        ("12345678a", "9 cijfers"),
        (" 111222333", "9 cijfers"),
        ("111222333\n", "9 cijfers"),
        ("111-22-333", "9 cijfers"),
        ("１１１２２２３３３", "9 cijfers"),
        ("", "9 cijfers"),
        ("000000000", "nullen"),
    ],
)
def test_invalid_bsns(value: str, reason: str) -> None:
    assert not is_valid_bsn(value)
    (problem,) = validate_bsn(value, "leerling.bsn")
    assert problem.name == "leerling.bsn"
    assert reason in problem.reason
    assert value.strip() not in problem.reason or not value.strip()


@given(bsns())
def test_generated_bsns_pass(bsn: str) -> None:
    assert is_valid_bsn(bsn)
    assert validate_bsn(bsn) == []
    assert elfproef_remainder(bsn) == 0


@given(bsns())
def test_any_single_digit_change_breaks_a_bsn(bsn: str) -> None:
    for changed in single_digit_changes(bsn):
        assert not is_valid_bsn(changed), changed
        assert validate_bsn(changed) != []


@given(bsns(), st.integers(min_value=0, max_value=7))
def test_swapping_adjacent_digits_breaks_a_bsn(bsn: str, i: int) -> None:
    assume(bsn[i] != bsn[i + 1])
    swapped = bsn[:i] + bsn[i + 1] + bsn[i] + bsn[i + 2 :]
    assert not is_valid_bsn(swapped)


@given(st.text(max_size=12))
def test_bsn_validation_never_raises(value: str) -> None:
    assert (validate_bsn(value) == []) == is_valid_bsn(value)


# -- onderwijsnummer -------------------------------------------------------------------------


def test_known_onderwijsnummer() -> None:
    assert is_valid_onderwijsnummer("101222331")
    assert validate_onderwijsnummer("101222331") == []
    assert pgn_kind("101222331") == "onderwijsnummer"
    assert not is_valid_bsn("101222331")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("100252333", "elfproef"),
        ("111222333", "elfproef"),
        ("201222339", "begint met een 1"),
        ("10122233", "9 cijfers"),
    ],
)
def test_invalid_onderwijsnummers(value: str, reason: str) -> None:
    assert not is_valid_onderwijsnummer(value)
    (problem,) = validate_onderwijsnummer(value, "pgn")
    assert problem.name == "pgn"
    assert reason in problem.reason


@given(onderwijsnummers())
def test_generated_onderwijsnummers_pass_and_are_never_bsns(number: str) -> None:
    assert is_valid_onderwijsnummer(number)
    assert not is_valid_bsn(number)
    assert pgn_kind(number) == "onderwijsnummer"


@given(onderwijsnummers())
def test_any_single_digit_change_breaks_an_onderwijsnummer(number: str) -> None:
    for changed in single_digit_changes(number):
        assert not is_valid_onderwijsnummer(changed), changed


def test_validate_pgn() -> None:
    assert validate_pgn("111222333") == []
    assert validate_pgn("101222331") == []
    assert validate_pgn("123456789") == [
        Problem("pgn", "geen geldig BSN of onderwijsnummer (elfproef)")
    ]
    (problem,) = validate_pgn("1234", "id")
    assert problem.name == "id"
    assert "9 cijfers" in problem.reason
    assert pgn_kind("123456789") is None


def test_elfproef_remainder_needs_nine_digits() -> None:
    with pytest.raises(ValueError, match="9 digits"):
        elfproef_remainder("12345")


# -- school and gemeente ---------------------------------------------------------------------


@pytest.mark.parametrize("brin", ["12AB", "00AA", "99ZZ"])
def test_valid_brin(brin: str) -> None:
    assert validate_brin(brin) == []


@pytest.mark.parametrize("brin", ["12ab", "1AB", "12A1", "123B", "12ABC", "AB12", "", "12AB\n"])
def test_invalid_brin(brin: str) -> None:
    (problem,) = validate_brin(brin, "school.brin")
    assert problem.name == "school.brin"
    assert "2 cijfers en 2 hoofdletters" in problem.reason


@pytest.mark.parametrize(
    ("value", "ok"),
    [("00", True), ("01", True), ("0", False), ("000", False), ("0a", False), ("", False)],
)
def test_vestigingsnummer(value: str, ok: bool) -> None:
    assert (validate_vestigingsnummer(value) == []) is ok


def test_validate_school_against_refdata() -> None:
    refdata = sample_refdata()
    assert validate_school("99AA", "01", refdata) == []
    assert validate_school("99AA", "07", refdata) == [
        Problem("vestiging", "deze BRIN heeft geen vestiging met dit nummer")
    ]
    assert validate_school("00ZZ", "00", refdata) == [Problem("brin", "onbekende BRIN")]
    problems = validate_school("9aa", "x", refdata, brin_field="b", vestiging_field="v")
    assert [p.name for p in problems] == ["b", "v"]


def test_gemeente_code() -> None:
    refdata = sample_refdata()
    assert validate_gemeente_code("GM0363") == []
    assert validate_gemeente_code("GM9901", refdata=refdata) == []
    assert validate_gemeente_code("GM0363", "woongemeente", refdata) == [
        Problem("woongemeente", "onbekende gemeente")
    ]
    for bad in ("gm0363", "GM363", "0363", "GM03631", "GM03a3"):
        (problem,) = validate_gemeente_code(bad, refdata=refdata)
        assert "GM gevolgd door 4 cijfers" in problem.reason


@pytest.mark.parametrize(
    ("value", "ok"),
    [("1234", True), ("9999", True), ("0123", False), ("1234AB", False), ("123", False)],
)
def test_pc4(value: str, ok: bool) -> None:
    assert (validate_pc4(value) == []) is ok


# -- category --------------------------------------------------------------------------------


def test_validate_category() -> None:
    catalogue = default_catalogue()
    assert validate_category("spijbelen", catalogue) == []
    assert validate_category("griep", catalogue, "reden") == [
        Problem("reden", "onbekende categorie (catalogus 2026.1)")
    ]
    retired = parse_catalogue(
        json.dumps(
            {
                "version": "2027.1",
                "categories": [
                    {
                        "code": "ziekte",
                        "label": "Ziekte",
                        "authorised": True,
                        "participation": False,
                        "group": "geoorloofd",
                    },
                    {
                        "code": "te_laat",
                        "label": "Te laat",
                        "authorised": False,
                        "participation": False,
                        "group": "ongeoorloofd",
                        "retired": True,
                    },
                ],
            }
        )
    )
    assert validate_category("te_laat", retired) == [
        Problem("categorie", "categorie vervallen in catalogus 2027.1")
    ]


# -- registration date, minutes --------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "earliest"),
    [
        (date(2025, 11, 25), date(2024, 8, 1)),
        (date(2025, 8, 1), date(2024, 8, 1)),
        (date(2025, 7, 31), date(2023, 8, 1)),
        (date(2024, 2, 29), date(2022, 8, 1)),
    ],
)
def test_earliest_registration_date(today: date, earliest: date) -> None:
    assert earliest_registration_date(today) == earliest
    assert validate_registration_date(earliest, today) == []
    assert validate_registration_date(today, today) == []
    (problem,) = validate_registration_date(earliest - timedelta(days=1), today)
    assert problem == Problem("datum", f"de datum ligt voor {earliest}, het vorige schooljaar")


def test_registration_date_not_in_the_future() -> None:
    today = date(2025, 11, 25)
    assert validate_registration_date(today + timedelta(days=1), today, "dag") == [
        Problem("dag", "de datum ligt in de toekomst")
    ]


@pytest.mark.parametrize(
    ("minutes", "ok"),
    [(1, True), (50, True), (600, True), (0, False), (-5, False), (601, False), (True, False)],
)
def test_minutes(minutes: int, ok: bool) -> None:
    assert (validate_minutes(minutes) == []) is ok


def test_minutes_must_be_an_integer() -> None:
    (problem,) = validate_minutes(12.5, "duur")  # type: ignore[arg-type]
    assert problem == Problem("duur", "het aantal minuten is een geheel getal")


@pytest.mark.parametrize(
    ("existing", "new", "ok"),
    [(0, 600, True), (840, 600, True), (841, 600, False), (1440, 1, False), (1439, 1, True)],
)
def test_day_total(existing: int, new: int, ok: bool) -> None:
    assert (validate_day_total(existing, new) == []) is ok
    assert MINUTES_PER_DAY == 1440


def test_collect_keeps_every_problem_in_order() -> None:
    problems = collect(
        validate_pgn("123", "pgn"),
        validate_brin("x", "brin"),
        validate_minutes(0, "minuten"),
        validate_vestigingsnummer("00"),
    )
    assert [p.name for p in problems] == ["pgn", "brin", "minuten"]


# -- ages ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (date(2010, 5, 17), date(2010, 5, 17), 0),
        (date(2010, 5, 17), date(2025, 5, 16), 14),
        (date(2010, 5, 17), date(2025, 5, 17), 15),
        (date(2008, 2, 29), date(2009, 2, 28), 0),
        (date(2008, 2, 29), date(2009, 3, 1), 1),
        (date(2008, 2, 29), date(2012, 2, 29), 4),
        (date(2007, 12, 31), date(2008, 1, 1), 0),
    ],
)
def test_age_on(born: date, on: date, age: int) -> None:
    assert age_on(born, on) == age


def test_age_on_before_birth() -> None:
    with pytest.raises(ValueError, match="before the birth date"):
        age_on(date(2020, 1, 2), date(2020, 1, 1))


@pytest.mark.parametrize(
    ("age", "band"),
    [
        (0, "0-3"),
        (3, "0-3"),
        (4, "4-5"),
        (5, "4-5"),
        (6, "6-11"),
        (11, "6-11"),
        (12, "12-15"),
        (15, "12-15"),
        (16, "16-17"),
        (17, "16-17"),
        (18, "18-22"),
        (22, "18-22"),
        (23, "23+"),
        (67, "23+"),
    ],
)
def test_age_band(age: int, band: str) -> None:
    assert age_band(age) == band


def test_age_band_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        age_band(-1)


def test_age_bands_are_contiguous() -> None:
    for (_, _, high), (_, low, _) in itertools.pairwise(AGE_BANDS):
        assert high is not None
        assert low == high + 1
    assert AGE_BANDS[0][1] == 0
    assert AGE_BANDS[-1][2] is None


@given(st.dates(max_value=date(2100, 1, 1)), st.integers(min_value=0, max_value=40_000))
def test_age_is_monotone_and_matches_its_band(born: date, days: int) -> None:
    on = born + timedelta(days=days)
    age = age_on(born, on)
    assert 0 <= age <= days // 365
    assert age_on(born, on + timedelta(days=1)) >= age
    assert age_band_on(born, on) == age_band(age)


# -- periods ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "label"),
    [
        (date(2025, 7, 31), "2024-2025"),
        (date(2025, 8, 1), "2025-2026"),
        (date(2025, 12, 31), "2025-2026"),
        (date(2026, 1, 1), "2025-2026"),
    ],
)
def test_school_year_of(day: date, label: str) -> None:
    assert school_year_of(day) == label


def test_school_year_bounds() -> None:
    assert school_year_bounds("2025-2026") == (date(2025, 8, 1), date(2026, 7, 31))
    for bad in ("2025-2027", "2025/2026", "25-26", "2025-2026 "):
        with pytest.raises(ValueError, match="schooljaar"):
            school_year_bounds(bad)


@given(st.dates(min_value=date(1901, 1, 1), max_value=date(9998, 1, 1)))
def test_every_day_lies_in_its_school_year(day: date) -> None:
    start, end = school_year_bounds(school_year_of(day))
    assert start <= day <= end
    assert start == school_year_start(day)
    assert school_year_of(end + timedelta(days=1)) != school_year_of(day)


@pytest.mark.parametrize(
    ("day", "label"),
    [
        (date(2025, 11, 19), "2025-W47"),
        (date(2025, 11, 17), "2025-W47"),
        (date(2025, 11, 23), "2025-W47"),
        (date(2025, 12, 29), "2026-W01"),
        (date(2027, 1, 1), "2026-W53"),
        (date(2021, 1, 3), "2020-W53"),
        (date(2025, 1, 6), "2025-W02"),
    ],
)
def test_iso_week_label(day: date, label: str) -> None:
    assert iso_week_label(day) == label
