"""Reading the delimited text files that CBS and DUO publish.

Assumptions, from the files as published (and as saved from Excel by the people who will
maintain the hub's copies):

- encoding UTF-8, with or without a byte-order mark; files that are not valid UTF-8 are read as
  Windows-1252 (what Excel writes on a Dutch Windows machine);
- the delimiter is ``;`` (CBS and DUO both use it) or ``,``; it is detected from the header line;
- header names are matched loosely: case, spaces, ``_``, ``-`` and ``.`` are ignored, so
  ``BRIN NUMMER``, ``brin_nummer`` and ``BrinNummer`` are the same column. Each logical column
  has a list of accepted names; extra columns are ignored;
- values are stripped (CBS pads some fields with spaces); blank lines are skipped.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

_HEADER_NOISE = re.compile(r"[\s_\-.]+")


class RefDataError(ValueError):
    """Reference data that cannot be read or does not hold together; lists every problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("ongeldige referentiedata:\n" + "\n".join(f"- {p}" for p in problems))


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252")


def _header_key(name: str) -> str:
    return _HEADER_NOISE.sub("", name.strip().lstrip("\ufeff")).lower()


def detect_delimiter(header_line: str) -> str:
    return ";" if header_line.count(";") >= header_line.count(",") else ","


@dataclass(frozen=True, slots=True)
class Row:
    """One data row: logical column name → stripped value (``''`` when absent)."""

    source: str
    line: int
    values: Mapping[str, str]

    def get(self, column: str) -> str:
        return self.values.get(column, "")

    def where(self) -> str:
        return f"{self.source}:{self.line}"


def read_rows(
    text: str,
    columns: Mapping[str, Sequence[str]],
    *,
    required: Sequence[str],
    source: str,
) -> Iterator[Row]:
    """Yield the rows of ``text`` with their values under the logical names of ``columns``.

    ``columns`` maps a logical name to its accepted header names, in order of preference.
    Raises RefDataError when a required column is missing.
    """
    text = text.lstrip("\ufeff")
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text), delimiter=detect_delimiter(first_line))
    header = next(reader, None)
    if header is None:
        raise RefDataError([f"{source}: leeg bestand"])
    positions = {_header_key(name): i for i, name in reversed(list(enumerate(header)))}
    found: dict[str, int] = {}
    for logical, accepted in columns.items():
        for name in accepted:
            if (pos := positions.get(_header_key(name))) is not None:
                found[logical] = pos
                break
    missing = [c for c in required if c not in found]
    if missing:
        wanted = "; ".join(f"{c} ({' / '.join(columns[c])})" for c in missing)
        raise RefDataError([f"{source}: kolom ontbreekt: {wanted}"])
    for record in reader:
        if not any(cell.strip() for cell in record):
            continue
        values = {
            logical: record[pos].strip() if pos < len(record) else ""
            for logical, pos in found.items()
        }
        yield Row(source, reader.line_num, values)
