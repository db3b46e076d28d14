"""Record ids."""

from __future__ import annotations

import os
import time


def new_id() -> str:
    """A time-ordered UUID (version 7, RFC 9562) as text: 48 bits of Unix time in
    milliseconds, then 74 random bits (ADR 0013): the id of a record that comes in bulk
    (a registration, melding's pupil). Records whose id another party sees and that are
    few (meldingen, exemptions) keep random ids.

    Ids made later sort later, so a table's key index grows at its end instead of taking
    each new row at a random leaf: into a 3-million-row table, a 5,000-row ``COPY`` took
    10 ms against 56 ms with random (version 4) ids (``bench/keys_bench.py``).

    Written out by hand, as ``str(uuid.UUID(...))`` would print it: hot paths make one per
    registration (ingest) or per new pupil (melding's consumer), and UUID's constructor
    checks and converts in Python (Python 3.11 has no ``uuid7``)."""
    h = f"{time.time_ns() // 1_000_000:012x}" + os.urandom(10).hex()
    variant = "89ab"[int(h[16], 16) & 3]  # the two top bits 10: RFC 9562's variant
    return f"{h[:8]}-{h[8:12]}-7{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"
