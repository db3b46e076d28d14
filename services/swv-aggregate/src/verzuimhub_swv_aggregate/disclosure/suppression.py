"""Primary and secondary cell suppression over a set of linked count tables.

All tables published together (one region, one period) are merged into one system: a cell
is identified by (population, categories), so a margin shared by two tables is one cell with
one suppression status. Each table contributes its additivity constraints ("lines": a total
equals the sum of its parts). The algorithm:

1. primary: every count below the threshold, zeros included, unless structurally zero;
2. line rules, to a fixpoint: (a) a line with exactly one suppressed member, or (b) a line
   with a visible total whose suppressed parts add up to less than the threshold (their sum is
   exact: it is a count of a merged category), gets its smallest visible member suppressed;
3. audit: for every suppressed cell, solve for the interval an attacker can narrow it to,
   knowing every published value, every line, non-negativity, and what the reasons imply
   (primary ⇒ below the threshold, secondary ⇒ at least the threshold). If the interval is
   narrower than `protection`, suppress the smallest visible cell on a line through it
   (or, failing that, on any line through a suppressed cell) and go back to 2.

Suppressing one more cell only removes an attacker's constraint, so intervals never shrink:
a cell that passed the audit keeps passing, and the loop ends (each round hides one cell).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from verzuimhub_swv_aggregate.disclosure._lp import LinearEquation, Polytope
from verzuimhub_swv_aggregate.disclosure.model import (
    Categories,
    CountTable,
    DisclosureConfig,
    SuppressionReason,
)

_ROUND_EPS = 1e-6


@dataclass(frozen=True, slots=True, order=True)
class CellKey:
    population: str
    categories: Categories


@dataclass(frozen=True, slots=True)
class Line:
    """`total == sum(parts)`."""

    total: CellKey
    parts: tuple[CellKey, ...]

    @property
    def members(self) -> tuple[CellKey, ...]:
        return (self.total, *self.parts)


class LinkedCells:
    """The true values of all cells of a set of linked tables, and their lines."""

    def __init__(self, tables: Iterable[CountTable]) -> None:
        self.order: dict[CellKey, int] = {}
        self.values: dict[CellKey, int] = {}
        self.structural: set[CellKey] = set()
        lines: dict[tuple[CellKey, tuple[CellKey, ...]], Line] = {}
        for table in tables:
            for key, value in _table_values(table).items():
                cell = CellKey(table.population, key)
                known = self.values.setdefault(cell, value)
                if known != value:
                    raise ValueError(
                        f"linked tables disagree on {cell}: {known} and {value}; "
                        "categories must be exhaustive and counts from the same data"
                    )
                self.order.setdefault(cell, len(self.order))
            for zero in table.structural_zeros:
                self.structural.add(CellKey(table.population, table.address(zero)))
            for line in _table_lines(table):
                lines.setdefault((line.total, tuple(sorted(line.parts))), line)
        self.lines = list(lines.values())
        self.lines_of: dict[CellKey, list[Line]] = {cell: [] for cell in self.values}
        for line in self.lines:
            for member in line.members:
                self.lines_of[member].append(line)

    def smallest_visible(
        self, cells: Iterable[CellKey], status: dict[CellKey, SuppressionReason]
    ) -> CellKey | None:
        candidates = [c for c in set(cells) if c not in status and c not in self.structural]
        if not candidates:
            return None
        return min(candidates, key=lambda c: (self.values[c], self.order[c]))


def suppress(cells: LinkedCells, config: DisclosureConfig) -> dict[CellKey, SuppressionReason]:
    """The suppression pattern: every hidden cell with its reason.

    If the protection width cannot be reached even with every linked cell hidden, the
    pattern hides all of them and stops: what remains is only what the reasons imply.
    """
    status: dict[CellKey, SuppressionReason] = {}
    for cell, value in cells.values.items():
        if cell in cells.structural:
            continue
        if value < config.threshold:
            status[cell] = SuppressionReason.PRIMARY
    if not status:
        return status
    to_audit = set(status)
    while True:
        to_audit |= _apply_line_rules(cells, status, config.threshold)
        failing = _audit(cells, status, config, to_audit)
        if not failing:
            return status
        # Protect the first failing cell (deterministic order), then audit again.
        target = min(failing, key=lambda c: cells.order[c])
        extra = cells.smallest_visible(
            (m for line in cells.lines_of[target] for m in line.members), status
        )
        if extra is None:
            extra = cells.smallest_visible(
                (
                    m
                    for line in cells.lines
                    if any(x in status for x in line.members)
                    for m in line.members
                ),
                status,
            )
        if extra is None:
            # Everything linked to a suppressed cell is hidden already; nothing left to add.
            return status
        status[extra] = SuppressionReason.SECONDARY
        to_audit = set(failing) | {extra}


def feasible_intervals(
    cells: LinkedCells,
    status: dict[CellKey, SuppressionReason],
    config: DisclosureConfig,
    targets: Iterable[CellKey] | None = None,
) -> dict[CellKey, tuple[float, float]]:
    """What an attacker can conclude about each suppressed cell (LP relaxation)."""
    hidden = sorted(status, key=lambda c: cells.order[c])
    index = {cell: i for i, cell in enumerate(hidden)}
    equations: list[LinearEquation] = []
    for line in cells.lines:
        coefficients: dict[int, float] = {}
        rhs = 0.0
        for member, sign in ((line.total, -1.0), *((p, 1.0) for p in line.parts)):
            if member in index:
                coefficients[index[member]] = coefficients.get(index[member], 0.0) + sign
            else:
                rhs -= sign * cells.values[member]
        if coefficients:
            equations.append(LinearEquation(coefficients, rhs))
    lower = [
        0.0 if status[c] is SuppressionReason.PRIMARY else float(config.threshold) for c in hidden
    ]
    upper = [
        float(config.threshold - 1) if status[c] is SuppressionReason.PRIMARY else math.inf
        for c in hidden
    ]
    polytope = Polytope(len(hidden), equations, lower, upper)
    wanted = hidden if targets is None else [c for c in hidden if c in set(targets)]
    return {cell: polytope.bounds(index[cell]) for cell in wanted}


def interval_width(bounds: tuple[float, float]) -> float:
    """Width of the integer interval inside LP bounds (rounded inward, so conservative)."""
    lo, hi = bounds
    if math.isinf(hi):
        return math.inf
    return math.floor(hi + _ROUND_EPS) - math.ceil(lo - _ROUND_EPS)


def _audit(
    cells: LinkedCells,
    status: dict[CellKey, SuppressionReason],
    config: DisclosureConfig,
    targets: set[CellKey],
) -> list[CellKey]:
    intervals = feasible_intervals(cells, status, config, targets)
    return [c for c, b in intervals.items() if interval_width(b) < config.protection]


def _apply_line_rules(
    cells: LinkedCells, status: dict[CellKey, SuppressionReason], threshold: int
) -> set[CellKey]:
    """Rules 2a and 2b to a fixpoint; returns the cells they hid."""
    added: set[CellKey] = set()
    changed = True
    while changed:
        changed = False
        for line in cells.lines:
            if _line_needs_more(cells, status, line, threshold):
                extra = cells.smallest_visible(line.members, status)
                if extra is not None:
                    status[extra] = SuppressionReason.SECONDARY
                    added.add(extra)
                    changed = True
    return added


def _line_needs_more(
    cells: LinkedCells, status: dict[CellKey, SuppressionReason], line: Line, threshold: int
) -> bool:
    hidden = [m for m in line.members if m in status]
    if len(hidden) == 1:
        return True  # 2a: the one hidden member is total minus the rest
    if line.total in status or not hidden:
        return False
    # 2b: with the total visible, the hidden parts' sum is exact: the count of their union.
    return sum(cells.values[m] for m in hidden) < threshold


def _table_values(table: CountTable) -> dict[Categories, int]:
    """Inner cells and margins of a table, in publication order."""
    values: dict[Categories, int] = {}
    for key in table.interior():
        values[table.address(key)] = table.counts[key]
    if len(table.dimensions) == 2:
        rows, columns = table.categories
        for r in rows:
            values[table.address((r, None))] = sum(table.counts[(r, c)] for c in columns)
        for c in columns:
            values[table.address((None, c))] = sum(table.counts[(r, c)] for r in rows)
    values[()] = sum(table.counts.values())
    return values


def _table_lines(table: CountTable) -> list[Line]:
    def key(*cats: str | None) -> CellKey:
        return CellKey(table.population, table.address(cats))

    if len(table.dimensions) == 1:
        return [Line(key(None), tuple(key(c) for c in table.categories[0]))]
    rows, columns = table.categories
    lines = [Line(key(r, None), tuple(key(r, c) for c in columns)) for r in rows]
    lines += [Line(key(None, c), tuple(key(r, c) for r in rows)) for c in columns]
    lines.append(Line(key(None, None), tuple(key(r, None) for r in rows)))
    lines.append(Line(key(None, None), tuple(key(None, c) for c in columns)))
    return lines


def table_keys(table: CountTable) -> Sequence[Categories]:
    return list(_table_values(table))
