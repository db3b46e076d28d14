"""A run of whole days of unauthorised absence is one LRV melding, however long the run and
however much later a change makes melding evaluate the pupil again.

An evaluation after a change looks at a bounded window of the ledger; when the window cuts
through a run it asks for history from five lesweken earlier. A run longer than that needs
more than one step back: with one step only, the run seemed to begin inside it and a second
LRV melding appeared (found by the demo's ground-truth check)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from verzuimhub.testing import make_bsn, registratie
from verzuimhub_melding import repository as repo

#: (lesdagen in the run, lesdagen from its end to the later change). Over a year of
#: possible "today"s, this grid always holds a case the one-step look-back got wrong.
CASES = list(itertools.product((35, 40, 45), (5, 10, 15)))


async def test_a_long_run_is_one_lrv_melding_after_later_changes(hub: Any) -> None:
    calendar = hub.melding_app.state.melding.calendar_for("99AA", "00")
    today = date.today()
    lesdagen = list(calendar.lesdagen(today - timedelta(days=300), today - timedelta(days=1)))
    runs, later = [], []
    for number, (length, gap) in enumerate(CASES):
        days = lesdagen[-(length + gap + 1) :]
        pgn = make_bsn(500 + number)
        runs.append(
            [
                registratie(
                    schoolRegistratieId=f"run-{number}-{i}",
                    pgn=pgn,
                    datum=day.isoformat(),
                    minuten=300,
                    alleLessenGemist=True,
                    categorie="spijbelen",
                )
                for i, day in enumerate(days[:length])
            ]
        )
        later.append(
            registratie(
                schoolRegistratieId=f"later-{number}",
                pgn=pgn,
                datum=days[-1].isoformat(),
                minuten=60,
                categorie="spijbelen",
            )
        )
    await hub.post_registraties([item for run in runs for item in run])
    await hub.sync()
    await hub.post_registraties(later)  # each pupil evaluated again, weeks after its run
    await hub.sync()

    async with hub.melding_app.state.db.transaction() as session:
        meldingen = await repo.list_meldingen(session, brin="99AA", after=None, limit=1000)
    lrv: dict[str, list[date]] = defaultdict(list)
    for melding in meldingen:
        if melding.soort == "LRV" and melding.status != "vervallen":
            lrv[melding.leerling_id].append(melding.begindatum)
    assert sorted(len(begins) for begins in lrv.values()) == [1] * len(CASES)
    assert sorted(begins[0] for begins in lrv.values()) == sorted(
        date.fromisoformat(run[0]["datum"]) for run in runs
    )
