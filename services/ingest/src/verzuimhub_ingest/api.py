"""Ingest's HTTP routes."""

from __future__ import annotations

from verzuimhub_ingest.models import FEED
from verzuimhub_shared.feed_api import feed_router

routers = [feed_router(FEED, sealer_attr="sealer")]
