"""Drives a demo year through the hub's real REST APIs, as the parties would.

- school software pushes registrations month by month, one school at a time, in batches of
  at most 5,000 with an ``Idempotency-Key`` derived from the body (a retry is a replay, never
  a duplicate; the registrations also carry the school's own ids, the natural key);
- gemeenten record the 5-onder-a vrijstellingen;
- the driver waits until melding's feed consumer has applied all of ingest's feed
  (``GET /v1/feed-cursors`` on melding, and ingest's feed read with melding's consumer token
  after that cursor answers nothing);
- each school lists its concept meldingen and confirms them with a plausible bevestiging;
- the driver waits for the DUO outbox to drain (no melding left ``ingediend``) and for
  swv-aggregate to catch up with both feeds;
- then it reads what DUO received (mock DUO's ``GET /v1/test/ontvangen``), what each gemeente
  can pull (``GET /v1/meldingen``) and the SWV figures of the school year per region.

Tokens are minted from the data directory's development keys with fixed subjects, so a retry
by the same "school" is recognised by the idempotency store.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson

from verzuimhub.demo_data import DemoYear, content_key
from verzuimhub_shared import devkeys
from verzuimhub_shared.periods import school_year_of

MAX_BATCH = 5000
TOKEN_TTL = 4 * 3600


class Progress(Protocol):
    """What the driver reports while it works (a progress bar, log lines, or nothing)."""

    def start(self, label: str, total: int | None) -> None: ...

    def advance(self, n: int = 1, *, to: int | None = None) -> None: ...

    def finish(self, note: str = "") -> None: ...


class QuietProgress:
    def start(self, label: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1, *, to: int | None = None) -> None:
        pass

    def finish(self, note: str = "") -> None:
        pass


@dataclass(frozen=True)
class HubUrls:
    ingest: str
    melding: str
    swv: str
    duo: str


class DemoError(RuntimeError):
    """The hub did not do what the demo expected (timeout, unexpected answer)."""


@dataclass
class DemoOutcome:
    """Everything the demo learned from the hub over HTTP."""

    registraties_sent: int = 0
    registratie_uitkomsten: Counter[str] = field(default_factory=Counter)
    registratie_problemen: list[str] = field(default_factory=list)
    vrijstellingen_recorded: int = 0
    concepts_found: int = 0
    confirmed: int = 0
    #: every melding of the demo's schools as the school sees it, after forwarding
    school_meldingen: list[dict[str, Any]] = field(default_factory=list)
    duo_ontvangen: list[dict[str, Any]] = field(default_factory=list)
    gemeente_meldingen: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    schooljaar: str = ""
    swv_cijfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


class _Tokens:
    def __init__(self, key_dir: Path) -> None:
        self.key_dir = key_dir
        self._cache: dict[tuple[str, str], str] = {}

    def _get(self, role: str, org: str, **kwargs: Any) -> dict[str, str]:
        key = (role, org)
        if key not in self._cache:
            self._cache[key] = devkeys.mint(
                role, self.key_dir, ttl=TOKEN_TTL, subject=f"demo-{role}-{org}", **kwargs
            )
        return {"Authorization": f"Bearer {self._cache[key]}"}

    def school(self, brin: str) -> dict[str, str]:
        return self._get("school", brin, brins=[brin])

    def gemeente(self, code: str) -> dict[str, str]:
        return self._get("gemeente", code, gemeente=code)

    def swv(self, code: str) -> dict[str, str]:
        return self._get("swv", code, swv=code)

    def consumer(self, name: str) -> dict[str, str]:
        return self._get("consumer", name, consumer=name)

    def admin(self) -> dict[str, str]:
        return self._get("admin", "beheer")


async def _request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    expect: Iterable[int] = (200,),
    attempts: int = 5,
    **kwargs: Any,
) -> httpx.Response:
    """One call, retried on connection errors, 5xx, 409 (still in progress) and 429 (rate
    limited, after Retry-After); safe: every mutating call here is idempotent by key or
    natural key."""
    delay = 0.5
    last: str = ""
    for _ in range(attempts):
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code in expect:
                return response
            if response.status_code < 500 and response.status_code not in (409, 429):
                raise DemoError(
                    f"{method} {url} answered {response.status_code}: {response.text[:500]}"
                )
            last = f"{response.status_code}: {response.text[:200]}"
            retry_after = response.headers.get("Retry-After", "")
            if response.status_code == 429 and retry_after.isdigit():
                delay = max(delay, float(retry_after))
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
    raise DemoError(f"{method} {url} kept failing: {last}")


async def _gather_limited(limit: int, jobs: Sequence[Callable[[], Awaitable[None]]]) -> None:
    semaphore = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[None]]) -> None:
        async with semaphore:
            await job()

    await asyncio.gather(*(run(job) for job in jobs))


def bevestiging_for(melding: dict[str, Any], school_name: str) -> dict[str, Any]:
    """What a school's verzuimcoördinator fills in when confirming a concept melding."""
    soort = melding["soort"]
    begin = date.fromisoformat(melding["begindatum"])
    if soort == "L":
        actie = (
            f"Ouders op {begin:%d-%m-%Y} gebeld: het gezin was op vakantie zonder verlof. "
            "Gewezen op de regels voor vakantieverlof (art. 13a)."
        )
        gewenst, prioriteit = True, "normaal"
    elif soort in ("LRV", "RMC"):
        actie = (
            "Leerling is sinds de begindatum niet op school geweest. Huisbezoek door de mentor, "
            "zorgadviesteam ingeschakeld, jeugdarts gevraagd mee te kijken."
        )
        gewenst, prioriteit = True, "hoog"
    else:
        actie = (
            "Gesprek met leerling en ouders door de mentor; afspraken over aanwezigheid "
            "vastgelegd. Verzuim besproken in het zorgadviesteam."
        )
        gewenst, prioriteit = True, "normaal"
    slug = "".join(ch for ch in school_name.lower() if ch.isalnum())[:24] or "school"
    return {
        "ondernomenActie": actie,
        "gemeentelijkeActie": {"gewenst": gewenst, "prioriteit": prioriteit},
        "contactpersoon": {
            "naam": "M. Jansen",
            "functie": "verzuimcoördinator",
            "telefoon": "0599-123456",
            "email": f"verzuim@{slug}.example",
        },
    }


class Driver:
    def __init__(
        self,
        year: DemoYear,
        urls: HubUrls,
        key_dir: Path,
        progress: Progress | None = None,
        *,
        concurrency: int = 4,
        timeout: float = 600.0,
    ) -> None:
        self.year = year
        self.urls = urls
        self.tokens = _Tokens(key_dir)
        self.progress = progress or QuietProgress()
        self.concurrency = concurrency
        self.timeout = timeout
        self.outcome = DemoOutcome(schooljaar=school_year_of(year.end))

    async def run(self) -> DemoOutcome:
        limits = httpx.Limits(max_connections=self.concurrency * 2)
        async with httpx.AsyncClient(timeout=120.0, limits=limits) as client:
            self.client = client
            cursor = (await self._cursors(self.urls.melding)).get("ingest")
            self._applied_before = int(cursor["eventsApplied"]) if cursor else 0
            await self._timed("registraties", self.push_registraties)
            await self._timed("vrijstellingen", self.push_vrijstellingen)
            await self._timed("melding bijgewerkt", self.wait_for_melding)
            await self._timed("bevestigen", self.confirm_concepts)
            await self._timed("naar DUO", self.wait_for_duo)
            await self._timed("swv bijgewerkt", self.wait_for_swv)
            await self._timed("uitlezen", self.collect)
        return self.outcome

    async def _timed(self, name: str, step: Callable[[], Awaitable[None]]) -> None:
        started = time.perf_counter()
        await step()
        self.outcome.timings[name] = time.perf_counter() - started

    # -- pushing -------------------------------------------------------------------------

    def batches(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """(brin, payloads) per month and school, at most MAX_BATCH each, in date order."""
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for brin, payload in self.year.payloads():
            grouped[(payload["datum"][:7], brin)].append(payload)
        out = []
        for (_, brin), items in sorted(grouped.items()):
            for start in range(0, len(items), MAX_BATCH):
                out.append((brin, items[start : start + MAX_BATCH]))
        return out

    async def push_registraties(self) -> None:
        batches = self.batches()
        total = sum(len(items) for _, items in batches)
        self.outcome.registraties_sent = total
        self.progress.start("registraties naar ingest", total)
        months: dict[str, list[tuple[str, list[dict[str, Any]]]]] = defaultdict(list)
        for brin, items in batches:
            months[items[0]["datum"][:7]].append((brin, items))
        for month in sorted(months):  # month after month, the schools of a month side by side
            jobs = [self._batch_job(brin, items) for brin, items in months[month]]
            await _gather_limited(self.concurrency, jobs)
        self.progress.finish()

    def _batch_job(self, brin: str, items: list[dict[str, Any]]) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            body = orjson.dumps({"registraties": items})
            response = await _request(
                self.client,
                "POST",
                f"{self.urls.ingest}/v1/registratie-batches",
                content=body,
                headers={
                    **self.tokens.school(brin),
                    "Content-Type": "application/json",
                    "Idempotency-Key": content_key("demo-batch", body),
                },
            )
            result = response.json()
            for uitkomst in ("aangemaakt", "bijgewerkt", "ongewijzigd", "afgewezen"):
                self.outcome.registratie_uitkomsten[uitkomst] += result[uitkomst]
            for item in result["resultaten"]:
                problem = item.get("probleem")
                if problem and len(self.outcome.registratie_problemen) < 10:
                    params = "; ".join(
                        f"{p['name']}: {p['reason']}" for p in problem.get("invalidParams", [])
                    )
                    self.outcome.registratie_problemen.append(
                        f"{brin} {problem['title']} {params}".strip()
                    )
            self.progress.advance(len(items))

        return job

    async def push_vrijstellingen(self) -> None:
        items = self.year.vrijstellingen
        self.progress.start("5-onder-a vrijstellingen (gemeenten)", len(items))
        for v in items:
            body = orjson.dumps(v.payload())
            await _request(
                self.client,
                "POST",
                f"{self.urls.ingest}/v1/vrijstellingen",
                expect=(201,),
                content=body,
                headers={
                    **self.tokens.gemeente(v.gemeente),
                    "Content-Type": "application/json",
                    "Idempotency-Key": content_key("demo-vrijstelling", body),
                },
            )
            self.outcome.vrijstellingen_recorded += 1
            self.progress.advance()
        self.progress.finish()

    # -- waiting -------------------------------------------------------------------------

    async def _cursors(self, base: str) -> dict[str, dict[str, Any]]:
        response = await _request(
            self.client, "GET", f"{base}/v1/feed-cursors", headers=self.tokens.admin()
        )
        return {c["feed"]: c for c in response.json()}

    async def _caught_up(self, feed_base: str, consumer: str, position: int) -> bool:
        """Nothing left for ``consumer`` on the feed at ``feed_base`` after ``position``."""
        response = await _request(
            self.client,
            "GET",
            f"{feed_base}/v1/feed",
            params={"after": position, "limit": 1},
            headers=self.tokens.consumer(consumer),
        )
        return response.content.strip() == b"[]"

    async def _poll(self, done: Callable[[], Awaitable[bool]], what: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not await done():
            if time.monotonic() > deadline:
                raise DemoError(f"timed out after {self.timeout:.0f} s waiting for {what}")
            await asyncio.sleep(0.5)

    async def wait_for_melding(self) -> None:
        expected = sum(self.outcome.registratie_uitkomsten[k] for k in ("aangemaakt", "bijgewerkt"))
        self.progress.start("melding verwerkt de feed van ingest", expected or None)

        async def done() -> bool:
            cursor = (await self._cursors(self.urls.melding)).get("ingest")
            position = int(cursor["position"]) if cursor else 0
            applied = int(cursor["eventsApplied"]) if cursor else 0
            self.progress.advance(0, to=min(expected, applied - self._applied_before))
            return await self._caught_up(self.urls.ingest, "melding", position)

        await self._poll(done, "melding's feed consumer")
        self.progress.finish()

    async def wait_for_swv(self) -> None:
        self.progress.start("swv-aggregate verwerkt beide feeds", None)

        async def done() -> bool:
            cursors = await self._cursors(self.urls.swv)
            self.progress.advance()
            for feed, base in (("ingest", self.urls.ingest), ("melding", self.urls.melding)):
                position = int(cursors[feed]["position"]) if feed in cursors else 0
                if not await self._caught_up(base, "swv-aggregate", position):
                    return False
            return True

        await self._poll(done, "swv-aggregate's feed consumers")
        self.progress.finish()

    # -- the schools confirm -------------------------------------------------------------

    async def school_meldingen(
        self, brin: str, status: str | None = None, limit: int = 500
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": limit}
            if status:
                params["status"] = status
            if cursor:
                params["cursor"] = cursor
            response = await _request(
                self.client,
                "GET",
                f"{self.urls.melding}/v1/scholen/{brin}/meldingen",
                params=params,
                headers=self.tokens.school(brin),
            )
            page = response.json()
            out.extend(page["meldingen"])
            cursor = page.get("volgende")
            if not cursor:
                return out

    async def confirm_concepts(self) -> None:
        brins = self.year.brins
        concepts: list[dict[str, Any]] = []
        for brin in brins:
            concepts.extend(await self.school_meldingen(brin, "concept"))
        self.outcome.concepts_found = len(concepts)
        self.progress.start("scholen bevestigen conceptmeldingen", len(concepts))
        names = {s.brin: s.name for s in self.year.refdata.schools.values() if s.vestiging == "00"}

        def job(m: dict[str, Any]) -> Callable[[], Awaitable[None]]:
            async def confirm() -> None:
                brin = m["brin"]
                await _request(
                    self.client,
                    "POST",
                    f"{self.urls.melding}/v1/scholen/{brin}/meldingen/{m['id']}/bevestiging",
                    json=bevestiging_for(m, names.get(brin, brin)),
                    headers=self.tokens.school(brin),
                )
                self.outcome.confirmed += 1
                self.progress.advance()

            return confirm

        await _gather_limited(self.concurrency, [job(m) for m in concepts])
        self.progress.finish()

    async def wait_for_duo(self) -> None:
        confirmed = self.outcome.confirmed
        self.progress.start("melding stuurt door naar DUO", confirmed or None)
        brins = self.year.brins

        async def done() -> bool:
            waiting = 0
            for brin in brins:
                waiting += len(await self.school_meldingen(brin, "ingediend"))
            self.progress.advance(0, to=max(0, confirmed - waiting))
            return waiting == 0

        await self._poll(done, "the DUO outbox to drain")
        self.progress.finish()

    # -- reading the results -------------------------------------------------------------

    async def collect(self) -> None:
        self.progress.start("uitlezen: scholen, DUO, gemeenten, SWV's", None)
        for brin in self.year.brins:
            self.outcome.school_meldingen.extend(await self.school_meldingen(brin))
            self.progress.advance()
        response = await _request(self.client, "GET", f"{self.urls.duo}/v1/test/ontvangen")
        self.outcome.duo_ontvangen = response.json()["meldingen"]
        for gemeente in sorted(self.year.refdata.gemeenten):
            self.outcome.gemeente_meldingen[gemeente] = await self.gemeente_meldingen(gemeente)
            self.progress.advance()
        codes = sorted(self.year.refdata.swvs)
        for code in codes:
            response = await _request(
                self.client,
                "GET",
                f"{self.urls.swv}/v1/regios/{code}/cijfers",
                params={"periode": self.outcome.schooljaar},
                headers=self.tokens.swv(code),
            )
            self.outcome.swv_cijfers[code] = response.json()
            self.progress.advance()
        if codes:
            response = await _request(
                self.client,
                "GET",
                f"{self.urls.swv}/v1/landelijk/cijfers",
                params={"periode": self.outcome.schooljaar},
                headers=self.tokens.swv(codes[0]),
            )
            self.outcome.swv_cijfers["NL"] = response.json()
        self.progress.finish()

    async def gemeente_meldingen(self, gemeente: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 500}
            if cursor:
                params["cursor"] = cursor
            response = await _request(
                self.client,
                "GET",
                f"{self.urls.melding}/v1/meldingen",
                params=params,
                headers=self.tokens.gemeente(gemeente),
            )
            page = response.json()
            out.extend(page["meldingen"])
            cursor = page.get("volgende")
            if not cursor:
                return out


def drive(
    year: DemoYear,
    urls: HubUrls,
    key_dir: Path,
    progress: Progress | None = None,
    *,
    concurrency: int = 4,
    timeout: float = 600.0,
) -> DemoOutcome:
    """Run the whole demo year through the hub (blocking)."""
    driver = Driver(year, urls, key_dir, progress, concurrency=concurrency, timeout=timeout)
    return asyncio.run(driver.run())
