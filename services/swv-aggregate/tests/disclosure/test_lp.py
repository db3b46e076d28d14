"""The module's own LP solver against scipy, on the problems the audit poses."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog  # type: ignore[import-untyped]

from verzuimhub_swv_aggregate.disclosure._lp import LinearEquation, Polytope

Problem = tuple[int, list[LinearEquation], list[float], list[float]]


@st.composite
def problems(draw: st.DrawFn, most: int = 8) -> Problem:
    n = draw(st.integers(min_value=1, max_value=most))
    point = draw(st.lists(st.integers(0, 30), min_size=n, max_size=n))
    lower, upper = [], []
    for x in point:
        lower.append(float(draw(st.integers(0, x))))
        upper.append(draw(st.sampled_from([math.inf, float(x), float(x + 7)])))
    equations = []
    for _ in range(draw(st.integers(0, max(5, n)))):
        coef = {
            v: float(draw(st.sampled_from([-1, 1])))
            for v in draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=8))
        }
        equations.append(LinearEquation(coef, sum(a * point[v] for v, a in coef.items())))
    return n, equations, lower, upper


@settings(max_examples=60, deadline=None)
@given(problem=problems())
def test_bounds_match_scipy(problem: Problem) -> None:
    assert_bounds_match_scipy(problem)


@settings(max_examples=15, deadline=None)
@given(problem=problems(most=30))
def test_bounds_match_scipy_on_audit_sized_problems(problem: Problem) -> None:
    """A national report's audit has a few dozen hidden cells: many pivots, fill-in of the
    sparse rows."""
    assert_bounds_match_scipy(problem)


def assert_bounds_match_scipy(problem: Problem) -> None:
    n, equations, lower, upper = problem
    polytope = Polytope(n, equations, lower, upper)
    a_eq = np.zeros((max(len(equations), 1), n))
    b_eq = np.zeros(max(len(equations), 1))
    for i, eq in enumerate(equations):
        for v, a in eq.coefficients.items():
            a_eq[i, v] = a
        b_eq[i] = eq.rhs
    bounds = [(lo, None if math.isinf(hi) else hi) for lo, hi in zip(lower, upper, strict=True)]
    for var in range(n):
        c = np.zeros(n)
        c[var] = 1
        lo = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
        hi = linprog(-c, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
        ours = polytope.bounds(var)
        assert math.isclose(ours[0], lo.fun, abs_tol=1e-6)
        if hi.status == 3:
            assert ours[1] == math.inf
        else:
            assert math.isclose(ours[1], -hi.fun, abs_tol=1e-6)
