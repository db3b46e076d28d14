"""The demo's school year: a deterministic generator of pupils, absence and exemptions.

Pure: no I/O beyond the shipped reference data, the shipped category catalogue and the shipped
holiday calendar. The same ``seed``, ``pupils``, ``start`` and ``end`` always give the same
year, byte for byte, so a retried push is recognised by the hub as the same data.

The region is the fictional sample region shipped with the hub ("Proefland", gemeenten
GM9901..GM9908, SWVs PO-99-01..03 and VO-99-01..02, 49 vestigingen BRIN 99AA..99BS; see
``verzuimhub_shared/data/refdata/README.txt``). Pupils are spread over its schools by sector,
most live in the gemeente of their school.

Patterns (per pupil a profile, then per lesdag a few random draws):

- most pupils are rarely absent: a few illness episodes of 1-5 days, now and then a doctor's
  visit, a late arrival;
- illness follows the season: the chance to fall ill rises from September into the winter,
  with a wave peaking in the second half of November;
- truants (``spijbelaar``): light ones skip an hour now and then, heavy ones go through a spell
  of several weeks in which they skip hours most days: they cross 16 hours in 4 lesweken;
- luxe verzuim: a family leaves one to three lesdagen before a holiday (herfstvakantie) without
  leave, or comes back late;
- long-term absentees: absent without a valid reason on every lesdag for 5-9 weeks (LRV);
- long-term ill pupils, some of whom follow digital distance education for part of the time,
  and a few pupils who take part remotely for some days each week (``afstandsonderwijs``:
  participation, never absence);
- granted leave (verlof_gewichtig), religious days, an occasional schorsing in vo;
- a handful of 5-onder-a exemptions, recorded by gemeenten for children enrolled nowhere.

Registrations fall only on lesdagen of the school's holiday region (never in a holiday, on a
weekend or on a public holiday on which schools close) and never after ``end``.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import Any

from verzuimhub_shared.calendar import SchoolCalendar, region_calendar
from verzuimhub_shared.periods import age_on, school_year_start
from verzuimhub_shared.refdata import RefData, School, sample_refdata

#: Share of pupils per sector, and the pupils one vestiging of that sector gets relative to
#: a po vestiging (a vo school is several times larger than a primary school).
SCHOOL_WEIGHT = {"po": 1.0, "sbo": 0.5, "so": 0.4, "vso": 0.4, "vo": 2.2, "mbo": 3.0}
#: Age on 1 October of the school year, per sector (inclusive range).
AGES = {
    "po": (4, 12),
    "sbo": (6, 12),
    "so": (4, 12),
    "vso": (12, 19),
    "vo": (12, 17),
    "mbo": (16, 21),
}
#: Minutes of a whole school day, and lesuren of a vo day.
DAY_MINUTES = {"po": 300, "sbo": 300, "so": 300, "mbo": 360}
VO_LESUREN = 7
VO_LESUUR_MINUTES = 50
LESUUR_SECTORS = frozenset({"vo", "vso"})

#: Profiles and their share per sector group ("po" = po/sbo/so, "vo" = vo/vso, "mbo").
PROFILES: dict[str, dict[str, float]] = {
    "spijbelaar_licht": {"po": 0.004, "vo": 0.03, "mbo": 0.05},
    "spijbelaar_zwaar": {"po": 0.002, "vo": 0.012, "mbo": 0.02},
    "laatkomer": {"po": 0.02, "vo": 0.05, "mbo": 0.05},
    "luxe": {"po": 0.014, "vo": 0.008, "mbo": 0.0},
    "langdurig": {"po": 0.0008, "vo": 0.003, "mbo": 0.006},
    "langdurig_ziek": {"po": 0.002, "vo": 0.003, "mbo": 0.003},
    "afstand": {"po": 0.001, "vo": 0.003, "mbo": 0.004},
}


def sector_group(sector: str) -> str:
    return "po" if sector in ("po", "sbo", "so") else "vo" if sector in LESUUR_SECTORS else "mbo"


@dataclass(frozen=True, slots=True)
class Pupil:
    number: int
    pgn: str
    geboortedatum: date
    woongemeente: str
    brin: str
    vestiging: str
    sector: str
    startkwalificatie: bool | None
    profile: str


@dataclass(frozen=True, slots=True)
class Registratie:
    """One registered absence: the payload a school's software sends to ingest."""

    pupil: int  # index into DemoYear.pupils
    school_registratie_id: str
    datum: date
    minuten: int
    eenheid: str
    aantal_eenheden: float
    alle_lessen_gemist: bool
    categorie: str

    def payload(self, pupil: Pupil) -> dict[str, Any]:
        body: dict[str, Any] = {
            "schoolRegistratieId": self.school_registratie_id,
            "versie": 1,
            "brin": pupil.brin,
            "vestiging": pupil.vestiging,
            "pgn": pupil.pgn,
            "geboortedatum": pupil.geboortedatum.isoformat(),
            "woongemeente": pupil.woongemeente,
            "sector": pupil.sector,
            "datum": self.datum.isoformat(),
            "minuten": self.minuten,
            "eenheid": self.eenheid,
            "aantalEenheden": self.aantal_eenheden,
            "alleLessenGemist": self.alle_lessen_gemist,
            "categorie": self.categorie,
        }
        if pupil.startkwalificatie is not None:
            body["startkwalificatie"] = pupil.startkwalificatie
        return body


@dataclass(frozen=True, slots=True)
class Vrijstelling:
    """A 5-onder-a exemption a gemeente records for a child enrolled at no school."""

    gemeente: str
    pgn: str
    geboortedatum: date
    begindatum: date
    einddatum: date | None
    soort: str = "5a"

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "soort": self.soort,
            "pgn": self.pgn,
            "geboortedatum": self.geboortedatum.isoformat(),
            "begindatum": self.begindatum.isoformat(),
        }
        if self.einddatum is not None:
            body["einddatum"] = self.einddatum.isoformat()
        return body


@dataclass(frozen=True)
class DemoYear:
    seed: int
    start: date
    end: date
    refdata: RefData
    pupils: tuple[Pupil, ...]
    registraties: tuple[Registratie, ...]
    vrijstellingen: tuple[Vrijstelling, ...]
    calendars: dict[str, SchoolCalendar] = field(repr=False, compare=False)

    def school_of(self, pupil: Pupil) -> School:
        school = self.refdata.school(pupil.brin, pupil.vestiging)
        assert school is not None
        return school

    def calendar_of(self, pupil: Pupil) -> SchoolCalendar:
        return self.calendars[self.school_of(pupil).holiday_region]

    @cached_property
    def by_pupil(self) -> dict[int, list[Registratie]]:
        out: dict[int, list[Registratie]] = {}
        for reg in self.registraties:
            out.setdefault(reg.pupil, []).append(reg)
        return out

    @property
    def brins(self) -> list[str]:
        return sorted({p.brin for p in self.pupils})

    def payloads(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(brin, payload) of every registration, in date order."""
        for reg in self.registraties:
            pupil = self.pupils[reg.pupil]
            yield pupil.brin, reg.payload(pupil)


# --------------------------------------------------------------------------- identities


def _elfproef_ok(digits: str) -> bool:
    weights = (9, 8, 7, 6, 5, 4, 3, 2, -1)
    return sum(w * int(d) for w, d in zip(weights, digits, strict=True)) % 11 == 0


def _bsn(rng: random.Random, taken: set[str]) -> str:
    """A fresh 9-digit number passing the elfproef (BSN form), unique within the demo."""
    while True:
        body = f"{rng.randrange(10_000_000, 99_999_999):08d}"
        total = sum(int(d) * w for d, w in zip(body, range(9, 1, -1), strict=True))
        last = total % 11
        if last == 10:
            continue
        bsn = body + str(last)
        if bsn not in taken and _elfproef_ok(bsn):
            taken.add(bsn)
            return bsn


def _birth_date(rng: random.Random, age: int, reference: date) -> date:
    """A birth date making the child ``age`` on ``reference``."""
    latest = date(reference.year - age, reference.month, reference.day)
    return latest - timedelta(days=rng.randrange(0, 365))


# --------------------------------------------------------------------------- the year


def default_period(today: date) -> tuple[date, date]:
    """From the start of the current school year up to yesterday."""
    yesterday = today - timedelta(days=1)
    return school_year_start(yesterday), yesterday


def _illness_factor(day: date) -> float:
    """Seasonal chance of falling ill: low in late summer, rising into winter, with a wave
    peaking around 20 November and another in early February."""
    month_base = {8: 0.6, 9: 0.8, 10: 1.0, 11: 1.3, 12: 1.6, 1: 1.8, 2: 1.7, 3: 1.3, 4: 1.0}
    base = month_base.get(day.month, 0.7)

    def wave(peak: date, width_days: float, height: float) -> float:
        distance = (day - peak).days
        return height * math.exp(-((distance / width_days) ** 2))

    year = day.year if day.month >= 8 else day.year - 1
    return base + wave(date(year, 11, 20), 12, 1.2) + wave(date(year + 1, 2, 5), 14, 1.0)


class _Builder:
    """Collects one pupil's registrations, at most one per lesdag."""

    def __init__(self, seed: int, pupil: Pupil, number: int) -> None:
        self.pupil = pupil
        self.prefix = f"demo{seed}-{number:06d}"
        self.days: dict[date, Registratie] = {}
        self.lesuur = pupil.sector in LESUUR_SECTORS

    def whole_day(self, day: date, categorie: str) -> None:
        if day in self.days:
            return
        if self.lesuur:
            self._add(day, categorie, VO_LESUREN * VO_LESUUR_MINUTES, VO_LESUREN, True)
        else:
            minutes = DAY_MINUTES[self.pupil.sector]
            self._add(day, categorie, minutes, minutes / 60, True)

    def hours(self, day: date, categorie: str, hours: int) -> None:
        if day in self.days:
            return
        if self.lesuur:
            units = min(hours, VO_LESUREN - 1)
            self._add(day, categorie, units * VO_LESUUR_MINUTES, units, False)
        else:
            self._add(day, categorie, hours * 60, float(hours), False)

    def late(self, day: date, minutes: int) -> None:
        if day in self.days:
            return
        if self.lesuur:  # vo registers the lesuur the pupil came late for
            self._add(day, "te_laat", minutes, 1, False)
        else:
            self._add(day, "te_laat", minutes, round(minutes / 60, 2), False)

    def _add(self, day: date, categorie: str, minutes: int, units: float, whole: bool) -> None:
        self.days[day] = Registratie(
            pupil=self.pupil.number,
            school_registratie_id=f"{self.prefix}-{day:%Y%m%d}",
            datum=day,
            minuten=minutes,
            eenheid="lesuur" if self.lesuur else "klokuur",
            aantal_eenheden=units,
            alle_lessen_gemist=whole,
            categorie=categorie,
        )


def _holiday_edges(calendar: SchoolCalendar, lesdagen: Sequence[date]) -> list[list[date]]:
    """For each holiday in the period: the last lesdagen before it (up to 3)."""
    edges: list[list[date]] = []
    for i, day in enumerate(lesdagen[:-1]):
        gap = (lesdagen[i + 1] - day).days
        if gap > 4:  # more than a weekend: a holiday follows
            edges.append(list(lesdagen[max(0, i - 2) : i + 1]))
    return edges


def generate_year(
    pupils: int = 20_000,
    seed: int = 2026,
    *,
    start: date | None = None,
    end: date | None = None,
    today: date | None = None,
    refdata: RefData | None = None,
) -> DemoYear:
    """A school year of the sample region: ``pupils`` pupils from ``start`` to ``end``
    (default: the current school year up to yesterday)."""
    today = today or date.today()
    default_start, default_end = default_period(today)
    start = start or default_start
    end = end or default_end
    if end >= today:
        raise ValueError("the demo registers nothing on or after today")
    ref = refdata or sample_refdata()
    rng = random.Random(seed)
    schools = sorted(ref.schools.values(), key=lambda s: (s.brin, s.vestiging))
    gemeenten = sorted(ref.gemeenten)
    calendars: dict[str, SchoolCalendar] = {
        region: region_calendar(region) for region in sorted({s.holiday_region for s in schools})
    }
    lesdagen = {r: list(c.lesdagen(start, end)) for r, c in calendars.items()}
    edges = {r: _holiday_edges(calendars[r], days) for r, days in lesdagen.items()}
    reference = date(school_year_start(end).year, 10, 1)

    # Each (vestiging, sector) a share of the pupils.
    slots: list[tuple[School, str]] = [
        (school, sector) for school in schools for sector in sorted(school.sectors)
    ]
    weights = [SCHOOL_WEIGHT[sector] / len(school.sectors) for school, sector in slots]
    taken: set[str] = set()
    pupil_list: list[Pupil] = []
    for number in range(pupils):
        school, sector = rng.choices(slots, weights)[0]
        low, high = AGES[sector]
        age = rng.randint(low, high)
        geboortedatum = _birth_date(rng, age, reference)
        woongemeente = school.gemeente if rng.random() < 0.8 else rng.choice(gemeenten)
        startkwalificatie = False if age >= 15 else None
        group = sector_group(sector)
        roll = rng.random()
        profile = "gewoon"
        for name, shares in PROFILES.items():
            roll -= shares[group]
            if roll < 0:
                profile = name
                break
        pupil_list.append(
            Pupil(
                number,
                _bsn(rng, taken),
                geboortedatum,
                woongemeente,
                school.brin,
                school.vestiging,
                sector,
                startkwalificatie,
                profile,
            )
        )

    registraties: list[Registratie] = []
    for pupil in pupil_list:
        home = ref.school(pupil.brin, pupil.vestiging)
        assert home is not None
        days = lesdagen[home.holiday_region]
        builder = _Builder(seed, pupil, pupil.number)
        _simulate(rng, builder, days, edges[home.holiday_region])
        registraties.extend(builder.days.values())
    registraties.sort(key=lambda r: (r.datum, r.pupil))

    vrijstellingen = _vrijstellingen(rng, taken, gemeenten, pupils, start, end, reference)
    return DemoYear(
        seed=seed,
        start=start,
        end=end,
        refdata=ref,
        pupils=tuple(pupil_list),
        registraties=tuple(registraties),
        vrijstellingen=tuple(vrijstellingen),
        calendars=calendars,
    )


def _simulate(
    rng: random.Random, b: _Builder, days: Sequence[date], edges: Sequence[Sequence[date]]
) -> None:
    if not days:
        return
    profile = b.pupil.profile
    n = len(days)
    # Special stretches first: they take precedence over ordinary absence on their days.
    if profile == "langdurig":
        first = rng.randrange(0, max(1, n - 10))
        length = rng.randint(25, 45)  # 5-9 weeks of lesdagen
        for day in days[first : first + length]:
            b.whole_day(day, rng.choice(("ongeoorloofd_overig", "spijbelen")))
    elif profile == "langdurig_ziek":
        first = rng.randrange(0, max(1, n - 10))
        length = rng.randint(15, 40)
        remote = rng.random() < 0.5
        for i, day in enumerate(days[first : first + length]):
            if remote and i >= 10 and day.weekday() in (1, 3):
                b.whole_day(day, "afstandsonderwijs")
            else:
                b.whole_day(day, "ziekte")
    elif profile == "afstand":
        first = rng.randrange(0, max(1, n - 5))
        length = rng.randint(10, 30)
        weekdays = set(rng.sample(range(5), 2))
        for day in days[first : first + length]:
            if day.weekday() in weekdays:
                b.whole_day(day, "afstandsonderwijs")
    elif profile == "luxe" and edges:
        edge = list(rng.choice(edges))
        for day in edge[-rng.randint(1, len(edge)) :]:
            b.whole_day(day, "luxe_verzuim")
    elif profile == "spijbelaar_zwaar":
        first = rng.randrange(0, max(1, n - 15))
        length = rng.randint(12, 30)
        for day in days[first : first + length]:
            if rng.random() < 0.7:
                b.hours(day, "spijbelen", rng.randint(2, 5))

    frailty = rng.gammavariate(2.0, 0.5)
    sick_left = 0
    for day in days:
        if sick_left > 0:
            b.whole_day(day, "ziekte")
            sick_left -= 1
            continue
        if rng.random() < 0.011 * frailty * _illness_factor(day):
            sick_left = rng.choices((1, 2, 3, 4, 5), (45, 25, 15, 10, 5))[0] - 1
            b.whole_day(day, "ziekte")
            continue
        draw = rng.random()
        if draw < 0.004:
            b.hours(day, "medisch_bezoek", rng.randint(1, 2))
        elif draw < 0.0055:
            b.whole_day(day, "verlof_gewichtig")
        elif draw < 0.006:
            b.whole_day(day, "godsdienst")
        elif draw < 0.0062 and b.lesuur:
            b.whole_day(day, "schorsing")
        elif profile == "laatkomer" and draw < 0.12:
            b.late(day, rng.choice((10, 15, 20, 30)))
        elif draw < 0.009:
            b.late(day, rng.choice((5, 10, 15)))
        elif profile == "spijbelaar_licht" and draw < 0.07:
            b.hours(day, "spijbelen", rng.randint(1, 3))
        elif draw < 0.0095:
            b.hours(day, "ongeoorloofd_overig", 1)


def _vrijstellingen(
    rng: random.Random,
    taken: set[str],
    gemeenten: Sequence[str],
    pupils: int,
    start: date,
    end: date,
    reference: date,
) -> list[Vrijstelling]:
    """About 3 per 1,000 leerplichtigen (national 2021/22: 7,389 on ~2.5 million)."""
    out = []
    count = max(3, round(pupils * 0.003))
    year_end = date(school_year_start(end).year + 1, 7, 31)
    for _ in range(count):
        age = rng.choice((5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17))
        geboortedatum = _birth_date(rng, age, reference)
        if rng.random() < 0.6:  # renewed before 1 July, in force since earlier
            begindatum = start - timedelta(days=rng.randrange(1, 700))
        else:
            begindatum = start + timedelta(days=rng.randrange(0, max(1, (end - start).days)))
        draw = rng.random()
        if draw < 0.15:
            einddatum: date | None = None  # will never be fit for school
        elif draw < 0.3 and begindatum < end:
            einddatum = begindatum + timedelta(
                days=rng.randrange(1, max(2, (end - begindatum).days))
            )
        else:
            einddatum = year_end
        out.append(
            Vrijstelling(
                gemeente=rng.choice(gemeenten),
                pgn=_bsn(rng, taken),
                geboortedatum=geboortedatum,
                begindatum=begindatum,
                einddatum=einddatum,
            )
        )
    return out


def content_key(prefix: str, body: bytes) -> str:
    """An Idempotency-Key derived from the request body: a retry repeats it, other data
    never reuses it."""
    return f"{prefix}-{hashlib.sha256(body).hexdigest()[:40]}"


def age_of(pupil: Pupil, day: date) -> int:
    return age_on(pupil.geboortedatum, day)
