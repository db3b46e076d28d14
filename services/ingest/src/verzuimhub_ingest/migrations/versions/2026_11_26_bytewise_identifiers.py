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
COLUMNS: dict[str, dict[str, int]] = {'audit_log': {'subject': 200,
               'organisation': 200,
               'action': 64,
               'record_type': 64,
               'record_id': 64,
               'purpose': 200,
               'trace_id': 32},
 'feed_events': {'consumer': 32, 'event_id': 64, 'type': 128, 'subject': 64},
 'idempotency_keys': {'owner': 200, 'key': 128, 'request_hash': 64},
 'registraties': {'id': 36,
                  'brin': 4,
                  'school_registratie_id': 64,
                  'vestiging': 2,
                  'pgn_hash': 64,
                  'pgn_soort': 16,
                  'woongemeente': 6,
                  'sector': 3,
                  'eenheid': 8,
                  'categorie': 40,
                  'catalogus_versie': 40,
                  'payload_hash': 64},
 'vrijstellingen': {'id': 36, 'gemeente': 6, 'soort': 20, 'pgn_hash': 64}}


def upgrade() -> None:
    set_collation(COLUMNS, "C")


def downgrade() -> None:
    set_collation(COLUMNS, None)
