"""Melding's HTTP routes."""

from __future__ import annotations

from verzuimhub_melding.models import CURSORS, FEED
from verzuimhub_shared.feed_api import cursor_status_router, feed_router

routers = [feed_router(FEED), cursor_status_router(CURSORS)]
