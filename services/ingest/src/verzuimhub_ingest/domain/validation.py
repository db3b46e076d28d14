"""Pure input validators and the date/age helpers they rest on.

Every ``validate_*`` function returns a list of ``Problem`` (empty when the value is fine), so
an endpoint can run them all and answer with every problem at once, as the ``invalid-params``
of one problem+json response: ``InvalidParam(p.name, p.reason)``. Reasons are Dutch, like the
rest of the API's messages, and never repeat the value itself (it may be a BSN).

Rules and their sources:

- **BSN** (Wet algemene bepalingen burgerservicenummer; the "elfproef"): exactly 9 digits
  (a BSN with a leading zero keeps it), weighted sum with weights 9, 8, ..., 2 and -1 for the
  last digit, divisible by 11. ``000000000`` passes the sum and is refused separately.
- **Onderwijsnummer** (issued by DUO to pupils without a BSN): 9 digits, the same weights, but
  the sum leaves remainder **5** modulo 11, so an onderwijsnummer can never pass as a BSN and
  vice versa. Issued numbers start with ``10`` (python-stdnum's ``nl.onderwijsnummer`` checks
  that prefix); the hub only requires the leading ``1``, so a future range ``11..`` is not
  refused by the hub before DUO starts issuing it. Example: ``101222331``.
- **BRIN**: 2 digits + 2 upper-case letters (``12AB``); **vestigingsnummer**: 2 digits.
- **Gemeentecode**: ``GM`` + 4 digits (CBS), and known in the reference data.
- **Registration date**: not after ``today`` and not before the start of the previous school
  year. The school year runs from 1 August to 31 July (Leerplichtwet 1969 art. 1, WPO/WVO);
  Wet ROD art. 30 keeps verzuimgegevens for the school year of registration plus the next, so
  a correction older than that has nothing left to correct.
- **Minutes**: 1..600 per registration (a long school day of 10 hours); the day total of one
  pupil may not exceed 24 hours.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Literal

from verzuimhub_ingest.domain.catalogue import Catalogue
from verzuimhub_shared.periods import school_year_start
from verzuimhub_shared.refdata import RefData

MIN_MINUTES = 1
MAX_MINUTES = 600
MINUTES_PER_DAY = 24 * 60

ELFPROEF_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)
ONDERWIJSNUMMER_REMAINDER = 5
#: What the ASCII code of "0" adds to the weighted sum of a number's bytes (see
#: elfproef_remainder).
_ZERO_OFFSET = sum(ELFPROEF_WEIGHTS) * ord("0")


_NINE_DIGITS = re.compile(r"[0-9]{9}")
_BRIN = re.compile(r"[0-9]{2}[A-Z]{2}")
_VESTIGING = re.compile(r"[0-9]{2}")
_GEMEENTE = re.compile(r"GM[0-9]{4}")
_PC4 = re.compile(r"[1-9][0-9]{3}")

PgnKind = Literal["bsn", "onderwijsnummer"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One invalid input: the field's name (as the client sent it) and why."""

    name: str
    reason: str


def collect(*groups: Iterable[Problem]) -> list[Problem]:
    """All problems of several validators, in order."""
    return [problem for group in groups for problem in group]


# -- persoonsgebonden nummer -----------------------------------------------------------------


def elfproef_remainder(number: str) -> int:
    """Weighted digit sum (9..2, -1) of a 9-digit string, modulo 11."""
    if not _NINE_DIGITS.fullmatch(number):
        raise ValueError("elfproef needs exactly 9 digits")
    return _remainder(number)


def _remainder(digits: str) -> int:
    # Over the ASCII bytes in C (map/operator.mul), minus what the "0"s contribute: a
    # fifth of the cost of int() per digit, and this runs for every registration.
    return (sum(map(operator.mul, ELFPROEF_WEIGHTS, digits.encode())) - _ZERO_OFFSET) % 11


def is_valid_bsn(value: str) -> bool:
    return pgn_kind(value) == "bsn"


def is_valid_onderwijsnummer(value: str) -> bool:
    return pgn_kind(value) == "onderwijsnummer"


def pgn_kind(value: str) -> PgnKind | None:
    """Whether a persoonsgebonden nummer is a BSN or an onderwijsnummer; None if neither.

    The two remainders exclude each other (0 and 5), so one elfproef decides both."""
    if not _NINE_DIGITS.fullmatch(value):
        return None
    remainder = _remainder(value)
    if remainder == 0 and value != "000000000":
        return "bsn"
    if remainder == ONDERWIJSNUMMER_REMAINDER and value.startswith("1"):
        return "onderwijsnummer"
    return None


def validate_bsn(value: str, field: str = "bsn") -> list[Problem]:
    if not _NINE_DIGITS.fullmatch(value):
        return [Problem(field, "een BSN bestaat uit precies 9 cijfers")]
    if value == "000000000":
        return [Problem(field, "een BSN kan niet uit alleen nullen bestaan")]
    if elfproef_remainder(value) != 0:
        return [Problem(field, "het BSN voldoet niet aan de elfproef")]
    return []


def validate_onderwijsnummer(value: str, field: str = "onderwijsnummer") -> list[Problem]:
    if not _NINE_DIGITS.fullmatch(value):
        return [Problem(field, "een onderwijsnummer bestaat uit precies 9 cijfers")]
    if not value.startswith("1"):
        return [Problem(field, "een onderwijsnummer begint met een 1")]
    if elfproef_remainder(value) != ONDERWIJSNUMMER_REMAINDER:
        return [Problem(field, "het onderwijsnummer voldoet niet aan de elfproef")]
    return []


def validate_pgn(value: str, field: str = "pgn") -> list[Problem]:
    """A persoonsgebonden nummer: a valid BSN or a valid onderwijsnummer."""
    if not _NINE_DIGITS.fullmatch(value):
        return [Problem(field, "een BSN of onderwijsnummer bestaat uit precies 9 cijfers")]
    if pgn_kind(value) is None:
        return [Problem(field, "geen geldig BSN of onderwijsnummer (elfproef)")]
    return []


# -- school and gemeente ---------------------------------------------------------------------


def validate_brin(value: str, field: str = "brin") -> list[Problem]:
    if not _BRIN.fullmatch(value):
        return [Problem(field, "een BRIN bestaat uit 2 cijfers en 2 hoofdletters, bijv. 12AB")]
    return []


def validate_vestigingsnummer(value: str, field: str = "vestiging") -> list[Problem]:
    if not _VESTIGING.fullmatch(value):
        return [Problem(field, "een vestigingsnummer bestaat uit 2 cijfers, bijv. 00")]
    return []


def validate_school(
    brin: str,
    vestiging: str,
    refdata: RefData,
    *,
    brin_field: str = "brin",
    vestiging_field: str = "vestiging",
) -> list[Problem]:
    """BRIN and vestigingsnummer well formed and together a known school vestiging."""
    problems = collect(
        validate_brin(brin, brin_field), validate_vestigingsnummer(vestiging, vestiging_field)
    )
    if problems:
        return problems
    if refdata.school(brin, vestiging) is not None:
        return []
    if refdata.schools_of_brin(brin):
        return [Problem(vestiging_field, "deze BRIN heeft geen vestiging met dit nummer")]
    return [Problem(brin_field, "onbekende BRIN")]


def validate_gemeente_code(
    value: str, field: str = "gemeente", refdata: RefData | None = None
) -> list[Problem]:
    """``GM`` + 4 digits and, when ``refdata`` is given, a known gemeente."""
    if not _GEMEENTE.fullmatch(value):
        return [Problem(field, "een gemeentecode is GM gevolgd door 4 cijfers, bijv. GM0363")]
    if refdata is not None and not refdata.gemeente_exists(value):
        return [Problem(field, "onbekende gemeente")]
    return []


def validate_pc4(value: str, field: str = "postcode") -> list[Problem]:
    """The 4 digits of a postcode (the hub keeps no more of an address)."""
    if not _PC4.fullmatch(value):
        return [Problem(field, "geef de 4 cijfers van de postcode, bijv. 1234")]
    return []


# -- registration ----------------------------------------------------------------------------


def validate_category(code: str, catalogue: Catalogue, field: str = "categorie") -> list[Problem]:
    """A category new registrations may use: known and not retired."""
    category = catalogue.get(code)
    if category is None:
        return [Problem(field, f"onbekende categorie (catalogus {catalogue.version})")]
    if category.retired:
        return [Problem(field, f"categorie vervallen in catalogus {catalogue.version}")]
    return []


@lru_cache(maxsize=4)  # the same ``today`` for every item of a request
def earliest_registration_date(today: date) -> date:
    """1 August of the previous school year."""
    start = school_year_start(today)
    return start.replace(year=start.year - 1)


def validate_registration_date(value: date, today: date, field: str = "datum") -> list[Problem]:
    if value > today:
        return [Problem(field, "de datum ligt in de toekomst")]
    earliest = earliest_registration_date(today)
    if value < earliest:
        return [Problem(field, f"de datum ligt voor {earliest.isoformat()}, het vorige schooljaar")]
    return []


def validate_minutes(value: int, field: str = "minuten") -> list[Problem]:
    if isinstance(value, bool) or not isinstance(value, int):
        return [Problem(field, "het aantal minuten is een geheel getal")]
    if not MIN_MINUTES <= value <= MAX_MINUTES:
        return [Problem(field, f"het aantal minuten ligt tussen {MIN_MINUTES} en {MAX_MINUTES}")]
    return []


def validate_day_total(
    existing_minutes: int, new_minutes: int, field: str = "minuten"
) -> list[Problem]:
    """The pupil's minutes on one day (already registered + new) fit in 24 hours."""
    if existing_minutes + new_minutes > MINUTES_PER_DAY:
        return [
            Problem(
                field,
                f"met de al geregistreerde {existing_minutes} minuten wordt het dagtotaal"
                f" meer dan 24 uur",
            )
        ]
    return []
