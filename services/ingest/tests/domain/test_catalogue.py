from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from verzuimhub_ingest.domain.catalogue import (
    Catalogue,
    CatalogueError,
    default_catalogue,
    load_catalogue,
    parse_catalogue,
)

#: The starting table of docs/domain.md: code → authorised (None: participation).
DOMAIN_TABLE: dict[str, bool | None] = {
    "ziekte": True,
    "medisch_bezoek": True,
    "schorsing": True,
    "godsdienst": True,
    "verlof_vakantie": True,
    "verlof_gewichtig": True,
    "school_gesloten": True,
    "afstandsonderwijs": None,
    "te_laat": False,
    "spijbelen": False,
    "luxe_verzuim": False,
    "ongeoorloofd_overig": False,
}


def category(code: str = "ziekte", **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "code": code,
        "label": f"Categorie {code}",
        "authorised": True,
        "participation": False,
        "duoVerzuimsoort": None,
        "group": "geoorloofd",
    }
    return base | overrides


def document(*categories: dict[str, Any], **top: Any) -> str:
    return json.dumps({"version": "2099.1", "categories": list(categories)} | top)


def problems_of(data: str) -> list[str]:
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(data, source="test.json")
    assert info.value.source == "test.json"
    return info.value.problems


# -- the shipped catalogue -------------------------------------------------------------------


def test_shipped_catalogue_follows_the_domain_table() -> None:
    catalogue = load_catalogue()
    assert catalogue.version == "2026.1"
    assert catalogue.codes == tuple(DOMAIN_TABLE)
    for code, authorised in DOMAIN_TABLE.items():
        entry = catalogue.get(code)
        assert entry is not None
        assert entry.participation is (authorised is None)
        if authorised is not None:
            assert entry.authorised is authorised
        assert entry.label
        assert not entry.retired
    assert catalogue.active() == catalogue.categories


def test_distance_education_is_participation_never_absence() -> None:
    entry = default_catalogue().get("afstandsonderwijs")
    assert entry is not None
    assert entry.participation
    assert not entry.counts_as_absence
    assert not entry.counts_as_unauthorised
    assert entry.group == "deelname"
    assert entry.duo_verzuimsoort is None


def test_luxe_verzuim_maps_to_duo_l() -> None:
    catalogue = default_catalogue()
    luxe = catalogue.get("luxe_verzuim")
    assert luxe is not None
    assert luxe.duo_verzuimsoort == "L"
    assert luxe.group == "luxe"
    assert luxe.counts_as_unauthorised
    others = [c.code for c in catalogue.categories if c.duo_verzuimsoort is not None]
    assert others == ["luxe_verzuim"]


def test_groups_never_mix_authorised_and_unauthorised() -> None:
    catalogue = default_catalogue()
    assert {c.code for c in catalogue.in_group("geoorloofd")} == {
        code for code, authorised in DOMAIN_TABLE.items() if authorised is True
    }
    assert {c.code for c in catalogue.in_group("ongeoorloofd")} == {
        "te_laat",
        "spijbelen",
        "ongeoorloofd_overig",
    }


def test_lookup() -> None:
    catalogue = default_catalogue()
    assert "ziekte" in catalogue
    assert "griep" not in catalogue
    assert catalogue.get("griep") is None
    assert load_catalogue(None) is default_catalogue()


def test_catalogue_is_immutable() -> None:
    catalogue = default_catalogue()
    with pytest.raises(ValidationError):
        catalogue.version = "9"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        catalogue.categories[0].authorised = False  # type: ignore[misc]


# -- another catalogue, no code change -------------------------------------------------------


def test_a_new_catalogue_file_is_just_data(tmp_path: Path) -> None:
    path = tmp_path / "categorieen-2027.json"
    path.write_text(
        document(
            category("ziekte"),
            category("mantelzorg", label="Zorg voor een gezinslid", note="proef"),
            category("spijbelen", authorised=False, group="ongeoorloofd"),
            category("te_laat", authorised=False, group="ongeoorloofd", retired=True),
            version="2027.1",
            description="Na overleg met het veld",
        ),
        encoding="utf-8",
    )
    catalogue = load_catalogue(path)
    assert catalogue.version == "2027.1"
    assert catalogue.get("mantelzorg") is not None
    retired = catalogue.get("te_laat")
    assert retired is not None
    assert retired.retired, "a retired code still resolves for old registrations"
    assert [c.code for c in catalogue.active()] == ["ziekte", "mantelzorg", "spijbelen"]
    assert load_catalogue(str(path)) == catalogue


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_catalogue(tmp_path / "nope.json")


# -- strictness ------------------------------------------------------------------------------


def test_invalid_json() -> None:
    (problem,) = problems_of("{not json")
    assert "JSON" in problem


def test_unknown_keys_are_refused() -> None:
    problems = problems_of(document(category(authorized=True), extra=1))
    assert "categories.0.authorized: Extra inputs are not permitted" in problems
    assert "extra: Extra inputs are not permitted" in problems


def test_snake_case_key_is_an_unknown_key() -> None:
    entry = category("luxe_verzuim", authorised=False, group="luxe")
    del entry["duoVerzuimsoort"]
    entry["duo_verzuimsoort"] = "L"
    assert problems_of(document(entry)) == [
        "categories.0.duo_verzuimsoort: Extra inputs are not permitted"
    ]


def test_types_are_strict() -> None:
    problems = problems_of(document(category(authorised="true", participation=0)))
    assert len(problems) == 2
    assert problems[0].startswith("categories.0.authorised:")
    assert problems[1].startswith("categories.0.participation:")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"code": "Ziekte"}, "code"),
        ({"code": "ziekte thuis"}, "code"),
        ({"code": ""}, "code"),
        ({"label": ""}, "label"),
        ({"group": "overig"}, "group"),
        ({"duoVerzuimsoort": "X"}, "duoVerzuimsoort"),
    ],
)
def test_field_values_are_checked(overrides: dict[str, Any], field: str) -> None:
    (problem,) = problems_of(document(category(**overrides)))
    assert problem.startswith(f"categories.0.{field}")


def test_required_fields() -> None:
    entry = category()
    del entry["authorised"]
    del entry["group"]
    problems = problems_of(document(entry))
    assert problems == [
        "categories.0.authorised: Field required",
        "categories.0.group: Field required",
    ]
    assert problems_of('{"categories": []}') == ["version: Field required"]


@pytest.mark.parametrize("version", ["", " 2026.1", "2026 1", "a" * 41])
def test_version_is_checked(version: str) -> None:
    (problem,) = problems_of(document(category(), version=version))
    assert problem.startswith("version:")


def test_duplicate_codes() -> None:
    (problem,) = problems_of(document(category("ziekte"), category("ziekte")))
    assert "dubbele categoriecode(s): ziekte" in problem


def test_empty_or_all_retired() -> None:
    assert "geen categorieën" in problems_of(document())[0]
    assert "geen enkele actieve" in problems_of(document(category(retired=True)))[0]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"participation": True, "group": "deelname", "authorised": False}, "authorised=true"),
        ({"participation": True}, "group 'deelname'"),
        ({"group": "deelname"}, "alleen voor participation=true"),
        ({"authorised": False}, "group 'geoorloofd' vereist authorised=true"),
        ({"group": "ongeoorloofd"}, "vereist authorised=false"),
        ({"group": "luxe"}, "vereist authorised=false"),
        ({"duoVerzuimsoort": "L"}, "alleen bij ongeoorloofd"),
        (
            {"participation": True, "group": "deelname", "duoVerzuimsoort": "O"},
            "alleen bij ongeoorloofd",
        ),
    ],
)
def test_authorised_participation_and_group_agree(overrides: dict[str, Any], reason: str) -> None:
    (problem,) = problems_of(document(category("x", **overrides)))
    assert problem.startswith("categories.0: categorie 'x': ")
    assert reason in problem


def test_error_message_names_the_file_and_every_problem() -> None:
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(document(category("a", group="x"), category("b", label="")), source="f")
    assert str(info.value).splitlines()[0] == "ongeldige categoriecatalogus f:"
    assert len(info.value.problems) == 2
    assert isinstance(info.value, ValueError)


def test_model_is_usable_directly() -> None:
    catalogue = Catalogue.model_validate_json(document(category()))
    assert catalogue.get("ziekte") is catalogue.categories[0]
