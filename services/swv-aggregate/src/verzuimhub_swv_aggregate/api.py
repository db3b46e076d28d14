"""swv-aggregate's HTTP routes."""

from __future__ import annotations

from verzuimhub_shared.feed_api import cursor_status_router
from verzuimhub_swv_aggregate.models import CURSORS

routers = [cursor_status_router(CURSORS)]
