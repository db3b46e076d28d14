"""The OpenAPI document as the Dutch API Design Rules (ADR 2.1) linter reads it.

FastAPI's generated document is adjusted in one place: 400 problem+json instead of 422,
problem responses for 401/403/404/409/422/429/500, the API-Version header on 2xx
responses, contact information and https servers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "title", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "format": "int32"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "invalidParams": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "reason"],
                "properties": {"name": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
}

_DESCRIPTIONS = {
    "400": "Ongeldige invoer; alle problemen staan in invalidParams",
    "401": "Geen of ongeldig token",
    "403": "Token zonder de vereiste scope of organisatie",
    "404": "Niet gevonden",
    "409": "Conflict met de bestaande toestand",
    "413": "Verzoek te groot",
    "422": "Idempotency-Key hergebruikt met een andere inhoud",
    "429": "Te veel verzoeken",
    "500": "Interne fout",
}


def _problem(code: str) -> dict[str, Any]:
    return {
        "description": _DESCRIPTIONS.get(code, "Fout"),
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def build_openapi(
    app: FastAPI,
    *,
    version: str,
    public_base_url: str,
    models: Sequence[type[BaseModel]] = (),
) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title,
        version=version,
        description=app.description,
        routes=app.routes,
    )
    doc["info"]["contact"] = {
        "name": "Verzuimhub",
        "email": "beheer@verzuimhub.nl",
        "url": "https://verzuimhub.nl",
    }
    base = public_base_url if public_base_url.startswith("https://") else "https://localhost"
    doc["servers"] = [{"url": base.rstrip("/"), "description": "Verzuimhub"}]
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    for model in models:
        schema = model.model_json_schema(
            by_alias=True, ref_template="#/components/schemas/{model}", mode="validation"
        )
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    doc["components"].setdefault("headers", {})["API-Version"] = {
        "description": "De volledige versie van de API (semver)",
        "schema": {"type": "string", "example": version},
    }
    secured_any = False
    for path_item in doc.get("paths", {}).values():
        for method, op in path_item.items():
            if not isinstance(op, dict):
                continue
            responses: dict[str, Any] = op.setdefault("responses", {})
            generated = responses.get("422", {})
            had_422 = "HTTPValidationError" in str(generated)
            if had_422:  # FastAPI's own 422 for validation: we answer 400 instead
                del responses["422"]
            has_input = "requestBody" in op or bool(op.get("parameters"))
            if had_422 or has_input or method in {"post", "put", "patch"}:
                responses["400"] = _problem("400")
            if op.get("security"):
                secured_any = True
                responses.setdefault("401", _problem("401"))
                responses.setdefault("403", _problem("403"))
            for code, response in list(responses.items()):
                if code.startswith(("4", "5")):
                    responses[code] = _problem(code) | {
                        "description": response.get("description") or _DESCRIPTIONS.get(code)
                    }
                elif code.startswith("2"):
                    response.setdefault("headers", {})["API-Version"] = {
                        "$ref": "#/components/headers/API-Version"
                    }
            responses.setdefault("500", _problem("500"))
    if secured_any:
        doc["components"].setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
        }
    return doc
