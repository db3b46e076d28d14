"""Attack tests: an attacker with every published figure tries to pin suppressed counts.

The attacker here is built from the *published output only* (JSON-level: values, reasons,
table shapes) and solves its linear programmes with scipy, independently of the module's
own solver. It knows: every visible value (or, with rounding, the interval a rounded value
implies), that the margins add up, that counts are non-negative, and what a reason implies
(primary: below the threshold; secondary: at least the threshold).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog  # type: ignore[import-untyped]

from verzuimhub_swv_aggregate.disclosure import (
    CountTable,
    DisclosureConfig,
    PublishedCell,
    PublishedTable,
    SuppressionReason,
    publish_tables,
)

Var = tuple[str, tuple[tuple[str, str], ...]]

ATTACK_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Many small cells, some zeros, a few large ones: the hard case for suppression.
counts = st.one_of(
    st.integers(min_value=0, max_value=3),
    st.integers(min_value=0, max_value=14),
    st.integers(min_value=10, max_value=60),
)
configs = st.builds(
    DisclosureConfig,
    threshold=st.sampled_from([5, 10]),
    protection=st.sampled_from([1, 3]),
    rounding_base=st.sampled_from([None, 5]),
)


class Attacker:
    """Everything derivable from a set of published tables, by linear programming."""

    def __init__(self, tables: Sequence[PublishedTable]) -> None:
        self.published: dict[Var, tuple[int | None, SuppressionReason | None]] = {}
        self.lines: list[tuple[Var, list[Var]]] = []
        threshold = tables[0].threshold
        base = tables[0].rounding_base
        for table in tables:
            for cats, cell in table.cells.items():
                self.published[(table.population, cats)] = (cell.value, cell.reason)
            self.lines.extend(_lines_of_shape(table))
        self.vars = sorted(self.published)
        self.index = {v: i for i, v in enumerate(self.vars)}
        self.bounds: list[tuple[float, float | None]] = []
        for v in self.vars:
            value, reason = self.published[v]
            if reason is SuppressionReason.PRIMARY:
                self.bounds.append((0, threshold - 1))
            elif reason is SuppressionReason.SECONDARY:
                self.bounds.append((threshold, None))
            elif base is None:
                assert value is not None
                self.bounds.append((value, value))
            else:
                assert value is not None
                self.bounds.append((max(0, value - base // 2), value + (base - 1) // 2))
        a_eq = np.zeros((len(self.lines), len(self.vars)))
        for row, (total, parts) in enumerate(self.lines):
            a_eq[row, self.index[total]] -= 1
            for p in parts:
                a_eq[row, self.index[p]] += 1
        self.a_eq = a_eq
        self.b_eq = np.zeros(len(self.lines))

    def interval(self, var: Var) -> tuple[float, float]:
        c = np.zeros(len(self.vars))
        c[self.index[var]] = 1
        lo = linprog(c, A_eq=self.a_eq, b_eq=self.b_eq, bounds=self.bounds, method="highs")
        hi = linprog(-c, A_eq=self.a_eq, b_eq=self.b_eq, bounds=self.bounds, method="highs")
        assert lo.status == 0, lo.message  # the true table is always feasible
        high = math.inf if hi.status == 3 else -hi.fun
        assert hi.status in (0, 3), hi.message
        return lo.fun, high

    def suppressed(self) -> list[Var]:
        return [v for v in self.vars if self.published[v][1] is not None]


def _lines_of_shape(table: PublishedTable) -> list[tuple[Var, list[Var]]]:
    """The additivity a reader infers from a table's shape alone."""

    def var(**cats: str) -> Var:
        return (table.population, tuple(sorted(cats.items())))

    if len(table.dimensions) == 1:
        (dim,) = table.dimensions
        return [(var(), [var(**{dim: c}) for c in table.categories[0]])]
    (rd, cd), (rows, cols) = table.dimensions, table.categories
    lines = [(var(**{rd: r}), [var(**{rd: r, cd: c}) for c in cols]) for r in rows]
    lines += [(var(**{cd: c}), [var(**{rd: r, cd: c}) for r in rows]) for c in cols]
    lines.append((var(), [var(**{rd: r}) for r in rows]))
    lines.append((var(), [var(**{cd: c}) for c in cols]))
    return lines


def _true_values(tables: Sequence[CountTable]) -> dict[Var, int]:
    values: dict[Var, int] = {}
    for t in tables:
        for key in t.interior():
            values[(t.population, t.address(key))] = t.counts[key]
        for r in range(len(t.dimensions)):
            for cat in t.categories[r]:
                total = sum(n for k, n in t.counts.items() if k[r] == cat)
                values[(t.population, ((t.dimensions[r], cat),))] = total
        values[(t.population, ())] = sum(t.counts.values())
    return values


def assert_protected(tables: Sequence[CountTable], config: DisclosureConfig) -> None:
    published = publish_tables(tables, config)
    truth = _true_values(tables)
    attacker = Attacker(published)
    k = config.threshold
    for var in attacker.vars:
        value, reason = attacker.published[var]
        if reason is None:
            assert value is not None
            # Nothing below the threshold is ever shown (0 only as a declared structural zero).
            assert truth[var] >= k or truth[var] == 0
        elif truth[var] < k:
            assert reason is SuppressionReason.PRIMARY
        else:
            assert reason is SuppressionReason.SECONDARY
    # The protection width is guaranteed unless nothing is left to hide: a fully hidden
    # table shows only what the reasons imply, which no suppression can take back.
    fully_hidden = len(attacker.suppressed()) == len(attacker.vars)
    for var in attacker.suppressed():
        lo, hi = attacker.interval(var)
        assert lo - 1e-6 <= truth[var] <= hi + 1e-6
        assert lo < hi, f"{var} is exactly {lo}"
        if not fully_hidden:
            assert hi - lo >= config.protection - 1e-6, f"{var} pinned to [{lo}, {hi}]"
    # A line with a visible total gives the exact count of its hidden parts' union: never small.
    if config.rounding_base is None:
        for total, parts in attacker.lines:
            hidden = [p for p in parts if attacker.published[p][1] is not None]
            if attacker.published[total][1] is None and hidden:
                assert sum(truth[p] for p in hidden) >= k


@st.composite
def one_way(draw: st.DrawFn) -> CountTable:
    n = draw(st.integers(min_value=1, max_value=7))
    values = draw(st.lists(counts, min_size=n, max_size=n))
    return CountTable.one_way("pop", "sector", {f"s{i}": v for i, v in enumerate(values)})


@st.composite
def two_way(draw: st.DrawFn) -> CountTable:
    r = draw(st.integers(min_value=1, max_value=4))
    c = draw(st.integers(min_value=1, max_value=5))
    rows, cols = [f"t{i}" for i in range(r)], [f"s{j}" for j in range(c)]
    values = draw(st.lists(counts, min_size=r * c, max_size=r * c))
    grid = dict(zip(itertools.product(rows, cols), values, strict=True))
    return CountTable.two_way("pop", "tier", "sector", rows, cols, grid)


@st.composite
def linked(draw: st.DrawFn) -> list[CountTable]:
    """tier × sector, leeftijd × sector and a 1-D by tier, all from one 3-D count array."""
    tiers = [f"t{i}" for i in range(draw(st.integers(1, 3)))]
    sectors = [f"s{i}" for i in range(draw(st.integers(1, 3)))]
    ages = [f"a{i}" for i in range(draw(st.integers(1, 3)))]
    cube = {
        key: draw(counts) // 2 for key in itertools.product(tiers, sectors, ages)
    }  # split over 3 dimensions, so halve to keep margins small too

    def margin(i: int, j: int) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for key, n in cube.items():
            out[(key[i], key[j])] = out.get((key[i], key[j]), 0) + n
        return out

    by_tier: dict[str, int] = {t: 0 for t in tiers}
    for key, n in cube.items():
        by_tier[key[0]] += n
    return [
        CountTable.two_way("pop", "tier", "sector", tiers, sectors, margin(0, 1)),
        CountTable.two_way("pop", "leeftijd", "sector", ages, sectors, margin(2, 1)),
        CountTable.one_way("pop", "tier", by_tier),
    ]


@ATTACK_SETTINGS
@given(table=one_way(), config=configs)
def test_one_way_tables_resist_lp_attack(table: CountTable, config: DisclosureConfig) -> None:
    assert_protected([table], config)


@ATTACK_SETTINGS
@given(table=two_way(), config=configs)
def test_two_way_tables_resist_lp_attack(table: CountTable, config: DisclosureConfig) -> None:
    assert_protected([table], config)


@ATTACK_SETTINGS
@given(tables=linked(), config=configs)
def test_linked_tables_resist_lp_attack(tables: list[CountTable], config: DisclosureConfig) -> None:
    assert_protected(tables, config)


@settings(max_examples=25, deadline=None)
@given(table=two_way(), config=st.just(DisclosureConfig()))
def test_default_policy_resists_lp_attack(table: CountTable, config: DisclosureConfig) -> None:
    assert_protected([table], config)


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(st.integers(min_value=10, max_value=40), min_size=5, max_size=5),
    where=st.integers(min_value=0, max_value=4),
)
def test_a_lone_pupil_is_never_visible(values: list[int], where: int) -> None:
    """One pupil alone in a category: not shown, and not derivable by subtraction."""
    values[where] = 1
    rows, cols = ["t1", "t2"], ["po", "vo", "so", "mbo", "vso"]
    grid = {("t1", c): v for c, v in zip(cols, values, strict=True)}
    grid |= {("t2", c): 30 for c in cols}
    tables = [
        CountTable.two_way("pop", "tier", "sector", rows, cols, grid),
        CountTable.one_way("pop", "sector", {c: grid[("t1", c)] + 30 for c in cols}),
    ]
    published = publish_tables(tables, DisclosureConfig())
    lone = ("pop", (("sector", cols[where]), ("tier", "t1")))
    attacker = Attacker(published)
    assert attacker.published[lone] == (None, SuppressionReason.PRIMARY)
    lo, hi = attacker.interval(lone)
    assert hi - lo >= DisclosureConfig().protection
    # Nor can any other hidden cell be pinned, in either table.
    assert_protected(tables, DisclosureConfig())


def test_lone_pupil_in_a_small_region_hides_the_whole_table() -> None:
    tables = [CountTable.one_way("pop", "sector", {"po": 1, "vo": 0, "so": 0})]
    (table,) = publish_tables(tables)
    assert all(cell.suppressed for cell in table.cells.values())
    assert_protected(tables, DisclosureConfig())


def test_the_attacker_breaks_primary_only_suppression() -> None:
    """The harness itself works: without secondary suppression the lone pupil is found."""
    naive = PublishedTable(
        population="pop",
        dimensions=("sector",),
        categories=(("po", "vo", "so"),),
        threshold=10,
        rounding_base=None,
        cells={
            (("sector", "po"),): PublishedCell.suppressed_for(SuppressionReason.PRIMARY),
            (("sector", "vo"),): PublishedCell(12),
            (("sector", "so"),): PublishedCell(30),
            (): PublishedCell(43),
        },
    )
    assert Attacker([naive]).interval(("pop", (("sector", "po"),))) == (1.0, 1.0)


def test_the_attacker_uses_what_reasons_imply() -> None:
    """Hiding the next smallest cell alone is not enough once 'secondary' means >= 10."""
    weak = PublishedTable(
        population="pop",
        dimensions=("sector",),
        categories=(("po", "vo", "so"),),
        threshold=10,
        rounding_base=None,
        cells={
            (("sector", "po"),): PublishedCell.suppressed_for(SuppressionReason.PRIMARY),
            (("sector", "vo"),): PublishedCell.suppressed_for(SuppressionReason.SECONDARY),
            (("sector", "so"),): PublishedCell(30),
            (): PublishedCell(43),
        },
    )
    assert Attacker([weak]).interval(("pop", (("sector", "po"),))) == (0.0, 3.0)
