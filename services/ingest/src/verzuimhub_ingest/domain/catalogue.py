"""The category catalogue: the reasons a school may register for absence, kept as data.

The law does not fix the categories yet; the field will, later, and they must be changeable
quickly. So the catalogue is a versioned JSON file (``data/categorieen.json`` by default; any
other file can be named through a setting), read and checked strictly at start-up. Changing a
category needs a new file, no code change.

File format::

    {"version": "2026.1", "description": "...", "categories": [
        {"code": "ziekte", "label": "Ziekte", "authorised": true, "participation": false,
         "duoVerzuimsoort": null, "group": "geoorloofd", "note": "...", "retired": false}]}

Per category:

- ``code``: stable key stored with every registration (lower case, digits, ``_``);
- ``label``: Dutch label for screens;
- ``authorised``: geoorloofd (true) or ongeoorloofd (false);
- ``participation``: true for digital distance education: the pupil takes part remotely, it is
  recorded so total participation is visible and never counts as absence. Such a category is
  authorised, in group ``deelname``, and has no DUO verzuimsoort;
- ``duoVerzuimsoort``: the DUO verzuimsoort a single registration in this category always
  leads to (``L`` for luxe verzuim), else null. Only unauthorised categories can have one;
- ``group``: coarse group for anonymised statistics: ``geoorloofd``, ``ongeoorloofd``,
  ``luxe``, ``deelname``. The group must agree with ``authorised``/``participation``, so
  statistics by group never mix authorised and unauthorised absence;
- ``note`` (optional): the legal ground or practice the category rests on;
- ``retired`` (optional, default false): the code is kept so earlier registrations still
  resolve, but new registrations may not use it. Remove a category by retiring it, never by
  deleting it while registrations that use it are kept.

Unknown keys are refused, so a typo in a key fails loudly instead of being ignored.
"""

from __future__ import annotations

import os
from collections import Counter
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

CategoryGroup = Literal["geoorloofd", "ongeoorloofd", "luxe", "deelname"]
#: DUO verzuimsoorten (codes of the former IB-Groep verzuimloket, see docs/domain.md).
DuoVerzuimsoort = Literal["V3", "V4", "RMC", "L", "LRV", "O"]


class CatalogueError(ValueError):
    """A catalogue file that cannot be used; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(
            f"ongeldige categoriecatalogus {source}:\n" + "\n".join(f"- {p}" for p in problems)
        )


class Category(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)
    label: str = Field(min_length=1, max_length=200)
    authorised: bool
    participation: bool
    duo_verzuimsoort: DuoVerzuimsoort | None = Field(None, alias="duoVerzuimsoort")
    group: CategoryGroup
    note: str | None = None
    retired: bool = False

    @property
    def counts_as_absence(self) -> bool:
        return not self.participation

    @property
    def counts_as_unauthorised(self) -> bool:
        return not self.authorised

    @model_validator(mode="after")
    def _consistent(self) -> Category:
        problems = []
        if self.participation:
            if not self.authorised:
                problems.append("participation=true vereist authorised=true")
            if self.group != "deelname":
                problems.append("participation=true hoort in group 'deelname'")
        elif self.group == "deelname":
            problems.append("group 'deelname' is alleen voor participation=true")
        if self.group == "geoorloofd" and not self.authorised:
            problems.append("group 'geoorloofd' vereist authorised=true")
        if self.group in ("ongeoorloofd", "luxe") and self.authorised:
            problems.append(f"group {self.group!r} vereist authorised=false")
        if self.duo_verzuimsoort is not None and self.authorised:
            problems.append("een duoVerzuimsoort hoort alleen bij ongeoorloofd verzuim")
        if problems:
            raise ValueError(f"categorie {self.code!r}: " + "; ".join(problems))
        return self


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    version: str = Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z.\-]*$", max_length=40)
    description: str | None = None
    categories: tuple[Category, ...]

    _by_code: dict[str, Category] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique_codes(self) -> Catalogue:
        counts = Counter(c.code for c in self.categories)
        duplicates = sorted(code for code, n in counts.items() if n > 1)
        if duplicates:
            raise ValueError(f"dubbele categoriecode(s): {', '.join(duplicates)}")
        if not self.categories:
            raise ValueError("de catalogus heeft geen categorieën")
        if all(c.retired for c in self.categories):
            raise ValueError("er is geen enkele actieve (niet-retired) categorie")
        return self

    def model_post_init(self, context: object, /) -> None:
        self._by_code.update((c.code, c) for c in self.categories)

    def get(self, code: str) -> Category | None:
        """The category with ``code``, retired ones included; None when unknown."""
        return self._index().get(code)

    def __contains__(self, code: object) -> bool:
        return code in self._index()

    def _index(self) -> dict[str, Category]:
        # Straight from pydantic's private storage: ``self._by_code`` goes through
        # BaseModel.__getattr__, several times the cost of the lookup itself, and this runs
        # for every registration (validation and projection).
        private = self.__pydantic_private__
        assert private is not None
        by_code: dict[str, Category] = private["_by_code"]
        return by_code

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.categories)

    def active(self) -> tuple[Category, ...]:
        """Categories new registrations may use."""
        return tuple(c for c in self.categories if not c.retired)

    def in_group(self, group: CategoryGroup) -> tuple[Category, ...]:
        return tuple(c for c in self.categories if c.group == group)


def parse_catalogue(data: str | bytes, *, source: str = "<catalogus>") -> Catalogue:
    """Validate a catalogue document; CatalogueError lists every problem."""
    try:
        return Catalogue.model_validate_json(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(part) for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        raise CatalogueError(source, problems) from exc


def load_catalogue(path: str | os.PathLike[str] | None = None) -> Catalogue:
    """Read the catalogue at ``path``, or the one shipped with the service when None."""
    if path is None:
        return default_catalogue()
    return parse_catalogue(Path(path).read_bytes(), source=str(path))


@cache
def default_catalogue() -> Catalogue:
    """The shipped ``data/categorieen.json``. Cached: a Catalogue is immutable."""
    resource = files("verzuimhub_ingest") / "data" / "categorieen.json"
    return parse_catalogue(resource.read_bytes(), source="verzuimhub_ingest/data/categorieen.json")
