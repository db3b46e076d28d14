"""The baseline for the single-registration benchmark: a bare FastAPI endpoint that only
validates the same body (the same ``RegistratieIn`` model, written the ordinary FastAPI way)
and answers 201. No auth, no database, no middleware, no logging.

    uv run python -m uvicorn bare_app:app --app-dir bench --port 8099
"""

from typing import Any

from fastapi import FastAPI

from verzuimhub_ingest.schemas import RegistratieIn

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.post("/v1/registraties", status_code=201)
async def create_registratie(item: RegistratieIn) -> dict[str, Any]:
    return {
        "schoolRegistratieId": item.school_registratie_id,
        "brin": item.brin,
        "versie": item.versie,
    }
