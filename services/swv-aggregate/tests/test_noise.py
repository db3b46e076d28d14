"""Optional differential privacy: OpenDP Laplace noise on counts before publication."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from verzuimhub_swv_aggregate.disclosure import DisclosureConfig
from verzuimhub_swv_aggregate.figures import build_report
from verzuimhub_swv_aggregate.noise import laplace_counts
from verzuimhub_swv_aggregate.periods import parse_period
from verzuimhub_swv_aggregate.service import LEERLINGEN_GEOORLOOFD
from verzuimhub_swv_aggregate.settings import SwvSettings

ROLLUPS = {(LEERLINGEN_GEOORLOOFD, "", sector): 400 for sector in ("po", "sbo", "so")}


def _published(noise: object) -> list[int | None]:
    report = build_report(
        "PO-99-01",
        parse_period("2025-2026"),
        date(2026, 7, 31),
        ROLLUPS,
        {},
        DisclosureConfig(),
        ("po", "sbo", "so"),
        noise=noise,  # type: ignore[arg-type]
    )
    table = report.table("verzuim-geoorloofd")
    return [table.cell(sector=s).value for s in ("po", "sbo", "so")]


def test_noise_changes_counts_and_a_repeated_question_gets_the_same_answer() -> None:
    assert _published(None) == [400, 400, 400]
    noise = laplace_counts(0.05)  # scale 20: a draw of exactly 0 three times is improbable
    first = _published(noise)
    assert first != [400, 400, 400]
    assert all(v is None or v >= 0 for v in first)
    assert _published(noise) == first  # cached per state: no fresh draw to average away


def test_noise_is_an_integer_laplace_around_the_count() -> None:
    noise = laplace_counts(1.0)
    draws = [noise(1000) for _ in range(2000)]
    assert all(isinstance(d, int) for d in draws)
    assert 995 < sum(draws) / len(draws) < 1005
    assert len(set(draws)) > 5
    assert noise(0) >= 0  # clamped


def test_the_setting_is_off_by_default_and_must_be_positive() -> None:
    assert SwvSettings().dp_epsilon is None
    with pytest.raises(ValidationError):
        SwvSettings(dp_epsilon=0)
    with pytest.raises(ValueError, match="positive"):
        laplace_counts(0)
