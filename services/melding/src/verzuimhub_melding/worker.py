"""Melding's background loops: feed consumption and DUO forwarding land here."""

from __future__ import annotations

from verzuimhub_shared.app import Worker

workers: list[Worker] = []
