"""Reference data: CBS gemeenten, DUO samenwerkingsverbanden passend onderwijs, school
vestigingen. Pure: parsers turn file text into records, ``RefData`` answers lookups in memory.

The formats of the official files, and what the hub assumes about them, are described in
``_loaders``; the fictional sample region shipped for demos and tests in
``verzuimhub_shared/data/refdata/README.txt``.
"""

from verzuimhub_shared.refdata._csv import RefDataError
from verzuimhub_shared.refdata._loaders import (
    SwvMembership,
    parse_gemeenten,
    parse_schools,
    parse_sectors,
    parse_swv_gemeenten,
    parse_swv_postcodes,
)
from verzuimhub_shared.refdata._models import (
    BRIN_RE,
    GEMEENTE_CODE_RE,
    HOLIDAY_REGIONS,
    PC4_RE,
    SECTORS,
    SWV_CODE_RE,
    SWV_KINDS,
    VESTIGING_RE,
    Gemeente,
    HolidayRegion,
    PostcodeException,
    School,
    Sector,
    Swv,
    SwvKind,
    normalise_gemeente_code,
    normalise_pc4,
    normalise_swv_code,
    swv_kind_for_sector,
    swv_kind_of_code,
)
from verzuimhub_shared.refdata._refdata import (
    GEMEENTEN_FILE,
    SCHOOLS_FILE,
    SWV_GEMEENTEN_FILE,
    SWV_POSTCODES_FILE,
    RefData,
    load_refdata,
    sample_refdata,
)

__all__ = [
    "BRIN_RE",
    "GEMEENTEN_FILE",
    "GEMEENTE_CODE_RE",
    "HOLIDAY_REGIONS",
    "PC4_RE",
    "SCHOOLS_FILE",
    "SECTORS",
    "SWV_CODE_RE",
    "SWV_GEMEENTEN_FILE",
    "SWV_KINDS",
    "SWV_POSTCODES_FILE",
    "VESTIGING_RE",
    "Gemeente",
    "HolidayRegion",
    "PostcodeException",
    "RefData",
    "RefDataError",
    "School",
    "Sector",
    "Swv",
    "SwvKind",
    "SwvMembership",
    "load_refdata",
    "normalise_gemeente_code",
    "normalise_pc4",
    "normalise_swv_code",
    "parse_gemeenten",
    "parse_schools",
    "parse_sectors",
    "parse_swv_gemeenten",
    "parse_swv_postcodes",
    "sample_refdata",
    "swv_kind_for_sector",
    "swv_kind_of_code",
]
