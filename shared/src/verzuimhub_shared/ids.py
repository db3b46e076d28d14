"""Record ids."""

from __future__ import annotations

import os


def new_id() -> str:
    """A random UUID (version 4) as text, as ``str(uuid.uuid4())`` writes it, at a third of
    the cost: UUID's constructor checks and converts in Python, and hot paths make one per
    registration (ingest) or per new pupil (melding's consumer)."""
    h = os.urandom(16).hex()
    variant = "89ab"[int(h[16], 16) & 3]  # the two top bits 10: RFC 4122
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"
