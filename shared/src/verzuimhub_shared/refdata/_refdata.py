"""The in-memory reference data: one immutable object, built once, checked as a whole.

``RefData.build`` refuses data that does not hold together (a school in an unknown gemeente,
an SWV of the wrong kind, a gemeente in two SWVs of one kind, overlapping postcode ranges) and
lists every problem at once, so a bad delivery of CBS/DUO files fails at start-up, not later
in a request.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType

from verzuimhub_shared.refdata._csv import RefDataError, decode
from verzuimhub_shared.refdata._loaders import (
    SwvMembership,
    parse_gemeenten,
    parse_schools,
    parse_swv_gemeenten,
    parse_swv_postcodes,
)
from verzuimhub_shared.refdata._models import (
    SWV_KINDS,
    Gemeente,
    PostcodeException,
    School,
    Sector,
    Swv,
    SwvKind,
    normalise_pc4,
    swv_kind_for_sector,
    swv_kind_of_code,
)

GEMEENTEN_FILE = "gemeenten.csv"
SWV_GEMEENTEN_FILE = "swv_gemeenten.csv"
SWV_POSTCODES_FILE = "swv_postcodes.csv"
SCHOOLS_FILE = "vestigingen.csv"


@dataclass(frozen=True, eq=False)
class RefData:
    """Gemeenten, samenwerkingsverbanden and school vestigingen. Make one with ``build``,
    ``load_refdata`` or ``sample_refdata``; all lookups take canonical codes (``GM0363``,
    ``PO-22-02``, ``12AB`` + ``00``) and return None (or an empty tuple) for unknown ones.
    """

    gemeenten: Mapping[str, Gemeente]
    swvs: Mapping[str, Swv]
    schools: Mapping[tuple[str, str], School]
    _main_swv: Mapping[tuple[str, SwvKind], str]
    _exceptions: Mapping[tuple[str, SwvKind], tuple[PostcodeException, ...]]
    _schools_by_brin: Mapping[str, tuple[School, ...]]

    def __repr__(self) -> str:
        return (
            f"RefData({len(self.gemeenten)} gemeenten, {len(self.swvs)} SWVs,"
            f" {len(self.schools)} vestigingen)"
        )

    # -- gemeenten ---------------------------------------------------------------------------

    def gemeente_exists(self, code: str) -> bool:
        return code in self.gemeenten

    def gemeente_name(self, code: str) -> str | None:
        gemeente = self.gemeenten.get(code)
        return gemeente.name if gemeente else None

    # -- samenwerkingsverbanden --------------------------------------------------------------

    def swv(self, code: str) -> Swv | None:
        return self.swvs.get(code)

    def all_swvs(self, kind: SwvKind) -> tuple[Swv, ...]:
        return tuple(s for code, s in sorted(self.swvs.items()) if s.kind == kind)

    def swv_for_gemeente(self, code: str, kind: SwvKind, postcode: str | None = None) -> Swv | None:
        """The SWV of ``kind`` covering gemeente ``code``; ``postcode`` (PC4, or a full postcode
        of which only the PC4 is used) selects the exception where an SWV splits the gemeente.
        Without a postcode the SWV covering (most of) the gemeente is returned.

        Raises ValueError for a malformed postcode.
        """
        if postcode is not None:
            pc4 = normalise_pc4(postcode)
            for exception in self._exceptions.get((code, kind), ()):
                if exception.contains(pc4):
                    return self.swvs[exception.swv]
        main = self._main_swv.get((code, kind))
        return self.swvs[main] if main else None

    def swv_for_sector(self, code: str, sector: Sector, postcode: str | None = None) -> Swv | None:
        """The SWV of gemeente ``code`` for pupils of ``sector`` (None for mbo)."""
        kind = swv_kind_for_sector(sector)
        return self.swv_for_gemeente(code, kind, postcode) if kind else None

    # -- schools -----------------------------------------------------------------------------

    def school(self, brin: str, vestiging: str) -> School | None:
        return self.schools.get((brin, vestiging))

    def schools_of_brin(self, brin: str) -> tuple[School, ...]:
        return self._schools_by_brin.get(brin, ())

    def schools_of_swv(self, code: str) -> tuple[School, ...]:
        return tuple(s for s in self.schools.values() if code in (s.swv_po, s.swv_vo))

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        gemeenten: Iterable[Gemeente],
        memberships: Iterable[SwvMembership],
        postcode_exceptions: Iterable[PostcodeException],
        schools: Iterable[School],
    ) -> RefData:
        """Check the parsed files against each other; RefDataError lists every problem."""
        problems: list[str] = []
        gemeente_map = {g.code: g for g in gemeenten}

        swv_names: dict[str, str] = {}
        main_swv: dict[tuple[str, SwvKind], str] = {}
        for m in memberships:
            kind = swv_kind_of_code(m.swv)
            if m.gemeente not in gemeente_map:
                problems.append(f"{m.where}: {m.gemeente} staat niet in de gemeentelijst")
            known_name = swv_names.setdefault(m.swv, m.swv_name)
            if known_name != m.swv_name:
                problems.append(f"{m.where}: {m.swv} heeft twee namen: {known_name!r}, ...")
            current = main_swv.setdefault((m.gemeente, kind), m.swv)
            if current != m.swv:
                problems.append(
                    f"{m.where}: {m.gemeente} ligt in {current} en {m.swv}; zet het kleinste"
                    f" deel als postcodebereik in {SWV_POSTCODES_FILE}"
                )

        exceptions: dict[tuple[str, SwvKind], list[PostcodeException]] = defaultdict(list)
        partial: dict[str, set[str]] = defaultdict(set)
        for e in postcode_exceptions:
            label = f"{SWV_POSTCODES_FILE}: {e.swv} {e.gemeente} {e.pc4_from}-{e.pc4_to}"
            if e.swv not in swv_names:
                problems.append(f"{label}: SWV staat niet in {SWV_GEMEENTEN_FILE}")
            if e.gemeente not in gemeente_map:
                problems.append(f"{label}: gemeente staat niet in de gemeentelijst")
            if main_swv.get((e.gemeente, e.kind)) == e.swv:
                problems.append(f"{label}: de gemeente ligt al geheel in dit SWV")
            for other in exceptions[e.gemeente, e.kind]:
                if e.pc4_from <= other.pc4_to and other.pc4_from <= e.pc4_to:
                    problems.append(f"{label}: overlapt {other.pc4_from}-{other.pc4_to}")
            exceptions[e.gemeente, e.kind].append(e)
            partial[e.swv].add(e.gemeente)

        swv_members: dict[str, set[str]] = defaultdict(set)
        for (gemeente, _), code in main_swv.items():
            swv_members[code].add(gemeente)
        swv_map = {
            code: Swv(
                code=code,
                name=name,
                kind=swv_kind_of_code(code),
                gemeenten=frozenset(swv_members[code]),
                partial_gemeenten=frozenset(partial[code] - swv_members[code]),
            )
            for code, name in swv_names.items()
        }

        def swv_at(school: School, kind: SwvKind) -> str | None:
            main = main_swv.get((school.gemeente, kind))
            for e in exceptions.get((school.gemeente, kind), []):
                if school.pc4 is not None and e.contains(school.pc4):
                    return e.swv
            return main

        school_map: dict[tuple[str, str], School] = {}
        for school in schools:
            label = f"{SCHOOLS_FILE}: {school.code}"
            if school.gemeente not in gemeente_map:
                problems.append(f"{label}: {school.gemeente} staat niet in de gemeentelijst")
            given = {"po": school.swv_po, "vo": school.swv_vo}
            for given_code in given.values():
                if given_code is not None and given_code not in swv_map:
                    problems.append(f"{label}: onbekend SWV {given_code}")
            needed = {swv_kind_for_sector(sector) for sector in school.sectors}
            derived = {
                kind: given[kind] or (swv_at(school, kind) if kind in needed else None)
                for kind in SWV_KINDS
            }
            for kind in sorted(k for k in needed if k is not None):
                if derived[kind] is None:
                    problems.append(f"{label}: geen SWV {kind} te vinden voor {school.gemeente}")
            school_map[school.brin, school.vestiging] = replace(
                school, swv_po=derived["po"], swv_vo=derived["vo"]
            )

        if problems:
            raise RefDataError(problems)

        by_brin: dict[str, list[School]] = defaultdict(list)
        for key in sorted(school_map):
            by_brin[key[0]].append(school_map[key])
        return cls(
            gemeenten=MappingProxyType(dict(sorted(gemeente_map.items()))),
            swvs=MappingProxyType(dict(sorted(swv_map.items()))),
            schools=MappingProxyType(dict(sorted(school_map.items()))),
            _main_swv=MappingProxyType(main_swv),
            _exceptions=MappingProxyType({k: tuple(v) for k, v in exceptions.items()}),
            _schools_by_brin=MappingProxyType({k: tuple(v) for k, v in by_brin.items()}),
        )


def _as_traversable(directory: str | os.PathLike[str] | Traversable) -> Traversable:
    if isinstance(directory, str | os.PathLike):
        return Path(directory)
    return directory


def load_refdata(directory: str | os.PathLike[str] | Traversable) -> RefData:
    """Read ``gemeenten.csv``, ``swv_gemeenten.csv``, ``vestigingen.csv`` and, when present,
    ``swv_postcodes.csv`` from ``directory`` (a path or an importlib.resources Traversable)."""
    root = _as_traversable(directory)
    missing = [
        name
        for name in (GEMEENTEN_FILE, SWV_GEMEENTEN_FILE, SCHOOLS_FILE)
        if not root.joinpath(name).is_file()
    ]
    if missing:
        raise RefDataError([f"{root}: bestand ontbreekt: {name}" for name in missing])

    def read(name: str) -> str:
        return decode(root.joinpath(name).read_bytes())

    postcodes = root.joinpath(SWV_POSTCODES_FILE)
    return RefData.build(
        gemeenten=parse_gemeenten(read(GEMEENTEN_FILE)),
        memberships=parse_swv_gemeenten(read(SWV_GEMEENTEN_FILE)),
        postcode_exceptions=parse_swv_postcodes(read(SWV_POSTCODES_FILE))
        if postcodes.is_file()
        else [],
        schools=parse_schools(read(SCHOOLS_FILE)),
    )


@cache
def sample_refdata() -> RefData:
    """The fictional demo region shipped in ``verzuimhub_shared/data/refdata`` (see its
    README.txt). Cached: RefData is immutable."""
    return load_refdata(files("verzuimhub_shared") / "data" / "refdata")
