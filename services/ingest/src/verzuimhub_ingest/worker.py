"""Ingest's background loops (retention purge lands here)."""

from __future__ import annotations

from verzuimhub_shared.app import Worker

workers: list[Worker] = []
