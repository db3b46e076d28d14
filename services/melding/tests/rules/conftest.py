"""Shared fixtures of the rules tests: calendars are built once per session."""

from __future__ import annotations

import pytest

from verzuimhub_shared.calendar import SchoolCalendar, region_calendar


@pytest.fixture(scope="session")
def midden() -> SchoolCalendar:
    return region_calendar("midden")


@pytest.fixture(scope="session")
def no_holidays() -> SchoolCalendar:
    return SchoolCalendar()
