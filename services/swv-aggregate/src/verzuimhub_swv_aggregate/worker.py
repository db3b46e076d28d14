"""swv-aggregate's background loops: feed consumption and rollups land here."""

from __future__ import annotations

from verzuimhub_shared.app import Worker

workers: list[Worker] = []
