"""identifiers compare bytewise: every string column gets ``COLLATE "C"`` (ADR 0012)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 08:40:00
"""
from collections.abc import Sequence

from verzuimhub_shared.migrations import set_collation


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: {table: {column: varchar length}}, as the models had them at this revision.
COLUMNS: dict[str, dict[str, int]] = {'feed_cursors': {'feed': 64},
 'leerling_perioden': {'leerling': 128,
                       'scope': 16,
                       'sector': 8,
                       'period_kind': 12,
                       'period': 10},
 'rollups': {'scope': 16,
             'sector': 8,
             'period_kind': 12,
             'period': 10,
             'metric': 40,
             'category': 32},
 'swv_meldingen': {'id': 128,
                   'soort': 8,
                   'sector': 8,
                   'swv': 16,
                   'week': 10,
                   'maand': 10,
                   'schooljaar': 10},
 'swv_registraties': {'id': 128,
                      'leerling': 128,
                      'swv': 16,
                      'sector': 8,
                      'week': 10,
                      'maand': 10,
                      'schooljaar': 10,
                      'groep': 16},
 'swv_vrijstellingen': {'id': 128,
                        'soort': 20,
                        'swv_po': 16,
                        'swv_vo': 16,
                        'leeftijdsband': 8},
 'vrijstelling_stromen': {'scope': 16, 'soort': 20, 'leeftijdsband': 8, 'richting': 8}}


def upgrade() -> None:
    set_collation(COLUMNS, "C")


def downgrade() -> None:
    set_collation(COLUMNS, None)
