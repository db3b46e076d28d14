"""The feed's HTTP routes: the producer's ``/v1/feed`` and the consumer's cursor status.

No ``from __future__ import annotations`` here: FastAPI reads these signatures at runtime.
"""

from datetime import datetime
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from sqlalchemy import Table, select

from verzuimhub_shared.auth import Admin, FeedReader
from verzuimhub_shared.db import SessionDep
from verzuimhub_shared.errors import Forbidden
from verzuimhub_shared.feed import (
    CLOUDEVENTS_BATCH,
    FEED_HEAD_HEADER,
    FeedTables,
    last_position_for,
    read_batch,
)
from verzuimhub_shared.validation import service_router


def feed_router(tables: FeedTables, *, sealer_attr: str | None = None) -> Any:
    """``GET /v1/feed?after=&limit=`` for consumer tokens: each sees only its own events."""
    router = service_router(tags=["feed"])

    @router.get(
        "/v1/feed",
        operation_id="getFeed",
        summary="Events for the calling consumer after a position (CloudEvents batch)",
        response_class=Response,
        responses={
            200: {
                "description": "CloudEvents batch, in position order",
                "content": {CLOUDEVENTS_BATCH: {"schema": {"type": "array", "items": {}}}},
            }
        },
    )
    async def get_feed(
        request: Request,
        principal: FeedReader,
        session: SessionDep,
        after: Annotated[int, Query(ge=0, description="Last position already applied")] = 0,
        limit: Annotated[int, Query(ge=1, le=5000, description="Most events returned")] = 500,
    ) -> Response:
        if not principal.consumer:
            raise Forbidden("Dit token hoort bij geen consument")
        sealer = getattr(request.app.state, sealer_attr) if sealer_attr else None
        body = await read_batch(session, tables, principal.consumer, after, limit, sealer)
        head = await last_position_for(session, tables, principal.consumer)
        return Response(body, media_type=CLOUDEVENTS_BATCH, headers={FEED_HEAD_HEADER: str(head)})

    return router


def cursor_status_router(cursors: Table) -> Any:
    """``GET /v1/feed-cursors`` (admin): how far this service has consumed each feed."""

    class FeedCursor(BaseModel):
        model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
        feed: str
        position: int
        events_applied: int
        updated_at: datetime

    router = service_router(tags=["beheer"])

    @router.get(
        "/v1/feed-cursors",
        operation_id="listFeedCursors",
        summary="Consumed positions per feed",
        response_model=list[FeedCursor],
        response_model_by_alias=True,
    )
    async def list_cursors(_: Admin, session: SessionDep) -> list[FeedCursor]:
        rows = await session.execute(select(cursors).order_by(cursors.c.feed))
        return [FeedCursor.model_validate(dict(row._mapping)) for row in rows]

    return router
