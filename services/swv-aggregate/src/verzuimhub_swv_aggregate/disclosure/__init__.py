"""Disclosure control for SWV count tables: pure functions over plain data, no I/O.

Call `publish_tables` with every count table of one region and period; see
docs/disclosure.md for what is published and why.
"""

from verzuimhub_swv_aggregate.disclosure.model import (
    SUPPRESSED_MARKER,
    TOTAL_LABEL,
    Categories,
    CountTable,
    DisclosureConfig,
    PercentageSuppressionReason,
    PublishedCell,
    PublishedCellJSON,
    PublishedEntryJSON,
    PublishedPercentage,
    PublishedPercentageJSON,
    PublishedTable,
    PublishedTableJSON,
    SuppressionReason,
)
from verzuimhub_swv_aggregate.disclosure.percentages import publish_percentage
from verzuimhub_swv_aggregate.disclosure.publish import DEFAULT_CONFIG, publish_tables
from verzuimhub_swv_aggregate.disclosure.rounding import round_to_base

__all__ = [
    "DEFAULT_CONFIG",
    "SUPPRESSED_MARKER",
    "TOTAL_LABEL",
    "Categories",
    "CountTable",
    "DisclosureConfig",
    "PercentageSuppressionReason",
    "PublishedCell",
    "PublishedCellJSON",
    "PublishedEntryJSON",
    "PublishedPercentage",
    "PublishedPercentageJSON",
    "PublishedTable",
    "PublishedTableJSON",
    "SuppressionReason",
    "publish_percentage",
    "publish_tables",
    "round_to_base",
]
