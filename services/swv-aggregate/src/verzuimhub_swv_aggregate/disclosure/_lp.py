"""A small exact-enough linear programme solver, stdlib only.

The audit of a suppression pattern asks, for each suppressed cell, the smallest and the
largest value it can take given everything that is published. That is a linear programme
over a few dozen variables with coefficients 0 and ±1. This module solves it with a
two-phase tableau simplex over sparse rows (Bland's rule, so it cannot cycle). Phase 1 runs
once per pattern; each bound then costs one short phase 2 from the same feasible basis.
An answer whose figures moved runs this audit again: it is on the request path.

Floats are exact enough here: all coefficients are ±1 and right-hand sides are counts, so
every pivot element is ±1 or a small rational, and results are rounded outward by the caller.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class LinearEquation:
    """`sum(coefficients[v] * x[v]) == rhs`."""

    coefficients: Mapping[int, float]
    rhs: float


class InfeasibleError(ValueError):
    """The published constraints admit no table at all: the input was inconsistent."""


#: A tableau row: its non-zero entries by column (the rows are sparse: coefficients ±1 on
#: a few of a few dozen columns, so copying and pivoting only the non-zeros is what counts).
Row = dict[int, float]


class Polytope:
    """`{x : equations hold, lower <= x <= upper}` over variables `0..n-1`."""

    def __init__(
        self,
        n: int,
        equations: Sequence[LinearEquation],
        lower: Sequence[float],
        upper: Sequence[float],
    ) -> None:
        self._n = n
        self._lower = list(lower)
        # Shift to y = x - lower >= 0. Finite upper bounds become rows y + s = upper - lower.
        rows: list[Row] = []
        rhs: list[float] = []
        ub_vars = [v for v in range(n) if math.isfinite(upper[v])]
        n_slack = len(ub_vars)
        n_eq = len(equations)
        width = n + n_slack + n_eq  # y | slacks | artificials (one per equation)
        basis: list[int] = []
        for i, eq in enumerate(equations):
            row: Row = {}
            b = eq.rhs
            for v, a in eq.coefficients.items():
                row[v] = row.get(v, 0.0) + a
                b -= a * self._lower[v]
            if b < 0:
                row = {j: -a for j, a in row.items()}
                b = -b
            row[n + n_slack + i] = 1.0
            rows.append(row)
            rhs.append(b)
            basis.append(n + n_slack + i)
        for s, v in enumerate(ub_vars):
            rows.append({v: 1.0, n + s: 1.0})
            rhs.append(upper[v] - self._lower[v])
            basis.append(n + s)
        # Phase 1: minimise the sum of the artificials.
        cost = [0.0] * width
        for i in range(n_eq):
            cost[n + n_slack + i] = 1.0
        value = _simplex(rows, rhs, basis, cost, width)
        if value is None or value > 1e-7:
            raise InfeasibleError("published constraints are infeasible")
        # Drive artificials out of the basis; drop rows that are redundant.
        first_art = n + n_slack
        keep: list[int] = []
        for i in range(len(rows)):
            if basis[i] >= first_art:
                col = min(
                    (j for j, a in rows[i].items() if j < first_art and abs(a) > _EPS),
                    default=None,
                )
                if col is None:
                    continue  # a linear combination of the other rows
                _pivot(rows, rhs, basis, i, col)
            keep.append(i)
        self._rows = [{j: a for j, a in rows[i].items() if j < first_art} for i in keep]
        self._rhs = [rhs[i] for i in keep]
        self._basis = [basis[i] for i in keep]
        self._width = first_art

    def bounds(self, var: int) -> tuple[float, float]:
        """Smallest and largest feasible value of `x[var]` (may be ±inf)."""
        return self._optimise(var, 1.0), -self._optimise(var, -1.0)

    def _optimise(self, var: int, sign: float) -> float:
        """Minimum of `sign * x[var]` over the polytope."""
        rows = [dict(r) for r in self._rows]
        rhs = self._rhs[:]
        basis = self._basis[:]
        cost = [0.0] * self._width
        cost[var] = sign
        value = _simplex(rows, rhs, basis, cost, self._width)
        if value is None:
            return -math.inf
        return value + sign * self._lower[var]


def _pivot(rows: list[Row], rhs: list[float], basis: list[int], r: int, c: int) -> Row:
    """Pivot on row ``r``, column ``c``; returns the new pivot row (only its columns change
    in the other rows)."""
    inv = 1.0 / rows[r][c]
    pivot_row = {j: a * inv for j, a in rows[r].items()}
    pivot_row[c] = 1.0
    rows[r] = pivot_row
    rhs[r] *= inv
    for i, row in enumerate(rows):
        if i == r:
            continue
        f = row.get(c, 0.0)
        if abs(f) <= _EPS:
            row.pop(c, None)
            continue
        for j, a in pivot_row.items():
            if a != 0.0:
                value = row.get(j, 0.0) - f * a
                if value == 0.0:
                    row.pop(j, None)
                else:
                    row[j] = value
        row.pop(c, None)
        rhs[i] -= f * rhs[r]
        if abs(rhs[i]) < _EPS:
            rhs[i] = 0.0
    basis[r] = c
    return pivot_row


def _simplex(
    rows: list[Row],
    rhs: list[float],
    basis: list[int],
    cost: list[float],
    width: int,
) -> float | None:
    """Minimise `cost . y` from a feasible basis, in place. None if unbounded.

    The reduced costs `r_j = c_j - c_B . column_j` are computed once and then pivoted along
    with the rows (a tableau's objective row), instead of from every row at every step."""
    reduced = cost[:width]
    for i, row in enumerate(rows):
        weight = cost[basis[i]]
        if weight != 0.0:
            for j, a in row.items():
                reduced[j] -= weight * a
    while True:
        in_basis = set(basis)
        entering = next(  # Bland: the first improving column
            (j for j in range(width) if reduced[j] < -_EPS and j not in in_basis), -1
        )
        if entering < 0:
            return sum(cost[basis[i]] * rhs[i] for i in range(len(rows)))
        leaving = -1
        best = math.inf
        for i, row in enumerate(rows):
            a = row.get(entering, 0.0)
            if a > _EPS:
                ratio = rhs[i] / a
                if ratio < best - _EPS or (
                    ratio <= best + _EPS and leaving >= 0 and basis[i] < basis[leaving]
                ):
                    best = ratio
                    leaving = i
        if leaving < 0:
            return None
        f = reduced[entering]
        for j, a in _pivot(rows, rhs, basis, leaving, entering).items():
            reduced[j] -= f * a
        reduced[entering] = 0.0
