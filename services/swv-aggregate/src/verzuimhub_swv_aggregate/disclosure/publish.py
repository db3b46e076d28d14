"""Disclosure control end to end: suppress, then round, then build the published tables."""

from __future__ import annotations

from collections.abc import Sequence

from verzuimhub_swv_aggregate.disclosure.model import (
    CountTable,
    DisclosureConfig,
    PublishedCell,
    PublishedTable,
)
from verzuimhub_swv_aggregate.disclosure.rounding import round_to_base
from verzuimhub_swv_aggregate.disclosure.suppression import (
    CellKey,
    LinkedCells,
    suppress,
    table_keys,
)

DEFAULT_CONFIG = DisclosureConfig()


def publish_tables(
    tables: Sequence[CountTable], config: DisclosureConfig = DEFAULT_CONFIG
) -> tuple[PublishedTable, ...]:
    """Protect and publish every table of one region and one period, together.

    Pass *all* tables that will be published for the same region and period in one call:
    cells they share (same population and categories, e.g. a grand total or the sector
    margin) get one status, and secondary suppression accounts for all their constraints.
    """
    cells = LinkedCells(tables)
    status = suppress(cells, config)
    published: list[PublishedTable] = []
    for table in tables:
        out: dict[tuple[tuple[str, str], ...], PublishedCell] = {}
        for categories in table_keys(table):
            key = CellKey(table.population, categories)
            reason = status.get(key)
            if reason is not None:
                out[categories] = PublishedCell.suppressed_for(reason)
                continue
            value = cells.values[key]
            if config.rounding_base is not None:
                value = round_to_base(value, config.rounding_base)
            out[categories] = PublishedCell(value)
        published.append(
            PublishedTable(
                population=table.population,
                dimensions=table.dimensions,
                categories=table.categories,
                threshold=config.threshold,
                rounding_base=config.rounding_base,
                cells=out,
            )
        )
    return tuple(published)
