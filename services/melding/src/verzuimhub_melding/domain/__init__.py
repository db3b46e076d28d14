"""Melding's pure domain glue: ledger rows to rules input, meldingen to the DUO contract."""
