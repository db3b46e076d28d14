"""The dashboard in a real headless browser: Debian's Chromium, driven by Playwright.

swv-aggregate runs as a real uvicorn server on seeded PostgreSQL data. The test signs in with
an SWV token (and, in a second test, with the development sign-in), and checks: no console
errors (a CSP violation is one), every chart drawn as SVG, a suppressed value shown as
suppressed and never drawn, the table equal to the ground truth, CSV downloads (a dashboard
table and an API table). It keeps a screenshot in ``artifacts/dashboard.png``.

Needs ``/usr/bin/chromium`` (``apt-get install chromium``); skipped with that reason otherwise.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from verzuimhub_swv_aggregate.periods import week_label

#: Debian's Chromium (``apt-get install chromium``); never a browser downloaded by Playwright.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (apt-get install chromium)"
    ),
]

ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Console:
    """Every console error and uncaught page error of a page."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("requestfailed", lambda req: self.errors.append(f"requestfailed: {req.url}"))

    def _on_console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"console.{message.type}: {message.text}")


def _download_text(page: Any, click: Any) -> tuple[str, str]:
    with page.expect_download() as info:
        click()
    download = info.value
    return download.suggested_filename, Path(download.path()).read_text(encoding="utf-8")


def test_dashboard_in_chromium(seeded: Any, live_server: Any, mint: Any, browser: Any) -> None:
    token = mint("swv", swv="PO-99-01")
    week = week_label(seeded.day)
    with live_server() as base:
        context = browser.new_context(
            accept_downloads=True, locale="nl-NL", viewport={"width": 1360, "height": 900}
        )
        page = context.new_page()
        console = Console(page)
        page.goto(f"{base}/dashboard")
        assert page.title().startswith("Verzuimcijfers")
        assert page.locator("html").get_attribute("lang") == "nl"
        # No development sign-in outside development.
        assert page.locator("#ontwikkel-formulier").is_hidden()

        # Keyboard: the first Tab reaches the skip link, then the token field can be typed in.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skiplink"
        page.locator("#token").focus()
        page.keyboard.insert_text(token)
        page.keyboard.press("Enter")
        page.wait_for_selector("body[data-geladen]", timeout=90_000)
        if page.locator("body").get_attribute("data-geladen") != seeded.schooljaar:
            # The seeded week lies in the previous school year (early August): choose it.
            page.select_option("#schooljaar", seeded.schooljaar)
            page.wait_for_selector(f"body[data-geladen='{seeded.schooljaar}']", timeout=90_000)
        # The token stays in this tab's sessionStorage, never in the URL.
        assert token not in page.url
        assert page.evaluate("sessionStorage.getItem('verzuimhub.swv.token')") == token
        assert page.locator("#aangemeld-regio").inner_text() == "PO-99-01"

        # Every chart is drawn: 4 sections x (region, national), each an SVG image described
        # by its table.
        charts = page.locator("svg[data-grafiek]")
        assert charts.count() == 8
        for i in range(8):
            chart = charts.nth(i)
            assert chart.get_attribute("role") == "img"
            described = chart.get_attribute("aria-describedby")
            assert described
            assert page.locator(f"table#{described}").count() == 1
            assert chart.bounding_box()["height"] > 100
        line = page.locator("svg[data-grafiek='verzuim-regio'] g.data path")
        assert line.count() >= 1  # the weeks with figures form a line

        # The table under the weekly chart equals the ground truth.
        table = page.locator("#tabel-verzuim")
        headers = table.locator("thead tr").nth(1).locator("th").all_inner_texts()
        col = headers.index("Leerlingen ongeoorloofd")  # the first: the region's
        for label, pupils in seeded.ongeoorloofd.items():
            if label not in seeded.weeks_in_school_year:
                continue
            number = int(label.split("-W")[1])
            row = table.locator("tbody tr", has=page.locator(f"th:text-matches('^week {number} ')"))
            assert row.locator("td").nth(col).inner_text() == str(pupils)

        # A suppressed value shows as suppressed in the table ...
        vrij = page.locator("#tabel-vrijstellingen tbody tr").last
        cell = vrij.locator("td").first  # the region's "van kracht": one vrijstelling
        assert cell.get_attribute("class") == "onderdrukt"
        assert "onderdrukt" in cell.inner_text()
        assert cell.locator("[aria-hidden='true']").inner_text() == "x"
        assert cell.inner_text().strip() not in ("0", "")
        # ... and is never drawn: no bar at all in the region's 5-onder-a chart, an "x" in the
        # "onderdrukt" strip for each of its 15 values instead.
        region_vrij = page.locator("svg[data-grafiek='vrijstellingen-regio']")
        assert region_vrij.locator("g.data rect").count() == 0
        assert region_vrij.locator("text.strook-x").count() == 15
        assert "Alle waarden onderdrukt" in region_vrij.inner_html()
        assert page.locator("td.onderdrukt").count() > 0
        assert page.locator(".leeswijzer").inner_text().count("onderdrukt") >= 2

        # CSV of a dashboard table: one row per cell, x and the reason for suppressed cells.
        name, text = _download_text(page, page.locator("button[data-csv='verzuim']").click)
        assert name == f"verzuim-PO-99-01-{seeded.schooljaar}.csv"
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == ["week", "gebied", "reeks", "value", "suppression"]
        truth = str(seeded.ongeoorloofd[week])
        assert [week, "PO-99-01", "leerlingen_ongeoorloofd", truth, ""] in rows
        assert any(r[3] == "x" and r[4] in ("primary", "secondary") for r in rows[1:])
        assert all(r[3] != "0" for r in rows[1:] if r[4])

        # CSV of an API table, fetched with the token.
        page.select_option("#bron-tabel", "verzuim-ongeoorloofd")
        page.select_option("#bron-periode", week)
        name, text = _download_text(page, page.locator("#bron button[type='submit']").click)
        assert name == f"verzuim-ongeoorloofd-PO-99-01-{week}.csv"
        assert ["po", "14", ""] in list(csv.reader(io.StringIO(text)))

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        page.locator("#sectie-verzuim").screenshot(path=str(ARTIFACTS / "verzuim-per-week.png"))

        # Signing out forgets the token.
        page.locator("#afmelden").click()
        assert page.evaluate("sessionStorage.getItem('verzuimhub.swv.token')") is None
        assert page.locator("#token").is_visible()
        context.close()
        assert console.errors == []


def test_development_sign_in_in_chromium(clean_dbs: Any, live_server: Any, browser: Any) -> None:
    with live_server(env="development") as base:
        context = browser.new_context(locale="nl-NL")
        page = context.new_page()
        console = Console(page)
        page.goto(f"{base}/dashboard")
        form = page.locator("#ontwikkel-formulier")
        form.wait_for(state="visible")
        page.select_option("#ontwikkel-regio", "PO-99-01")
        form.locator("button").click()
        page.wait_for_selector("body[data-geladen]", timeout=90_000)
        assert page.locator("#aangemeld-regio").inner_text() == "PO-99-01"
        # An empty database: every value suppressed, nothing drawn as zero.
        assert page.locator("svg[data-grafiek] g.data rect").count() == 0
        assert page.locator("svg[data-grafiek] g.data path").count() == 0
        assert page.locator("svg[data-grafiek] text.strook-x").count() > 0
        context.close()
        assert console.errors == []
