"""Input and output types of disclosure control: plain frozen dataclasses, no I/O.

A count table is a breakdown of one *population* (e.g. "vrijstellingen_5a") by one or two
dimensions (e.g. "sector", "leeftijd"). Every cell is addressed by its categories; a margin
is addressed by leaving a dimension out (`{"sector": "po"}` in a tier × sector table is the
po column total, `{}` is the grand total). Tables of the same population share the cells
they have in common, which is what links them for suppression.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypedDict

TOTAL_LABEL = "totaal"
"""Category label of a margin in CSV output; no real category may use it."""

SUPPRESSED_MARKER = "x"
"""What a CSV shows instead of a suppressed number (the CBS sign for "geheim")."""

Categories = tuple[tuple[str, str], ...]
"""(dimension, category) pairs sorted by dimension; a dimension left out means its total."""


class SuppressionReason(StrEnum):
    PRIMARY = "primary"  # the count itself is below the threshold
    SECONDARY = "secondary"  # hidden so that a primary cell cannot be worked out


class PercentageSuppressionReason(StrEnum):
    SMALL_DENOMINATOR = "small_denominator"
    SUPPRESSED_COUNT = "suppressed_count"


@dataclass(frozen=True, slots=True)
class DisclosureConfig:
    """Parameters of disclosure control; the defaults are the hub's policy (docs/disclosure.md).

    threshold: the smallest count that may be published (k).
    protection: the narrowest interval an attacker may be able to pin any suppressed count to.
    min_denominator: the smallest denominator a percentage may have.
    rounding_base: round published counts to a multiple of this; None publishes them exactly.
    percentage_decimals: decimals of a published percentage.
    """

    threshold: int = 10
    protection: int = 5
    min_denominator: int = 100
    rounding_base: int | None = None
    percentage_decimals: int = 1

    def __post_init__(self) -> None:
        if self.threshold < 3:
            raise ValueError("threshold must be at least 3")
        if not 1 <= self.protection <= self.threshold - 2:
            # A primary cell is known to lie in [0, threshold - 1], and a secondary total of
            # two primary cells in [threshold, 2 * threshold - 2]: threshold - 2 is the most
            # that can be guaranteed for every table.
            raise ValueError("protection must be between 1 and threshold - 2")
        if self.min_denominator < 1:
            raise ValueError("min_denominator must be at least 1")
        if self.rounding_base is not None and self.rounding_base < 2:
            raise ValueError("rounding_base must be at least 2, or None for no rounding")
        if not 0 <= self.percentage_decimals <= 3:
            raise ValueError("percentage_decimals must be between 0 and 3")


@dataclass(frozen=True, slots=True)
class CountTable:
    """True counts of one population by one or two dimensions; margins are derived.

    The categories of each dimension must be exhaustive (add an "onbekend" category where
    needed): margins are the sums of the cells, and linked tables must agree on them.
    `structural_zeros` are cells that are zero by definition (e.g. po × age 18+); they are
    published as 0, everyone knows them anyway. Any other zero counts as a small count.
    """

    population: str
    dimensions: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]
    counts: Mapping[tuple[str, ...], int]
    structural_zeros: frozenset[tuple[str, ...]] = field(default_factory=frozenset)

    @classmethod
    def one_way(
        cls,
        population: str,
        dimension: str,
        counts: Mapping[str, int],
        *,
        structural_zeros: frozenset[str] = frozenset(),
    ) -> CountTable:
        """A breakdown by one dimension, categories in the order of `counts`."""
        return cls(
            population=population,
            dimensions=(dimension,),
            categories=(tuple(counts),),
            counts={(c,): n for c, n in counts.items()},
            structural_zeros=frozenset((c,) for c in structural_zeros),
        )

    @classmethod
    def two_way(
        cls,
        population: str,
        row_dimension: str,
        column_dimension: str,
        rows: Sequence[str],
        columns: Sequence[str],
        counts: Mapping[tuple[str, str], int],
        *,
        structural_zeros: frozenset[tuple[str, str]] = frozenset(),
    ) -> CountTable:
        """A cross-tabulation; every (row, column) pair must have a count."""
        return cls(
            population=population,
            dimensions=(row_dimension, column_dimension),
            categories=(tuple(rows), tuple(columns)),
            counts={(r, c): n for (r, c), n in counts.items()},
            structural_zeros=frozenset(structural_zeros),
        )

    def __post_init__(self) -> None:
        if len(self.dimensions) not in (1, 2):
            raise ValueError("a count table has one or two dimensions")
        if len(set(self.dimensions)) != len(self.dimensions):
            raise ValueError("dimensions must be distinct")
        if len(self.categories) != len(self.dimensions):
            raise ValueError("one category list per dimension")
        for cats in self.categories:
            if not cats:
                raise ValueError("every dimension needs at least one category")
            if len(set(cats)) != len(cats):
                raise ValueError("categories of a dimension must be distinct")
            if TOTAL_LABEL in cats:
                raise ValueError(f"{TOTAL_LABEL!r} is reserved for margins")
        expected = set(self.interior())
        if set(self.counts) != expected:
            raise ValueError("counts must cover exactly every combination of categories")
        for key, n in self.counts.items():
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ValueError(f"count for {key} must be a non-negative int")
        for key in self.structural_zeros:
            if key not in expected:
                raise ValueError(f"structural zero {key} is not a cell of the table")
            if self.counts[key] != 0:
                raise ValueError(f"structural zero {key} has count {self.counts[key]}")

    def interior(self) -> list[tuple[str, ...]]:
        """Category tuples of the inner cells, row-major."""
        if len(self.categories) == 1:
            return [(c,) for c in self.categories[0]]
        return [(r, c) for r in self.categories[0] for c in self.categories[1]]

    def address(self, key: tuple[str | None, ...]) -> Categories:
        """Categories of a cell or margin; None in `key` marks a total over that dimension."""
        pairs = [(d, c) for d, c in zip(self.dimensions, key, strict=True) if c is not None]
        return tuple(sorted(pairs))


class PublishedCellJSON(TypedDict):
    value: int | None
    suppressed: bool
    reason: str | None


class PublishedEntryJSON(PublishedCellJSON):
    categories: dict[str, str]


class PublishedTableJSON(TypedDict):
    population: str
    dimensions: list[str]
    categories: dict[str, list[str]]
    threshold: int
    rounding_base: int | None
    cells: list[PublishedEntryJSON]


class PublishedPercentageJSON(TypedDict):
    value: float | None
    suppressed: bool
    reason: str | None


@dataclass(frozen=True, slots=True)
class PublishedCell:
    """A published count: either a number, or suppressed with the reason why."""

    value: int | None
    reason: SuppressionReason | None = None

    def __post_init__(self) -> None:
        if (self.value is None) == (self.reason is None):
            raise ValueError("a published cell has either a value or a suppression reason")

    @classmethod
    def suppressed_for(cls, reason: SuppressionReason) -> PublishedCell:
        return cls(value=None, reason=reason)

    @property
    def suppressed(self) -> bool:
        return self.value is None

    def to_json(self) -> PublishedCellJSON:
        return {
            "value": self.value,
            "suppressed": self.suppressed,
            "reason": None if self.reason is None else self.reason.value,
        }

    def to_csv(self) -> str:
        return SUPPRESSED_MARKER if self.value is None else str(self.value)


@dataclass(frozen=True, slots=True)
class PublishedPercentage:
    """A published percentage: a number, or suppressed with the reason why."""

    value: float | None
    reason: PercentageSuppressionReason | None = None

    def __post_init__(self) -> None:
        if (self.value is None) == (self.reason is None):
            raise ValueError("a percentage has either a value or a suppression reason")

    @property
    def suppressed(self) -> bool:
        return self.value is None

    def to_json(self) -> PublishedPercentageJSON:
        return {
            "value": self.value,
            "suppressed": self.suppressed,
            "reason": None if self.reason is None else self.reason.value,
        }

    def to_csv(self) -> str:
        return SUPPRESSED_MARKER if self.value is None else str(self.value)


@dataclass(frozen=True, slots=True)
class PublishedTable:
    """What leaves the hub: every cell and margin, each a number or marked suppressed.

    `cells` maps categories to the published cell; margins are included (a dimension left
    out means its total, `()` is the grand total). Iteration order is inner cells row-major,
    then row margins, then column margins, then the grand total.
    """

    population: str
    dimensions: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]
    threshold: int
    rounding_base: int | None
    cells: Mapping[Categories, PublishedCell]

    def cell(self, **categories: str) -> PublishedCell:
        """`table.cell(sector="po", tier="3")`; leave a dimension out for its margin."""
        unknown = set(categories) - set(self.dimensions)
        if unknown:
            raise KeyError(f"unknown dimensions {sorted(unknown)}")
        return self.cells[tuple(sorted(categories.items()))]

    @property
    def total(self) -> PublishedCell:
        return self.cells[()]

    def to_json(self) -> PublishedTableJSON:
        entries: list[PublishedEntryJSON] = []
        for cats, cell in self.cells.items():
            data = cell.to_json()
            entries.append(
                {
                    "categories": dict(cats),
                    "value": data["value"],
                    "suppressed": data["suppressed"],
                    "reason": data["reason"],
                }
            )
        return {
            "population": self.population,
            "dimensions": list(self.dimensions),
            "categories": {
                d: list(c) for d, c in zip(self.dimensions, self.categories, strict=True)
            },
            "threshold": self.threshold,
            "rounding_base": self.rounding_base,
            "cells": entries,
        }

    def csv_header(self) -> list[str]:
        return [*self.dimensions, "value", "suppression"]

    def csv_rows(self) -> list[list[str]]:
        """One row per cell and margin; margins say TOTAL_LABEL, hidden values SUPPRESSED_MARKER."""
        rows: list[list[str]] = []
        for cats, cell in self.cells.items():
            named = dict(cats)
            labels = [named.get(d, TOTAL_LABEL) for d in self.dimensions]
            reason = "" if cell.reason is None else cell.reason.value
            rows.append([*labels, cell.to_csv(), reason])
        return rows
