"""Counting a benchmark's instructions under valgrind's callgrind (``make bench-single
ARGS=--callgrind``, ``make bench-replay-stages ARGS=--callgrind``).

A benchmark re-runs itself under callgrind with instrumentation off, and switches it on
only around what it measures (``callgrind_control``, from the process itself). A count of
instructions is the same to within a fraction of a per cent run after run, whatever else
the machine does; a CPU time is not (the same code measured 535–797 µs a request in one
afternoon, and two machines 1.25–1.6 times apart in CPU for the same count).

Each switch runs ``callgrind_control`` as a child process, and part of that is counted:
:func:`segments` returns the counts of named dumps, and a benchmark that dumps many
segments measures an empty one to take that part off (:func:`per_unit`).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

#: Set in the environment of a benchmark run under callgrind.
UNDER = "VZH_BENCH_UNDER_CALLGRIND"

#: The name of a segment with nothing in it: what switching costs (:func:`per_unit`).
EMPTY = "empty"


def under() -> bool:
    """Whether this process runs under callgrind (started by :func:`run`)."""
    return bool(os.environ.get(UNDER))


def control(*args: str) -> None:
    """``callgrind_control ARGS`` on this process (``-i on``, ``-i off``, ``--dump=NAME``)."""
    subprocess.run(
        ["callgrind_control", *args, str(os.getpid())], check=True, stdout=subprocess.DEVNULL
    )


def switch(on: bool) -> None:
    """Counting on or off, if this process runs under callgrind."""
    if under():
        control("-i", "on" if on else "off")


def run(arguments: Sequence[str], out_file: Path) -> subprocess.CompletedProcess[str]:
    """``python ARGUMENTS`` under callgrind, counting nothing until it switches on; its
    output, or exit with what went wrong."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out_file}",
        sys.executable,
        *arguments,
    ]
    try:
        return subprocess.run(
            command, env={**os.environ, UNDER: "1"}, capture_output=True, text=True, check=True
        )
    except FileNotFoundError:
        sys.exit("--callgrind needs valgrind (Debian: apt-get install valgrind)")
    except subprocess.CalledProcessError as failed:
        sys.exit(f"the run under valgrind failed:\n{failed.stderr[-2000:]}")


def collected(stderr: str) -> int:
    """The instructions counted over the whole run, from valgrind's summary."""
    found = re.search(r"Collected : (\d+)", stderr)
    if found is None:
        sys.exit(f"valgrind reported no count:\n{stderr[-2000:]}")
    return int(found.group(1))


_TRIGGER = re.compile(r"^desc: Trigger: dump (\S+)$", re.MULTILINE)
_TOTALS = re.compile(r"^totals: (\d+)$", re.MULTILINE)


def segments(out_file: Path) -> dict[str, list[int]]:
    """The count of each dump made with ``control("--dump=NAME")``, by name, in the order
    they were made (callgrind writes dump N to ``OUT_FILE.N``)."""
    dumps: list[tuple[int, str, int]] = []
    for path in out_file.parent.glob(f"{out_file.name}.*"):
        content = path.read_text(errors="replace")
        trigger, totals = _TRIGGER.search(content), _TOTALS.search(content)
        if trigger is not None and totals is not None:
            dumps.append((int(path.suffix[1:]), trigger.group(1), int(totals.group(1))))
    by_name: dict[str, list[int]] = defaultdict(list)
    for _, name, count in sorted(dumps):
        by_name[name].append(count)
    return dict(by_name)


def per_unit(counts: dict[str, list[int]], units: int) -> dict[str, float]:
    """Instructions per unit of each named segment: its dumps' sum, less what switching
    cost each of them (the median of the :data:`EMPTY` segments), over ``units``."""
    switching = statistics.median(counts[EMPTY]) if counts.get(EMPTY) else 0
    return {
        name: round((sum(each) - switching * len(each)) / units, 1)
        for name, each in counts.items()
        if name != EMPTY
    }
