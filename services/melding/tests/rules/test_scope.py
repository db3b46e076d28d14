"""Age scope of the meldingen."""

from __future__ import annotations

from datetime import date

import pytest

from verzuimhub_melding.rules import (
    Pupil,
    RulesConfig,
    Sector,
    age_on,
    in_leerplicht_scope,
    in_rmc_scope,
    in_v4_scope,
    leerplicht_start,
)

D = date


@pytest.mark.parametrize(
    ("born", "start"),
    [
        (D(2019, 3, 15), D(2024, 4, 1)),
        (D(2019, 12, 5), D(2025, 1, 1)),  # December birthday: January of the next year
        (D(2020, 2, 29), D(2025, 4, 1)),  # turns 5 on 1 March 2025
        (D(2019, 4, 30), D(2024, 5, 1)),
    ],
)
def test_leerplicht_start(born: date, start: date) -> None:
    assert leerplicht_start(born) == start


def test_age_on() -> None:
    assert age_on(D(2006, 9, 11), D(2024, 9, 10)) == 17
    assert age_on(D(2006, 9, 11), D(2024, 9, 11)) == 18
    assert age_on(D(2004, 2, 29), D(2022, 2, 28)) == 17
    assert age_on(D(2004, 2, 29), D(2022, 3, 1)) == 18


def test_scopes() -> None:
    pupil = Pupil(D(2006, 9, 11), Sector.MBO, "GM0363")
    config = RulesConfig(v4_gemeenten=frozenset({"GM0363"}))
    assert in_leerplicht_scope(pupil, D(2024, 9, 10))
    assert not in_leerplicht_scope(pupil, D(2024, 9, 11))
    assert in_rmc_scope(pupil, D(2024, 9, 11))
    assert in_v4_scope(pupil, D(2024, 9, 11), config)
    assert not in_v4_scope(pupil, D(2024, 9, 11), RulesConfig())
    assert not in_rmc_scope(pupil, D(2029, 9, 11))  # 23
    qualified = Pupil(D(2007, 9, 11), Sector.MBO, startkwalificatie=True)
    assert in_leerplicht_scope(qualified, D(2023, 9, 10))  # 15: still leerplichtig
    assert not in_leerplicht_scope(qualified, D(2023, 9, 11))  # 16 with startkwalificatie
    assert not in_rmc_scope(qualified, D(2026, 1, 1))


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="threshold"):
        RulesConfig(threshold_minutes=0)
    with pytest.raises(ValueError, match="window_lesweken"):
        RulesConfig(window_lesweken=0)
    with pytest.raises(ValueError, match="RMC"):
        RulesConfig(rmc_lesweken_per_bestuur={"x": 0})
    with pytest.raises(ValueError, match="herhaal"):
        RulesConfig(herhaal_max=-1)
    config = RulesConfig(rmc_lesweken_per_bestuur={"ROC-1": 2})
    assert (config.rmc_period("ROC-1"), config.rmc_period("other"), config.rmc_period(None)) == (
        2,
        4,
        4,
    )
