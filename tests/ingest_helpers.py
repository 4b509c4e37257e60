"""Writing small operator files for ingest tests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

HEADER = (
    "nummer;type;fornavn;etternavn;firmanavn;orgnr;adresse;postnr;poststed;"
    "reservert;reklamereservert;fodselsdato;gyldig_fra"
)


def person(number: str, first: str = "Kari", last: str = "Nordmann", **kw: str) -> str:
    """A CSV row for a person; keyword arguments replace columns."""
    row = {
        "nummer": number,
        "type": "P",
        "fornavn": first,
        "etternavn": last,
        "firmanavn": "",
        "orgnr": "",
        "adresse": "Storgata 1",
        "postnr": "0150",
        "poststed": "Oslo",
        "reservert": "N",
        "reklamereservert": "N",
        "fodselsdato": "1980-02-03",
        "gyldig_fra": "2025-01-01",
    }
    row.update(kw)
    return ";".join(row[column] for column in HEADER.split(";"))


def json_person(number: str, **fields: object) -> dict[str, object]:
    """A JSON Lines row for a listed person; keyword arguments replace or add fields."""
    row: dict[str, object] = {
        "number": number,
        "kind": "person",
        "first_name": "Kari",
        "last_name": "Hansen",
        "reservation": "listed",
        "valid_from": "2025-01-01",
    }
    row.update(fields)
    return row


def filler(count: int, start: int = 40000000) -> list[str]:
    """Valid person rows on consecutive mobile numbers."""
    return [person(str(start + i), first=f"Navn{i}") for i in range(count)]


def write_csv(
    folder: Path,
    name: str,
    rows: list[str],
    *,
    header: str = HEADER,
    encoding: str = "utf-8",
    compress: bool = False,
) -> Path:
    """Write a CSV operator file."""
    folder.mkdir(parents=True, exist_ok=True)
    data = ("\n".join([header, *rows]) + "\n").encode(encoding)
    path = folder / name
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


def write_jsonl(folder: Path, name: str, rows: list[dict[str, Any] | str]) -> Path:
    """Write a JSON Lines operator file (strings are written verbatim)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [row if isinstance(row, str) else json.dumps(row, ensure_ascii=False) for row in rows]
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
