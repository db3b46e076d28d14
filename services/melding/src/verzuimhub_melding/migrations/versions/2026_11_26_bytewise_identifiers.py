"""identifiers compare bytewise: every string column gets ``COLLATE "C"`` (ADR 0012)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 08:40:00
"""
from collections.abc import Sequence

from verzuimhub_shared.migrations import set_collation


revision: str = '0005'
down_revision: str | None = '0004'
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
 'feed_cursors': {'feed': 64},
 'feed_events': {'consumer': 32, 'event_id': 64, 'type': 128, 'subject': 64},
 'idempotency_keys': {'owner': 200, 'key': 128, 'request_hash': 64},
 'leerlingen': {'id': 36,
                'pgn_hash': 64,
                'brin': 4,
                'vestiging': 2,
                'woongemeente': 6,
                'sector': 3},
 'school_beleid': {'brin': 4},
 'ledger': {'registratie_id': 36,
            'leerling_id': 36,
            'eenheid': 8,
            'soort': 12,
            'categorie': 40},
 'meldingen': {'id': 36,
               'leerling_id': 36,
               'brin': 4,
               'vestiging': 2,
               'woongemeente': 6,
               'sector': 3,
               'soort': 4,
               'status': 32,
               'vermoedelijke_reden': 40,
               'discrepantie': 32,
               'duo_meldingsnummer': 64,
               'duo_status': 40,
               'afsluitreden': 64,
               'intrekkingsreden': 40},
 'te_evalueren': {'leerling_id': 36},
 'duo_outbox': {'melding_id': 36, 'actie': 16, 'state': 16, 'last_error': 200}}


def upgrade() -> None:
    set_collation(COLUMNS, "C")


def downgrade() -> None:
    set_collation(COLUMNS, None)
