"""Each service's OpenAPI document follows the Dutch API Design Rules as the architecture
lists them (the rules the government's Spectral ruleset checks)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from verzuimhub.services import services

SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
KEBAB = re.compile(r"^([a-z0-9]+(-[a-z0-9]+)*|\{[A-Za-z]+\})$")
LOWER_CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")
UPPER_CAMEL = re.compile(r"^[A-Z][a-zA-Z0-9]*$")


@pytest.fixture(scope="module", params=sorted(services()))
async def document(request: pytest.FixtureRequest, app_client: Callable[..., Any]) -> Any:
    async with app_client(request.param) as client:
        response = await client.get("/v1/openapi.json")
    assert response.status_code == 200
    return request.param, response.json()


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, op


def _properties(schema: Any, found: set[str]) -> None:
    if isinstance(schema, dict):
        for name, sub in schema.get("properties", {}).items():
            found.add(name)
            _properties(sub, found)
        for value in schema.values():
            _properties(value, found)
    elif isinstance(schema, list):
        for value in schema:
            _properties(value, found)


def test_info_servers_and_schema_names(document: Any) -> None:
    name, doc = document
    assert doc["openapi"].startswith("3.")
    assert SEMVER.match(doc["info"]["version"]), name
    assert {"name", "email", "url"} <= doc["info"]["contact"].keys()
    assert all(s["url"].startswith("https://") for s in doc["servers"])
    for schema_name in doc["components"]["schemas"]:
        assert UPPER_CAMEL.match(schema_name), f"{name}: schema {schema_name}"


def test_paths_are_kebab_case_without_trailing_slash(document: Any) -> None:
    name, doc = document
    for path, _, _ in _operations(doc):
        assert path.startswith("/v1/"), path
        assert not path.endswith("/"), path
        for segment in path.strip("/").split("/"):
            assert KEBAB.match(segment), f"{name}: {path}"


def test_query_parameters_and_properties_are_lower_camel_case(document: Any) -> None:
    name, doc = document
    for path, method, op in _operations(doc):
        for param in op.get("parameters", []):
            if param["in"] == "query":
                assert LOWER_CAMEL.match(param["name"]), f"{name}: {method} {path} {param}"
    found: set[str] = set()
    _properties(doc["components"]["schemas"], found)
    wrong = sorted(p for p in found if not LOWER_CAMEL.match(p))
    assert not wrong, f"{name}: properties not lowerCamelCase: {wrong}"


def test_errors_are_problem_json_and_inputs_document_400(document: Any) -> None:
    name, doc = document
    problem = doc["components"]["schemas"]["Problem"]
    assert {"status", "title", "detail"} <= set(problem["required"])
    for path, method, op in _operations(doc):
        responses = op["responses"]
        if method in {"post", "put", "patch"} or op.get("parameters"):
            assert "400" in responses, f"{name}: {method} {path} documents no 400"
        for code, response in responses.items():
            if code[0] in "45":
                content = response.get("content", {})
                assert list(content) == ["application/problem+json"], f"{name}: {path} {code}"
            if code.startswith("2"):
                assert "API-Version" in response.get("headers", {}), f"{name}: {path} {code}"


def test_operation_ids_are_unique_and_dates_have_formats(document: Any) -> None:
    name, doc = document
    ids = [op["operationId"] for _, _, op in _operations(doc)]
    assert len(ids) == len(set(ids)), name
    assert all(ids), name

    def walk(schema: Any) -> Iterator[dict[str, Any]]:
        if isinstance(schema, dict):
            yield schema
            for value in schema.values():
                yield from walk(value)
        elif isinstance(schema, list):
            for value in schema:
                yield from walk(value)

    for schema in walk(doc["components"]["schemas"]):
        if schema.get("type") == "string" and "format" in schema:
            assert schema["format"] in {
                "date",
                "date-time",
                "time-local",
                "time",
                "uri",
                "email",
                "uuid",
                "binary",
                "duration",
            }, f"{name}: format {schema['format']}"
