"""Sloppy operator files: real files through the real ingest into a real warehouse and snapshot.

Each test is a file a real operator could deliver; it asserts what a user of the
service would notice (a number served or not, a row counted, a reject stored).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest

from lookup.cli import main
from lookup.config import Settings
from lookup.index.reader import Snapshot
from lookup.index.snapshot import read_pointer, snapshot_path
from lookup.ingest import pipeline, readers
from lookup.ingest import watcher as watcher_module
from lookup.ingest.files import FileFormat
from lookup.ingest.pipeline import ingest
from lookup.ingest.readers import RawRow
from lookup.ingest.report import render_report
from lookup.ingest.warehouse import Warehouse
from tests.conftest import make_settings
from tests.ingest_helpers import HEADER, filler, json_person, person, write_csv, write_jsonl

DELTA_HEADER = HEADER + ";action"


def served(settings: Settings) -> Snapshot:
    pointer = read_pointer(settings.snapshots_path)
    assert pointer is not None
    return Snapshot(snapshot_path(settings.snapshots_path, pointer))


def stored_rejects(settings: Settings) -> list[tuple[object, ...]]:
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        return warehouse.query(
            "SELECT file, line, reason, raw, reservation_applied FROM rejects ORDER BY file, line"
        )


def batches(settings: Settings) -> list[tuple[object, ...]]:
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        return warehouse.query("SELECT file, status, reason, detail FROM batches ORDER BY id")


@pytest.fixture
def lenient(tmp_path: Path) -> Settings:
    """No reject-ratio bound: the subject is what happens to each row."""
    return make_settings(tmp_path / "var", reject_ratio_max=1.0)


# 1. An unclosed quote must not swallow the rows below it.


def test_an_unclosed_quote_loses_no_row_and_hides_no_reservation(
    tmp_path: Path, lenient: Settings
) -> None:
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(40))
    ingest([tmp_path / "a"], lenient)
    rows = filler(40)
    rows[10] = person("40000010", first='"Ola')  # the quote is never closed
    rows[11] = person("40000011", first="Kari", last="Hemmelig", reservert="J")
    rows[12] = person("40000012", first="Per", last="Hemmelig", reservert="J")
    rows[20] = person("40000020", first='"Thea', last="Skjult", reservert="J")
    write_csv(tmp_path / "b", "telenor_full_20261123T020000.csv", rows)
    (file_report,) = ingest([tmp_path / "b"], lenient).files
    batch = file_report.batch
    assert batch.status == "applied", batch.detail
    assert (batch.rows_total, batch.rows_rejected) == (40, 2)
    assert [(r.line, r.reason) for r in file_report.rejects] == [(12, "bad_row"), (22, "bad_row")]
    snapshot = served(lenient)
    for reserved in ("40000011", "40000012", "40000020"):
        assert snapshot.find(reserved) is None, reserved
    # The rows after the broken one are applied as delivered.
    later = snapshot.find("40000039")
    assert later is not None and later.first_name == "Navn39"
    # An operator's typo does not unlist the subscriber: the previous record stays.
    kept = snapshot.find("40000010")
    assert kept is not None and kept.first_name == "Navn10"
    raws = " ".join(str(raw) for *_, raw, _ in stored_rejects(lenient))
    assert "Hemmelig" not in raws and "Skjult" not in raws and "Thea" not in raws
    assert stored_rejects(lenient)[1][4] is True  # the broken reserved row was honoured


def test_a_quote_closed_rows_later_still_splits_every_row(
    tmp_path: Path, lenient: Settings
) -> None:
    rows = [
        person("22202400", first='"Ola'),
        person("22202401", first="Kari", last="Hemmelig", reservert="J"),
        person("22202402", first='Per"', last="Hansen"),
        *filler(10),
    ]
    write_csv(tmp_path / "in", "telia_full_20261122T020000.csv", rows)
    (file_report,) = ingest([tmp_path / "in"], lenient).files
    assert file_report.batch.rows_total == 13
    assert served(lenient).find("22202401") is None
    assert "Hemmelig" not in " ".join(str(r[3]) for r in stored_rejects(lenient))


# 2. Privacy wins over form.


def test_malformed_reserved_csv_rows_withdraw_the_number_and_keep_no_text(
    tmp_path: Path, lenient: Settings
) -> None:
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(20))
    ingest([tmp_path / "a"], lenient)
    too_many = person("40000001", first="Kari;Anne", last="Hemmelig", reservert="J")
    too_few = person("40000002", last="Skjult", reservert="J").replace(";Storgata 1", "", 1)
    listed_broken = person("40000003", first="Ola;Per")
    rows = [
        *(row + ";U" for row in filler(20)[4:]),
        too_many + ";U",
        too_few + ";U",
        listed_broken + ";U",
    ]
    write_csv(tmp_path / "b", "telenor_delta_20261123T020000.csv", rows, header=DELTA_HEADER)
    (file_report,) = ingest([tmp_path / "b"], lenient).files
    assert [(r.line, r.reason) for r in file_report.rejects] == [
        (18, "bad_row"),
        (19, "bad_row"),
        (20, "bad_row"),
    ]
    snapshot = served(lenient)
    assert snapshot.find("40000001") is None
    assert snapshot.find("40000002") is None
    assert snapshot.find("40000003") is not None  # no reservation in it: nothing withdrawn
    stored = stored_rejects(lenient)
    assert [applied for *_, applied in stored] == [True, True, False]
    assert "Hemmelig" not in str(stored[0][3]) and "Skjult" not in str(stored[1][3])
    # A listed row's text stays for the operator, but for its dates: a shifted field can
    # put the date of birth in any place, so the valid-from date goes with it.
    text = (listed_broken + ";U").replace("1980-02-03", "[withheld]")
    assert stored[2][3] == text.replace("2025-01-01", "[withheld]")


def test_a_reservation_wrapped_in_json_or_given_twice_still_withdraws_the_number(
    tmp_path: Path, lenient: Settings
) -> None:
    def row(number: str, reservation: object = "listed", **more: object) -> dict[str, object]:
        return {
            "number": number,
            "kind": "person",
            "first_name": "Rita",
            "last_name": "Reservesen",
            "street": "Storgata 1",
            "reservation": reservation,
            "valid_from": "2025-01-01",
            **more,
        }

    numbers = [f"4179000{i}" for i in range(10)]
    write_jsonl(tmp_path / "a", "qk_full_20261122T020000.jsonl", [row(n) for n in numbers])
    ingest([tmp_path / "a"], lenient)
    twice = json.dumps(row("41790005", "reserved"))[:-1] + ', "reservation": "listed"}'
    hidden_twice = json.dumps(row("41790006", "address_hidden"))[:-1]
    two_numbers = json.dumps(row("41790007"))[:-1] + ', "number": "41790099"}'
    # The key written with an escape is the same key; JSON's true and an array reserve too.
    escaped = json.dumps(row("41790008"))[:-1] + ', "\\u0072eservation": "reserved"}'
    true_twice = json.dumps(row("41790009"))[:-1] + ', "reservation": [true, {"x": "J"}]}'
    write_jsonl(
        tmp_path / "b",
        "qk_full_20261123T020000.jsonl",
        [
            row("41790000", ["reserved"]),
            row("41790001", {"reserved": True}),
            row("41790002", [["J"]]),
            row("41790003", ["address_hidden"]),
            row("41790004", [1]),  # a number says nothing: rejected, left as it was
            twice,
            hidden_twice + ', "reservation": "listed"}',
            two_numbers,
            escaped,
            true_twice,
        ],
    )
    report = ingest([tmp_path / "b"], lenient)
    reasons = {r.line: (r.reason, r.detail) for f in report.files for r in f.rejects}
    assert reasons[6] == (
        "bad_json",
        "'reservation' is given more than once: which value holds cannot be told",
    )
    assert reasons[8][1] == "'number' is given more than once: which value holds cannot be told"
    snapshot = served(lenient)
    for withdrawn in ("41790000", "41790001", "41790002", "41790005", "41790008", "41790009"):
        assert snapshot.find(withdrawn) is None, withdrawn
    for hidden_number in ("41790003", "41790006"):
        hidden = snapshot.find(hidden_number)
        assert hidden is not None and hidden.street == "", hidden_number
    listing = snapshot.find("41790004")
    assert listing is not None and listing.street == "Storgata 1"
    assert snapshot.find("41790099") is None  # neither of two numbers is trusted


def test_a_reservation_written_outside_the_codes_still_withdraws_the_number(
    tmp_path: Path, lenient: Settings
) -> None:
    # `Ja`, `hemmelig` (secret) in `reservert`, JSON's true or "unlisted", or a row sent
    # as an array: rejected for their form, but a reserved subscriber's number must not
    # stay listed. A value that reads as "no" leaves the number as it was.
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(10))
    write_jsonl(
        tmp_path / "a",
        "ice_full_20261122T020000.jsonl",
        [
            {
                "number": f"4123456{i}",
                "kind": "person",
                "first_name": "Kari",
                "last_name": "Hansen",
                "reservation": "listed",
                "valid_from": "2025-01-01",
            }
            for i in range(8)
        ],
    )
    ingest([tmp_path / "a"], lenient)
    csv_rows = [
        person("40000001", reservert="Ja") + ";U",
        person("40000002", reservert="Nei") + ";U",
        person("40000003", first="Solveig", reservert="hemmelig") + ";U",
        person("40000004", first="Solveig", reservert="Hemmelig nummer") + ";U",
        person("40000005", first="Solveig", reservert="reservert mot oppslag") + ";U",
        person("40000006", first="Solveig", reservert="J.") + ";U",
        person("40000007", first="Solveig", reservert="sperret") + ";U",
        person("40000008", first="Ingrid", reservert="ikke reservert") + ";U",
        person("40000009", first="Solveig", reservert="Hemmelig-nummer!") + ";U",
    ]
    write_csv(tmp_path / "b", "telenor_delta_20261123T020000.csv", csv_rows, header=DELTA_HEADER)

    def row(number: str, reservation: object) -> dict[str, object]:
        return json_person(number, reservation=reservation)

    json_rows: list[dict[str, object] | str] = [
        row("41234561", True),
        row("41234562", False),
        '["41234563", "reserved"]',
        row("41234564", "unlisted"),
        row("41234565", "secret"),
        row("41234566", "do-not-list"),
        row("41234567", "listed"),
        row("41234560", "listed"),
    ]
    write_jsonl(tmp_path / "b", "ice_full_20261123T020000.jsonl", json_rows)
    report = ingest([tmp_path / "b"], lenient)
    reasons = sorted(r.reason for f in report.files for r in f.rejects)
    assert reasons == [
        *["bad_code.reservation"] * 12,
        "bad_json",
        "bad_type.reservation",
        "bad_type.reservation",
    ]
    # Withdrawn rows keep no text (the name in them is a reserved subscriber's).
    kept_text = " ".join(r.raw for f in report.files for r in f.rejects)
    assert "Solveig" not in kept_text and "unlisted" not in kept_text
    snapshot = served(lenient)
    withdrawn_csv = ("40000001", "40000003", "40000004", "40000005", "40000006", "40000007")
    withdrawn_json = ("41234561", "41234563", "41234564", "41234565", "41234566")
    for withdrawn in (*withdrawn_csv, "40000009", *withdrawn_json):
        assert snapshot.find(withdrawn) is None, withdrawn
    for kept in ("40000002", "40000008", "41234562"):  # Nei, ikke reservert: not reserved
        assert snapshot.find(kept) is not None, kept


def test_an_address_hidden_wish_written_outside_the_codes_still_hides_the_address(
    tmp_path: Path, lenient: Settings
) -> None:
    # As with reservations: `A.`, `Adresse skjult`, "address hidden" are rejected for their
    # form, but the subscriber's address must not stay shown. A fullwidth `Ｊ` reserves,
    # and so does "Skjult adresse", which starts with a word that reserves.
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(10))
    ingest([tmp_path / "a"], lenient)
    words = ["A.", "Adresse skjult", "hidden address", "uten-adresse", "Ａ", "Nei", "Ｊ"]
    words += ["Skjult adresse"]
    rows = [
        person(f"4000000{i}", first=f"Navn{i}", reservert=word) + ";U"
        for i, word in enumerate(words)
    ]
    write_csv(tmp_path / "b", "telenor_delta_20261123T020000.csv", rows, header=DELTA_HEADER)
    json_row = json_person(
        "40000009", first_name="Navn9", reservation="Address-Hidden", action="upsert"
    )
    write_jsonl(tmp_path / "b", "telenor_delta_20261123T030000.jsonl", [json_row])
    report = ingest([tmp_path / "b"], lenient)
    reasons = [r.reason for f in report.files for r in f.rejects]
    assert reasons == ["bad_code.reservation"] * 9
    snapshot = served(lenient)
    for index in (0, 1, 2, 3, 4, 9):
        listing = snapshot.find(f"4000000{index}")
        # The address is gone; the rest of the previous record stays, nothing of the row.
        assert listing is not None and listing.first_name == f"Navn{index}", index
        assert (listing.street, listing.postcode, listing.city) == ("", "", ""), index
    kept = snapshot.find("40000005")  # Nei: listed as it was
    assert kept is not None and kept.street == "Storgata 1"
    assert snapshot.find("40000006") is None  # the fullwidth J withdraws it
    assert snapshot.find("40000007") is None  # Skjult adresse: privacy wins over form
    assert snapshot.find("40000008") is not None  # untouched


@pytest.mark.parametrize("marker", ["J", "Sperret adresse", "Skjult adresse", "Hemmelig"])
def test_a_reserving_word_from_the_operator_a_number_was_ported_to_withdraws_it(
    tmp_path: Path, lenient: Settings, marker: str
) -> None:
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(10))
    ingest([tmp_path / "a"], lenient)
    ported = person("40000001", reservert=marker, gyldig_fra="2026-11-22T12:00:00")
    write_csv(tmp_path / "b", "telia_full_20261123T020000.csv", [ported])
    ingest([tmp_path / "b"], lenient)
    assert served(lenient).find("40000001") is None, marker


def test_an_export_writing_not_reserved_its_own_way_withdraws_nothing(
    tmp_path: Path, lenient: Settings
) -> None:
    # Only words that mean "reserved" withdraw a number: a whole directory exported with
    # `Nej` or `0` is an error in every row (held), not a directory of reservations.
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(12))
    ingest([tmp_path / "a"], lenient)
    words = ["Nej", "0", "ikke reservert", "L", "-", "Nein"]
    rows = [person(str(40000000 + i), first=f"Navn{i}", reservert=w) for i, w in enumerate(words)]
    write_csv(tmp_path / "b", "telenor_full_20261123T020000.csv", rows + filler(12)[6:])
    (file_report,) = ingest([tmp_path / "b"], lenient).files
    assert [r.reason for r in file_report.rejects] == ["bad_code.reservation"] * 6
    snapshot = served(lenient)
    for i in range(12):
        listing = snapshot.find(str(40000000 + i))
        assert listing is not None and listing.first_name == f"Navn{i}", i


def test_a_file_rejected_for_its_header_still_applies_the_reservations_it_names(
    tmp_path: Path, settings: Settings
) -> None:
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(10))
    ingest([tmp_path / "a"], settings)
    # `gyldig_fom` for `gyldig_fra`: the file is not applied, but its number and
    # reservation columns can be read, and a reserved subscriber must not stay listed.
    misspelt = HEADER.replace("gyldig_fra", "gyldig_fom")
    rows = [person("40000001", reservert="J"), *filler(10)[2:]]
    write_csv(tmp_path / "b", "telenor_full_20261123T020000.csv", rows, header=misspelt)
    (held,) = ingest([tmp_path / "b"], settings).files
    assert (held.batch.status, held.batch.reason) == ("held", "bad_header")
    assert "missing required column(s): gyldig_fra" in (held.batch.detail or "")
    assert "its 1 reservation(s) were honoured" in (held.batch.detail or "")
    snapshot = served(settings)
    assert snapshot.find("40000001") is None
    assert len(snapshot) == 9  # nothing else of it applied
    # Without a reservation column there is nothing to honour: rejected, as before.
    unreadable = HEADER.replace("reservert", "reservasjon")
    write_csv(tmp_path / "c", "telenor_full_20261124T020000.csv", rows, header=unreadable)
    (rejected,) = ingest([tmp_path / "c"], settings).files
    assert (rejected.batch.status, rejected.batch.reason) == ("rejected", "bad_header")


def test_a_bad_header_files_reservations_survive_repeats_hidden_addresses_and_twin_columns(
    tmp_path: Path, settings: Settings
) -> None:
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(10))
    ingest([tmp_path / "a"], settings)
    # `fornavn` twice and no `gyldig_fra`: the number and reservation columns still read.
    header = HEADER.replace("fornavn", "fornavn;fornavn").replace("gyldig_fra", "gyldig_fom")
    rows = [
        person("40000001", reservert="J").replace(";Kari;", ";Kari;Anne;"),
        person("+47 40000001", reservert="A").replace(";Kari;", ";Kari;Anne;"),  # twice
        person("40000002", reservert="A").replace(";Kari;", ";Kari;Anne;"),
    ]
    write_csv(tmp_path / "b", "telenor_full_20261123T020000.csv", rows, header=header)
    (held,) = ingest([tmp_path / "b"], settings).files
    assert (held.batch.status, held.batch.reason) == ("held", "bad_header")
    detail = held.batch.detail or ""
    assert "its 1 reservation(s) were honoured" in detail
    assert "its 1 hidden address(es) were applied" in detail
    snapshot = served(settings)
    assert snapshot.find("40000001") is None
    hidden = snapshot.find("40000002")
    assert hidden is not None and not hidden.street


def test_a_file_cut_short_or_in_utf16_still_applies_the_reservations_it_holds(
    tmp_path: Path, settings: Settings
) -> None:
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(10))
    ingest([tmp_path / "a"], settings)
    inbox = tmp_path / "b"
    inbox.mkdir()
    # A gzip transfer cut short: the rows before the cut still say who reserved.
    text = "\n".join([HEADER, person("40000001", reservert="J"), *filler(10)[2:]]) + "\n"
    packed = gzip.compress(text.encode())
    (inbox / "telenor_full_20261123T020000.csv.gz").write_bytes(packed[: len(packed) - 30])
    # Saved as Excel's "Unicode text", without a byte-order mark; and a JSON Lines delta.
    delta = "\n".join([DELTA_HEADER, person("40000002", reservert="A") + ";U"]) + "\n"
    (inbox / "telenor_delta_20261123T030000.csv").write_bytes(delta.encode("utf-16-le"))
    rows = [json_person("40000003", reservation="reserved"), json_person("40000004")]
    lines = "\n".join(json.dumps(row) for row in rows) + "\n"
    (inbox / "telenor_full_20261123T040000.jsonl").write_bytes(lines.encode("utf-16"))
    # Named .gz, but plain text.
    plain = "\n".join([DELTA_HEADER, person("40000005", reservert="J") + ";U"]) + "\n"
    (inbox / "telenor_delta_20261123T050000.csv.gz").write_text(plain)
    by_file = {f.batch.file: f.batch for f in ingest([inbox], settings).files}
    named = by_file["telenor_delta_20261123T050000.csv.gz"]
    assert (named.status, named.detail) == (
        "held",
        "not a valid gzip file: named .gz, but its content is not gzip-compressed; "
        "1 data row(s) not applied; its 1 reservation(s) were honoured",
    )
    cut = by_file["telenor_full_20261123T020000.csv.gz"]
    assert (cut.status, cut.reason) == ("held", "unreadable")
    assert cut.detail is not None
    assert cut.detail.startswith("not a valid gzip file: it ends before its end-of-stream")
    assert "its 1 reservation(s) were honoured" in cut.detail
    hidden = by_file["telenor_delta_20261123T030000.csv"]
    assert (hidden.status, hidden.reason) == ("held", "unreadable")
    assert "its 1 hidden address(es) were applied" in (hidden.detail or "")
    reserved = by_file["telenor_full_20261123T040000.jsonl"]
    assert (reserved.status, reserved.reason) == ("held", "unreadable")
    assert "2 data row(s) not applied; its 1 reservation(s) were honoured" in (
        reserved.detail or ""
    )
    snapshot = served(settings)
    assert snapshot.find("40000001") is None
    assert snapshot.find("40000003") is None
    assert snapshot.find("40000005") is None
    listing = snapshot.find("40000002")
    assert listing is not None and not listing.street
    # Nothing else of them applied: the full files' absent numbers and new names are not.
    assert len(snapshot) == 7
    assert snapshot.find("40000004") is not None
    assert snapshot.find("40000004").first_name == "Navn4"  # type: ignore[union-attr]


def test_a_control_character_in_a_text_field_rejects_the_row(
    tmp_path: Path, lenient: Settings
) -> None:
    rows = [
        person("40000001", first="Nul\x00Name"),
        person("40000002", last="Esc\x1bape", reservert="J"),
        person("40000003"),
    ]
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", rows)
    (report,) = ingest([tmp_path / "in"], lenient).files
    # A reserved subscriber's name is not read at all (it is never stored).
    assert [(r.reason, r.detail) for r in report.rejects] == [
        ("bad_text.first_name", "fornavn contains a control character (U+0000)"),
    ]
    snapshot = served(lenient)
    assert snapshot.find("40000001") is None  # never delivered whole
    assert snapshot.find("40000002") is None  # reserved all the same
    assert snapshot.find("40000003") is not None


def test_words_count_only_where_the_reservation_field_is_known(
    tmp_path: Path, lenient: Settings
) -> None:
    # A broken row's fields are guessed: a first name "Y" or a marketing flag "true" in a
    # row sent as an array must not withdraw a listed subscriber; "J" with a NUL still does.
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(10))
    ingest([tmp_path / "a"], lenient)
    header = DELTA_HEADER.replace("fornavn;etternavn", "etternavn;fornavn")
    stray = "40000001;P;Hansen;Jr;Y;;;Storgata 1;0150;Oslo;N;N;1980-02-03;2025-01-01;U"
    nul = person("40000002", reservert="J\x00") + ";U"
    write_csv(tmp_path / "b", "telenor_delta_20261123T020000.csv", [stray, nul], header=header)
    write_jsonl(
        tmp_path / "b",
        "ice_full_20261123T020000.jsonl",
        ['["41234561", "person", "Kari", "Hansen", "listed", "true", "2025-01-01"]'],
    )
    report = ingest([tmp_path / "b"], lenient)
    assert sorted(r.reason for f in report.files for r in f.rejects) == [
        "bad_json",
        "bad_row",
        "bad_text.reservation",
    ]
    [array] = [r for f in report.files for r in f.rejects if r.reason == "bad_json"]
    assert array.number == "41234561" and array.record is None  # not withdrawn
    snapshot = served(lenient)
    assert snapshot.find("40000001") is not None
    assert snapshot.find("40000002") is None


def test_a_date_of_birth_in_any_form_is_kept_nowhere(tmp_path: Path, lenient: Settings) -> None:
    # Listed rows rejected for their date of birth: their text is kept for the operator,
    # never the date, whatever form it came in; nor is the reason quoting it.
    csv_rows = [
        person("40000001", fodselsdato="1975-05-17T00:00:00"),
        person("40000002", fodselsdato="17.05.1975"),
    ]
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", csv_rows)

    def row(number: str, born: object) -> dict[str, object]:
        return {
            "number": number,
            "kind": "person",
            "first_name": "Kari",
            "last_name": "Hansen",
            "reservation": "listed",
            "birth_date": born,
            "valid_from": "2025-01-01",
        }

    csv_rows.append(person("40000003", first="Kari;Anne", fodselsdato="17.05.1975 00:00"))
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", csv_rows)
    base = json.dumps(row("41234564", "X"))
    json_rows: list[dict[str, object] | str] = [
        row("41234561", ["1975", "05", "17"]),
        row("41234562", {"y": 1975, "m": 5, "d": 17}),
        row("41234563", 19750517),
        base.replace('"X"', '"1975\\/05\\/17"'),  # PHP escapes slashes
        base.replace('"X"', '"1975-05-17", "birth_date": null'),  # given twice: rejected
        base.replace('"X"', '"1975-05-17", "birth_date": null').replace('"person"', '"robot"'),
        base.replace('"X"', '"1975-05-17T00:00:00"')[:-1] + ",}",  # broken JSON
        '["41234567", "person", "Kari", "Hansen", "listed", "1975-05-17", "2025-01-01"]',
    ]
    write_jsonl(tmp_path / "in", "ice_full_20261122T020000.jsonl", json_rows)
    report = ingest([tmp_path / "in"], lenient)
    rejects = [r for f in report.files for r in f.rejects]
    assert len(rejects) == 11
    stored = stored_rejects(lenient)
    for text in [*(str(r[3]) for r in stored), *(r.detail for r in rejects)]:
        for leaked in ("1975", "17.05", "19750517"):
            assert leaked not in text, text
    # Masked where it stood, in every kept text.
    assert sum("[withheld]" in str(r[3]) for r in stored) == 11


def test_a_date_of_birth_outside_the_contracts_places_is_kept_nowhere(
    tmp_path: Path, lenient: Settings
) -> None:
    # Rows rejected for something else (a short postcode, a field too many) that carry a
    # date of birth where the contract puts none: under a key or column of the operator's
    # own, or written as people write dates, or as a national identity number.
    json_rows: list[dict[str, object] | str] = [
        {
            "number": "41234561",
            "kind": "person",
            "first_name": "Halvard",
            "last_name": "Abdi",
            "reservation": "listed",
            "valid_from": "2025-01-01",
            "postcode": "12",
            "fodselsdato": "1955-07-27",
            "personnummer": "27075512345",
        },
        # Broken JSON with bare numbers under keys of the operator's own, in an array, or
        # a date written without quotes.
        '{"number": "41234562", "first_name": "Halvard", "fodselsdato": 19550727, '
        '"personnummer": 27075512345, "ids": [27075512345, 19550727], "reservation": "listed",',
        '{"number": "41234563", "first_name": "Halvard", "fodselsdato": 1955-07-27,',
        # Quoting broken: a quote missing, single quotes, a bare date-time.
        '{"number": "41234564, "first_name": "Halvard", "birth_date": "1955-07-27", "x": 1,',
        "{'number': '41234565', 'first_name': 'Halvard', 'birth_date': '1955-07-27'",
        '{"number": "41234566", "first_name": "Halvard", "birth_date": 1955-07-27T00:00:00,',
    ]
    write_jsonl(tmp_path / "in", "ice_full_20261122T020000.jsonl", json_rows)
    header = HEADER.replace("fodselsdato", "fødselsdato") + ";personnummer"
    rows = [
        person("40000001", postnr="12", fodselsdato="1955-07-27") + ";27075512345",
        person("40000002") + ";",
    ]
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", rows, header=header)
    forms: tuple[str, ...] = ("17 05 1975", "17. mai 1975", "17057512345", "170575 12345")
    forms += ("1975 05 17",)
    forms += ("17-May-1975", "170575-12345", "f. 17.05.1975")
    # Where the header names the date of birth, any form goes, however it is written.
    forms += ("17.05.1975.", "May 17, 1975", "født: 17.05.1975")
    broken = [
        person(f"4000001{i}", first="Berit;Anne", fodselsdato=born) + ";"
        for i, born in enumerate(forms)
    ]
    broken.append(person("22 20 24 00", first="Berit;Anne", fodselsdato="17.05.1975") + ";")
    write_csv(tmp_path / "in", "telia_full_20261122T020000.csv", broken, header=header)
    report = ingest([tmp_path / "in"], lenient)
    rejects = [r for f in report.files for r in f.rejects]
    assert sorted(r.reason for r in rejects) == [
        *["bad_json"] * 5,
        *["bad_postcode"] * 2,
        *["bad_row"] * 12,
    ]
    stored = [str(row[3]) for row in stored_rejects(lenient)]
    for text in [*stored, *(r.detail for r in rejects)]:
        for leaked in ("1955", "27075", "1975", "17057", "170575", "17-May", "mai"):
            assert leaked not in text, text
    # What the operator needs to find the row stays: its number, in any form, and names.
    assert all("Halvard" in t or "Kari" in t or "Berit" in t for t in stored), stored
    assert '"personnummer":"[withheld]"' in stored[0]
    assert '"number": "41234562"' in stored[1]
    assert any(t.startswith("22 20 24 00;") for t in stored), stored
    for text in stored:
        assert "May 17" not in text and "17.05" not in text, text


def test_a_date_of_birth_a_shifted_column_put_elsewhere_is_kept_nowhere(
    tmp_path: Path, lenient: Settings
) -> None:
    # Rows that split right, columns shifted: the date of birth stands in a field that
    # holds none, which rejects the row for it, and would be quoted and kept.
    rows = [
        person("40000001", reklamereservert="1975-05-17", fodselsdato=""),
        person("40000002", postnr="17.05.1975", fodselsdato=""),
    ]
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", [*rows, *filler(20)[2:]])
    shifted = json_person("41234561", postcode="1975-05-17")
    write_jsonl(tmp_path / "in", "ice_full_20261122T020000.jsonl", [shifted])
    report = ingest([tmp_path / "in"], lenient)
    rejects = [r for f in report.files for r in f.rejects]
    assert sorted(r.reason for r in rejects) == [
        "bad_code.marketing_reserved",
        "bad_postcode",
        "bad_postcode",
    ]
    for text in [*(str(row[3]) for row in stored_rejects(lenient)), *(r.detail for r in rejects)]:
        assert "1975" not in text and "17.05" not in text, text
    # The valid-from date goes too (swapped column names put a date of birth there); the
    # number, to find the row by, stays.
    kept = [str(row[3]) for row in stored_rejects(lenient)]
    assert not any("2025-01-01" in text for text in kept), kept
    assert all(any(n in text for n in ("40000001", "40000002", "41234561")) for text in kept)


def test_a_reservation_then_a_delete_in_one_delta_keeps_veiling_another_operators_record(
    tmp_path: Path, lenient: Settings
) -> None:
    # A subscriber reserved, then left the operator, both in one delta: the delete won
    # the file's deduplication and the reservation went with it, so another operator's
    # older record of the number was served (in two files, the reservation stayed).
    write_csv(tmp_path / "a", "telenor_full_20261101T010000.csv", [person("91234567", "Alf")])
    write_csv(
        tmp_path / "a",
        "telia_full_20261101T010000.csv",
        [person("91234567", "Bea", gyldig_fra="2019-01-01"), *filler(20)],
    )
    ingest([tmp_path / "a"], lenient)
    assert served(lenient).find("91234567") is not None
    for kind, status in (("delta", "applied"), ("held", "held")):
        rows = [
            person("91234567", "Alf", reservert="J", gyldig_fra="2026-11-01") + ";U",
            ";".join(["91234567", *[""] * 11, "2026-11-02", "D"]),
        ]
        if kind == "held":  # held back, it still applies what takes data away
            rows += [";".join(["4000000x", *[""] * 11, "2026-11-02", "U"])] * 30
        folder = tmp_path / kind
        write_csv(folder, "telenor_delta_20261102T010000.csv", rows, header=HEADER + ";action")
        settings = make_settings(tmp_path / f"var-{kind}", reject_ratio_max=0.5)
        ingest([tmp_path / "a"], settings)
        report = ingest([folder], settings)
        assert report.files[0].batch.status == status, report.files[0].batch
        assert served(settings).find("91234567") is None, kind


def test_a_date_in_an_address_field_is_served_nowhere(tmp_path: Path, lenient: Settings) -> None:
    # Column names swapped (poststed and fodselsdato), a street holding a date: each was
    # served with every lookup and search. House numbers are no dates.
    rows = [
        person("40000001", poststed="1966-06-06", fodselsdato=""),
        person("40000002", adresse="Gate 1 f.17/5-75"),
        person("40000003", adresse="17.05.75"),
        person("40000004", poststed="OSLO1975-05-17", adresse="Gate DOB17.05.1975"),
        person("40000005", adresse="Markveien 191"),
        person("40000006", adresse="Strandveien 1-3/5"),
        # Written other ways, after the street's name: each was served.
        person("40000007", adresse="Storgata 2 17. mai 1975"),
        person("40000008", adresse="Storgata 2 1975/05/17"),
        person("40000009", adresse="Storgata 2", poststed="Oslo 19750517"),
        person("40000010", adresse="Storgata 2 17057512345"),  # an identity number
        person("40000011", adresse="Storgata 2 17051975"),
        person("40000012", adresse="Storgata 2 17.05.1975-Oslo"),
    ]
    # House letters, ranges and postcodes, flats: no dates (a review found them rejected).
    addresses = [
        "Storgata 12 B, 2. etasje",
        "Storgata 5 F, 2 etg",
        "Storgata 1-3, 2000 Lillestrøm",
        "c/o Hansen, Storgata 2 f. 3",
        "17. Mai-vegen 3",
        "Syttende mai gate 19",
        "Postboks 6745 St. Olavs plass",
        "8. mai 1945-plassen 2",
        "Storvegen 1995/3/1",
        "Mars 1, 2000 Lillestrøm",
    ]
    houses = [person(f"400001{i:02}", adresse=a) for i, a in enumerate(addresses)]
    rows += houses
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", [*rows, *filler(20)[13:]])
    write_jsonl(
        tmp_path / "in",
        "ice_full_20261122T020000.jsonl",
        [json_person("41234561", street="1977-07-07", postcode="0150", city="Oslo")],
    )
    report = ingest([tmp_path / "in"], lenient)
    rejects = {r.number: r.reason for f in report.files for r in f.rejects}
    assert rejects == {
        "40000001": "bad_text.city",
        "40000002": "bad_text.street",
        "40000003": "bad_text.street",
        "40000004": "bad_text.street",  # the first field said (its city holds one too)
        **{f"400000{i:02}": "bad_text.street" for i in (7, 8, 10, 11, 12)},
        "40000009": "bad_text.city",
        "41234561": "bad_text.street",
    }
    snapshot = served(lenient)
    for number in filter(None, rejects):
        assert snapshot.find(number) is None, number
    for kept in ("40000005", "40000006", *(f"400001{i:02}" for i in range(len(addresses)))):
        assert snapshot.find(kept) is not None, kept
    for text in [
        *(str(row[3]) for row in stored_rejects(lenient)),
        *(r.detail for f in report.files for r in f.rejects),
    ]:
        for date in ("1966", "17/5-75", "17.05.75", "1975", "1977", "17.05.1975", "170575"):
            assert date not in text, text


def test_json_keys_are_read_in_any_case_and_by_their_csv_names(
    tmp_path: Path, lenient: Settings
) -> None:
    # A reservation under "Reservation" (as a C# serializer writes keys) or "reservert"
    # was read as an unknown key: the row was missing its reservation, and the number's
    # listing stayed served.
    write_jsonl(
        tmp_path / "a",
        "ice_full_20261101T010000.jsonl",
        [json_person(str(41234560 + i)) for i in range(10)],
    )
    ingest([tmp_path / "a"], lenient)
    upsert = {"valid_from": "2026-11-02", "action": "upsert"}
    capitalised = json_person("41234561", **upsert)
    capitalised["Reservation"] = capitalised.pop("reservation") and "reserved"
    norwegian = json_person("41234563", **upsert)
    norwegian["reservert"] = norwegian.pop("reservation") and "J"
    rows: list[dict[str, Any] | str] = [
        capitalised,
        {
            "NUMBER": "41234562",
            "Kind": "person",
            "First_Name": "A",
            "Last_Name": "B",
            "RESERVATION": "reserved",
            "Valid_From": "2026-11-02",
            "Action": "upsert",
        },
        norwegian,
        # Two keys naming one field: which holds cannot be told, the reservation holds.
        '{"number": "41234564", "kind": "person", "first_name": "A", "last_name": "B", '
        '"reservation": "listed", "Reservation": "reserved", "valid_from": "2026-11-02"}',
        # One key given twice as written, in another case or Norwegian: the same.
        '{"Number": "41234566", "Kind": "person", "First_Name": "A", "Last_Name": "B", '
        '"Reservation": "reserved", "Reservation": "listed", "Valid_From": "2026-11-02"}',
        '{"number": "41234567", "kind": "person", "first_name": "A", "last_name": "B", '
        '"reservert": "reserved", "reservert": "listed", "valid_from": "2026-11-02"}',
        # The CSV's other names beside the contract's are an export's extras, not twins.
        json_person("41234568", **upsert) | {"type": "mobile", "adresse": "Gate 1, 0150 Oslo"},
        # Cut short: no JSON, but what it says of the reservation, Norwegian key and all.
        '{"number": "41234569", "kind": "person", "reservert": "J", "first_name": "A',
    ]
    write_jsonl(tmp_path / "b", "ice_delta_20261102T010000.jsonl", rows)
    report = ingest([tmp_path / "b"], lenient)
    snapshot = served(lenient)
    for number in [f"4123456{i}" for i in (1, 2, 3, 4, 6, 7, 9)]:
        assert snapshot.find(number) is None, number
    assert snapshot.find("41234568") is not None
    rejects = {r.number: r.reason for f in report.files for r in f.rejects}
    # JSON's codes are words: a J is a bad code, its reservation applied as a broken row's.
    assert rejects == {
        "41234563": "bad_code.reservation",
        "41234564": "bad_json",
        "41234566": "bad_json",
        "41234567": "bad_json",
        "41234569": "bad_json",
    }, rejects
    assert snapshot.find("41234565") is not None


def test_invisible_and_lost_letters_inside_a_name_are_not_served(
    tmp_path: Path, lenient: Settings
) -> None:
    # Served as written: "A\u200bB" is another string than AB to every client and search.
    rows = [
        person("40000001", "An\u200bne", "Sol\u00adberg"),
        person("40000002", "Kj\ufffdrsti"),  # a letter lost converting the text
        person("40000003", gyldig_fra="2020-W01-1"),  # a week date no operator means
        # Direction marks turn the digits around them: shown as "12B Storgata".
        person("40000004", "Ali\u200f", adresse="\u200fStorgata\u200e 12B\u061c"),
    ]
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", [*rows, *filler(20)[5:]])
    report = ingest([tmp_path / "in"], lenient)
    rejects = {r.number: r.reason for f in report.files for r in f.rejects}
    assert rejects == {"40000002": "bad_text.first_name", "40000003": "bad_date.valid_from"}
    listing = served(lenient).find("40000001")
    assert listing is not None
    assert (listing.first_name, listing.last_name) == ("Anne", "Solberg")
    marked = served(lenient).find("40000004")
    assert marked is not None
    assert (marked.first_name, marked.street) == ("Ali", "Storgata 12B")


def test_a_marketing_flag_that_shows_nothing_is_no_answer(
    tmp_path: Path, lenient: Settings
) -> None:
    # Read as empty, a zero-width space or a blank Braille pattern said "not reserved".
    rows = [
        person("40000001", reklamereservert="\u200b"),
        person("40000002", reklamereservert="\u2800"),
        person("40000003", reklamereservert=""),
    ]
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", [*rows, *filler(20)[3:]])
    report = ingest([tmp_path / "in"], lenient)
    rejects = {r.number: r.reason for f in report.files for r in f.rejects}
    assert rejects == {
        "40000001": "bad_code.marketing_reserved",
        "40000002": "bad_code.marketing_reserved",
    }


def test_swapped_column_names_never_serve_quote_or_keep_a_date_of_birth(
    tmp_path: Path, lenient: Settings
) -> None:
    # An export whose header names two columns the other's way round, the data in order.
    def swapped(a: str, b: str) -> str:
        return HEADER.replace(a, "@").replace(b, a).replace("@", b)

    born = ["1975-05-17", "1951-02-11", "15.05.1975"]
    write_csv(
        tmp_path / "in",
        "telenor_full_20261122T020000.csv",
        [person("40000001", fodselsdato=born[0], gyldig_fra="2025-11-03")],
        header=swapped("gyldig_fra", "fodselsdato"),
    )
    write_csv(
        tmp_path / "in",
        "telia_full_20261122T020000.csv",
        [person("40000002", fodselsdato=born[1])],
        header=swapped("nummer", "fodselsdato"),
    )
    write_csv(
        tmp_path / "in",
        "ice_full_20261122T020000.csv",
        [person("40000003", fodselsdato=born[2], gyldig_fra="2025-11-03")],
        header=swapped("gyldig_fra", "fodselsdato"),
    )
    report = ingest([tmp_path / "in"], lenient)
    rejects = [r for f in report.files for r in f.rejects]
    assert sorted(r.reason for r in rejects) == [
        "bad_date.birth_date",
        "bad_date.valid_from",
        "number.not_in_plan",
    ]
    # Not served as the listing's valid-from date (nothing is served), not in any reason,
    # report or kept text.
    assert next(r for r in rejects if r.reason == "bad_date.birth_date").detail == (
        "fodselsdato is later than gyldig_fra (are the two columns' names swapped?)"
    )
    assert (
        report.published is None
        or Snapshot(snapshot_path(lenient.snapshots_path, report.published)).find("40000001")
        is None
    )
    texts = [render_report(report), *(str(row[3]) for row in stored_rejects(lenient))]
    for text in texts:
        for date in born:
            assert date not in text, text


def test_a_date_of_birth_in_iso_8601s_rarer_forms_is_not_quoted_or_kept(
    tmp_path: Path, lenient: Settings
) -> None:
    # The same swapped columns, the date of birth written as an ordinal date (day 137 of
    # 1975 is 17 May), a year and month, or a week date.
    header = HEADER.replace("gyldig_fra", "@").replace("fodselsdato", "gyldig_fra")
    born = ["1975-137", "1975-05", "1975-W20-6"]
    write_csv(
        tmp_path / "in",
        "telenor_full_20261122T020000.csv",
        [
            person(f"4000000{i}", fodselsdato=date, gyldig_fra="2025-11-03")
            for i, date in enumerate(born)
        ],
        header=header.replace("@", "fodselsdato"),
    )
    report = ingest([tmp_path / "in"], lenient)
    rejects = [r for f in report.files for r in f.rejects]
    assert len(rejects) == len(born)
    texts = [render_report(report), *(str(row[3]) for row in stored_rejects(lenient))]
    texts += [r.detail for r in rejects]
    for text in texts:
        for date in born:
            assert date not in text, text


def test_numbers_that_are_no_dates_are_quoted_for_the_operator_to_mend(
    tmp_path: Path, lenient: Settings
) -> None:
    # Four digits and one or two more read as no date unless the four are a year (1800s to
    # 2000s) and the rest a month, a week or a day of the year.
    rows = [
        person("40000001", postnr="1234-5"),
        person("9876-543"),
        person("40000003", postnr="99", adresse="Postboks 6745.5"),
    ]
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", rows)
    report = ingest([tmp_path / "in"], lenient)
    details = [r.detail for f in report.files for r in f.rejects]
    kept = [str(row[3]) for row in stored_rejects(lenient)]
    assert any("'1234-5'" in d for d in details), details
    assert any("'9876-543'" in d for d in details), details
    assert any("9876-543" in k for k in kept) and any("Postboks 6745.5" in k for k in kept)


def test_a_rejected_address_hidden_row_keeps_no_address(tmp_path: Path, lenient: Settings) -> None:
    rows = [
        person("40000001", reservert="A", postnr="99"),
        person("40150002", reservert="Adresse skjult", adresse="Hemmelig gate 6"),
        person("40000003", reservert="A", adresse="Hemmelig gate 6;2. etg"),  # splits wrong
        person("40150123", postnr="0150"),  # listed: its postcode is no secret
    ]
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", rows)
    report = ingest([tmp_path / "in"], lenient)
    kept = [str(row[3]) for row in stored_rejects(lenient)]
    reasons = [f"{r.reason}: {r.detail}" for f in report.files for r in f.rejects]
    assert len(kept) == 3 and len(reasons) == 3
    for text in [*kept, *reasons]:
        for address in ("Storgata", "Hemmelig gate", "Oslo", "99", ";0150;", "etg"):
            assert address not in text, text
    # Masked field by field: the number that holds the postcode's digits is whole.
    assert kept[0].startswith("40000001;") and kept[1].startswith("40150002;")
    assert kept[2] == "[address-hidden row withheld; number 40000003]"


def test_a_date_of_birth_written_into_a_name_is_neither_served_nor_kept(
    tmp_path: Path, lenient: Settings
) -> None:
    rows = [
        person("40000001", first="Kari f. 17.05.1975"),
        person("40000002", last="Hansen (født 1980-02-03)", postnr="99"),
        person("40000003", first="Per", last="Berg", adresse="Storgata 1 1975-05-17", postnr="9"),
        # Digits of other forms, and other marks between a date's parts.
        person("40000004", first="Kari ¹⁷.⁰⁵.¹⁹⁷⁵"),
        person("40000005", first="Ola 17,05,1975"),
        person("40000006", first="Ola 17 - 05 - 1975"),
        person("40000007", first="Olav 2", last="Berg II"),  # no date: served
        # Digits alone, the day's and month's zeros left out: 3 January 1975, 7 May 1975.
        person("40000008", last="Hansen 311975"),
        person("40000009", first="Kari 751975"),
    ]
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", rows)
    jsonl = json_person("41234561", last_name="Hansen f. 1975-05-17", postcode="1")
    write_jsonl(tmp_path / "in", "ice_full_20261122T020000.jsonl", [jsonl])
    report = ingest([tmp_path / "in"], lenient)
    rejects = [r for f in report.files for r in f.rejects]
    assert sorted(r.reason for r in rejects) == [
        "bad_postcode",
        *["bad_text.first_name"] * 5,
        *["bad_text.last_name"] * 3,
    ]
    for text in [*(str(row[3]) for row in stored_rejects(lenient)), *(r.detail for r in rejects)]:
        for leaked in ("1975", "1980", "17.05", "¹⁹⁷⁵", "17,05", "311975", "751975"):
            assert leaked not in text, text
    assert served(lenient).find("40000007") is not None
    # A field holding a date goes whole; the rest of the kept text stays, to find the row by.
    assert any(str(row[3]).startswith("40000001;P;[withheld];") for row in stored_rejects(lenient))


def test_a_rejected_rows_text_is_kept_whole_up_to_2000_characters(
    tmp_path: Path, lenient: Settings
) -> None:
    # A broken line of a megabyte: read in one pass (one field at a time took minutes),
    # its text kept to what finds and mends it.
    huge = person("40000001", first="Berit;" + ";".join(["170575"] * 100_000))
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", [huge, *filler(20)[2:]])
    (file_report,) = ingest([tmp_path / "in"], lenient).files
    (reject,) = file_report.rejects
    assert reject.raw.startswith("40000001;P;Berit;[withheld];[withheld];")
    assert reject.raw.endswith(" more characters]") and len(reject.raw) < 2100
    assert "170575" not in reject.raw


def test_malformed_reserved_jsonl_rows_withdraw_the_number_and_keep_no_text(
    tmp_path: Path, lenient: Settings
) -> None:
    def row(number: str, name: str, reservation: str = "listed") -> dict[str, object]:
        return {
            "number": number,
            "kind": "person",
            "first_name": name,
            "last_name": "Hansen",
            "reservation": reservation,
            "valid_from": "2025-01-01",
        }

    write_jsonl(
        tmp_path / "a",
        "ice_full_20261122T020000.jsonl",
        [row(f"4123456{i}", "N") for i in range(8)],
    )
    ingest([tmp_path / "a"], lenient)
    trailing_comma = json.dumps(row("41234560", "Hemmelig", "reserved"))[:-1] + ",}"
    rows: list[dict[str, object] | str] = [
        trailing_comma,
        row("41234561", "Skjult", "Reserved"),
        row("41234562", "Gjemt", " RESERVED "),
        *(row(f"4123456{i}", "N") for i in range(3, 8)),
    ]
    write_jsonl(tmp_path / "b", "ice_full_20261123T020000.jsonl", rows)
    (file_report,) = ingest([tmp_path / "b"], lenient).files
    assert [(r.line, r.reason) for r in file_report.rejects] == [
        (1, "bad_json"),
        (2, "bad_code.reservation"),
        (3, "bad_code.reservation"),
    ]
    snapshot = served(lenient)
    for number in ("41234560", "41234561", "41234562"):
        assert snapshot.find(number) is None, number
    raws = " ".join(str(r[3]) for r in stored_rejects(lenient))
    assert not {"Hemmelig", "Skjult", "Gjemt"} & set(raws.replace('"', " ").split())


# 3. One bad file never stops the run.


def test_a_cr_only_file_is_read_and_the_folder_still_published(
    tmp_path: Path, settings: Settings
) -> None:
    folder = tmp_path / "in"
    write_csv(folder, "ice_full_20261122T020000.csv", [person("41234567", first="Ice")])
    mac = ("\r".join([HEADER, person("22202400", first="Mac"), person("22202401")]) + "\r").encode()
    (folder / "telenor_full_20261122T020000.csv").write_bytes(mac)
    write_csv(folder, "telia_full_20261122T020000.csv", [person("22202500", first="Telia")])
    report = ingest([folder], settings)
    assert [f.batch.status for f in report.files] == ["applied"] * 3
    assert report.files[1].batch.rows_total == 2
    snapshot = served(settings)
    mac_listing = snapshot.find("22202400")
    assert mac_listing is not None and mac_listing.first_name == "Mac"
    assert snapshot.find("41234567") is not None and snapshot.find("22202500") is not None


def test_an_unexpected_failure_rejects_that_file_only(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "in"
    write_csv(folder, "ice_full_20261122T020000.csv", [person("41234567")])
    write_csv(folder, "telenor_full_20261122T020000.csv", [person("22202400", first="Boom")])
    write_csv(folder, "telia_full_20261122T020000.csv", [person("22202500")])

    def read_rows(text: str, file_format: FileFormat, *, delta: bool = False) -> Iterator[RawRow]:
        if "Boom" in text:
            raise ValueError("a case nobody foresaw")
        return readers.read_rows(text, file_format, delta=delta)

    monkeypatch.setattr(pipeline, "read_rows", read_rows)
    report = ingest([folder], settings)
    assert [(f.batch.status, f.batch.reason) for f in report.files] == [
        ("applied", None),
        ("rejected", "unreadable"),
        ("applied", None),
    ]
    assert "ValueError: a case nobody foresaw" in (report.files[1].batch.detail or "")
    assert report.published is not None and report.published.listings == 2
    assert batches(settings)[1][:3] == (
        "telenor_full_20261122T020000.csv",
        "rejected",
        "unreadable",
    )
    monkeypatch.undo()
    # Once the cause is gone, the same file goes in.
    assert ingest([folder], settings).files[1].batch.status == "applied"


@contextmanager
def _watching(
    inbox: Path, data_dir: Path, interval: str = "0.1"
) -> Iterator[subprocess.Popen[bytes]]:
    """`lookup ingest --watch` on a folder, scanning every 0.1 s; it must end without a
    traceback."""
    watch = ["ingest", "--watch", str(inbox), "--interval", interval]
    watcher = subprocess.Popen(
        [sys.executable, "-m", "lookup.cli", *watch],
        env={**os.environ, "LOOKUP_DATA_DIR": str(data_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield watcher
    finally:
        watcher.terminate()
        _, stderr = watcher.communicate(timeout=10)
    assert b"Traceback" not in stderr


def test_watch_keeps_running_past_a_cr_only_file(tmp_path: Path) -> None:
    inbox, data_dir = tmp_path / "inbox", tmp_path / "var"
    inbox.mkdir()
    settings = make_settings(data_dir)
    with _watching(inbox, data_dir) as watcher:
        mac = ("\r".join([HEADER, person("22202400")]) + "\r").encode()
        (inbox / "telenor_full_20261122T020000.csv").write_bytes(mac)
        write_csv(inbox, "telia_full_20261122T020000.csv", [person("22202500")])

        def published(number: str) -> bool:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and watcher.poll() is None:
                if read_pointer(settings.snapshots_path) and served(settings).find(number):
                    return True
                time.sleep(0.05)
            return False

        assert published("22202400") and published("22202500")
        write_csv(inbox, "ice_full_20261122T030000.csv", [person("41234567")])
        assert published("41234567"), "the watcher stopped"
        assert watcher.poll() is None


def test_watch_waits_for_an_upload_that_paused_mid_line(tmp_path: Path) -> None:
    # An upload stalls part-way (a line cut in two) for many scans, then finishes: the file
    # is taken once, whole; a half full file would have removed the other half's numbers.
    inbox, data_dir = tmp_path / "inbox", tmp_path / "var"
    inbox.mkdir()
    settings = make_settings(data_dir)
    with _watching(inbox, data_dir):
        data = ("\n".join([HEADER, *filler(200)]) + "\n").encode()
        target = inbox / "telenor_full_20261122T020000.csv"
        cut = len(data) // 2 + 7  # within a line
        target.write_bytes(data[:cut])
        time.sleep(1.5)  # 15 scans
        with target.open("ab") as handle:
            handle.write(data[cut:])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not read_pointer(settings.snapshots_path):
            time.sleep(0.05)
        time.sleep(0.5)  # a second batch would come within a few scans
    [(_, status, _, _)] = batches(settings)
    assert status == "applied"
    assert len(served(settings)) == 200


def test_the_line_a_gzip_file_was_cut_in_is_not_read(tmp_path: Path, settings: Settings) -> None:
    # Numbers last: "4791234567" cut after eight digits reads as 47912345, another
    # subscriber, whose listing the cut line's J withdrew (and a later file kept withdrawn).
    header = "reservert;type;fornavn;etternavn;gyldig_fra;nummer"
    listed = [f"N;P;Navn{i};X;2025-01-01;{40000000 + i}" for i in range(10)]
    innocent = "N;P;Innocent;X;2025-01-01;47912345"
    write_csv(
        tmp_path / "a", "telenor_full_20261122T020000.csv", [*listed, innocent], header=header
    )
    ingest([tmp_path / "a"], settings)
    reserving = ["J;P;Kari;X;2025-01-01;40000001", innocent, "J;P;Kari;X;2025-01-01;4791234567"]
    rows = [*listed, *reserving]
    text = ("\n".join([header, *rows]) + "\n").encode()
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    cut = text.index(b"4791234567") + 8
    data = packer.compress(text[:cut]) + packer.flush(zlib.Z_SYNC_FLUSH)  # no end of stream
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "telenor_full_20261123T020000.csv.gz").write_bytes(data)
    (held,) = ingest([tmp_path / "b"], settings).files
    assert (held.batch.status, held.batch.reason) == ("held", "unreadable")
    assert "12 data row(s) not applied; its 1 reservation(s) were honoured" in (
        held.batch.detail or ""
    )
    snapshot = served(settings)
    assert snapshot.find("40000001") is None
    assert snapshot.find("47912345") is not None


def test_a_late_file_cut_short_still_has_its_newer_reservations_honoured(
    tmp_path: Path, settings: Settings
) -> None:
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(5))
    write_csv(tmp_path / "a", "telenor_full_20261124T020000.csv", filler(6))
    ingest([tmp_path / "a"], settings)
    # A delta of the 23rd, delivered after the 24th's full file and cut short in transfer.
    row = person("40000001", reservert="J", gyldig_fra="2026-11-23") + ";U"
    text = "\n".join([DELTA_HEADER, row, *(f"{r};U" for r in filler(20, 41000000))]) + "\n"
    packed = gzip.compress(text.encode())
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "telenor_delta_20261123T030000.csv.gz").write_bytes(packed[:-30])
    (late,) = ingest([tmp_path / "b"], settings).files
    assert (late.batch.status, late.batch.reason) == ("rejected", "stale")
    assert "its 1 reservation(s) dated after telenor's record of the number were honoured" in (
        late.batch.detail or ""
    )
    assert served(settings).find("40000001") is None


def test_watch_waits_for_a_plain_file_named_gz_to_end_its_line(tmp_path: Path) -> None:
    # Taken at a pause mid-line, its cut last line was read for reservations whole.
    path = tmp_path / "telenor_delta_20261122T030000.csv.gz"
    path.write_text(DELTA_HEADER + "\n" + person("4000000", reservert="J"))
    assert not watcher_module._whole(path, path.stat().st_size, read_before=False, limit=10**6)
    path.write_text(DELTA_HEADER + "\n" + person("40000001", reservert="J") + ";U\n")
    assert watcher_module._whole(path, path.stat().st_size, read_before=False, limit=10**6)


def test_watch_takes_a_plain_file_named_gz_at_once(tmp_path: Path) -> None:
    # Read as a gzip upload still under way, it waited the 120 scans a cut file waits
    # before its reservation was honoured.
    inbox, data_dir = tmp_path / "inbox", tmp_path / "var"
    inbox.mkdir()
    settings = make_settings(data_dir)
    write_csv(inbox, "telenor_full_20261122T020000.csv", filler(3))
    with _watching(inbox, data_dir, interval="0.5"):

        def served_now(number: str) -> bool:
            pointer = read_pointer(settings.snapshots_path)
            return pointer is not None and served(settings).find(number) is not None

        deadline = time.monotonic() + 25
        while time.monotonic() < deadline and not served_now("40000001"):
            time.sleep(0.1)
        text = "\n".join([DELTA_HEADER, person("40000001", reservert="J") + ";U"]) + "\n"
        (inbox / "telenor_delta_20261122T030000.csv.gz").write_text(text)
        deadline = time.monotonic() + 25  # 120 scans are 60 s
        while time.monotonic() < deadline and served_now("40000001"):
            time.sleep(0.1)
    assert not served_now("40000001")
    assert [row[1:3] for row in batches(settings)] == [("applied", None), ("held", "unreadable")]


def test_watch_takes_a_file_cut_mid_line_at_last_and_rejects_the_cut_line(
    tmp_path: Path,
) -> None:
    # Unchanged for 120 scans (here 6 s), it is taken; its last line, with no line break,
    # was cut in transfer: "Andr" of Andreas must not be served.
    inbox, data_dir = tmp_path / "inbox", tmp_path / "var"
    inbox.mkdir()
    settings = make_settings(data_dir)
    header = "nummer;type;etternavn;reservert;gyldig_fra;fornavn"
    rows = [f"400000{i:02};P;Hansen;N;2025-01-01;Navn{i}" for i in range(40)]
    data = "\n".join([header, *rows, "40000045;P;Berg;N;2025-01-01;Andr"]).encode()
    with _watching(inbox, data_dir, interval="0.05"):
        (inbox / "telia_full_20261123T020000.csv").write_bytes(data)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not read_pointer(settings.snapshots_path):
            time.sleep(0.1)
    [(_, status, _, _)] = batches(settings)
    assert status == "applied"
    assert [(line, reason) for _, line, reason, _, _ in stored_rejects(settings)] == [
        (42, "cut_line")
    ]
    assert len(served(settings)) == 40


@pytest.mark.parametrize("how", ["sidecar first", "gzip"])
def test_watch_waits_for_an_upload_that_paused_at_a_line_break_when_it_can_tell(
    tmp_path: Path, how: str
) -> None:
    # Sent first, a sidecar says what the whole file is; a gzip stream says where it ends.
    # Taken at the pause, the part was rejected (sidecar_mismatch, "cut short") before the
    # whole went in: a failure in the batches that was none.
    inbox, data_dir = tmp_path / "inbox", tmp_path / "var"
    inbox.mkdir()
    settings = make_settings(data_dir)
    data = ("\n".join([HEADER, *filler(200)]) + "\n").encode()
    name = "telenor_full_20261122T020000.csv"
    if how == "gzip":
        data, name = gzip.compress(data, mtime=0), name + ".gz"
        cut = len(data) // 2
    else:
        (inbox / (name + ".sha256")).write_text(f"{hashlib.sha256(data).hexdigest()}  {name}\n")
        cut = data.index(b"\n", len(data) // 2) + 1  # at a line break
    with _watching(inbox, data_dir):
        (inbox / name).write_bytes(data[:cut])
        time.sleep(1.5)  # 15 scans
        with (inbox / name).open("ab") as handle:
            handle.write(data[cut:])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not read_pointer(settings.snapshots_path):
            time.sleep(0.05)
        time.sleep(0.5)  # a second batch would come within a few scans
    assert [status for _, status, _, _ in batches(settings)] == ["applied"]
    assert len(served(settings)) == 200


def test_watch_takes_a_file_whose_clock_is_ahead(tmp_path: Path) -> None:
    # An upload that keeps a timestamp an hour ahead (another zone, a skewed clock).
    inbox, data_dir = tmp_path / "inbox", tmp_path / "var"
    inbox.mkdir()
    settings = make_settings(data_dir)
    path = write_csv(inbox, "telenor_full_20261122T020000.csv", [person("22202400")])
    ahead = time.time() + 3600
    os.utime(path, (ahead, ahead))
    with _watching(inbox, data_dir):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not read_pointer(settings.snapshots_path):
            time.sleep(0.05)
    assert read_pointer(settings.snapshots_path), "the file was never taken"


# 4. Timestamps in the future.


def test_a_valid_from_in_the_future_is_rejected_and_cannot_outrank_a_port(
    tmp_path: Path, lenient: Settings
) -> None:
    folder = tmp_path / "in"
    typo = [person("22202400", first="Typo", gyldig_fra="2206-01-01"), person("22202401")]
    write_csv(folder, "telenor_full_20261122T020000.csv", typo)
    write_csv(
        folder,
        "telia_full_20261123T020000.csv",
        [person("22202400", reservert="J", gyldig_fra="2026-11-20")],
    )
    report = ingest([folder], lenient)
    (reject,) = report.files[0].rejects  # telenor's
    assert (reject.line, reject.reason) == (2, "bad_date.valid_from")
    assert "later than the file itself" in reject.detail
    assert served(lenient).find("22202400") is None  # the port's reservation wins
    # Midnight of the coming day is still fine: changes take effect then.
    write_csv(
        tmp_path / "b",
        "telenor_delta_20261124T230000.csv",
        [person("22202401", first="Tomorrow", gyldig_fra="2026-11-25") + ";U"],
        header=DELTA_HEADER,
    )
    (file_report,) = ingest([tmp_path / "b"], lenient).files
    assert file_report.rejects == []


def test_a_file_stamped_in_the_future_is_a_bad_file_name_not_a_block(
    tmp_path: Path, settings: Settings
) -> None:
    write_csv(tmp_path / "a", "telenor_full_20961130T020000.csv", [person("22202400", first="X")])
    (file_report,) = ingest([tmp_path / "a"], settings).files
    assert (file_report.batch.status, file_report.batch.reason) == ("rejected", "bad_file_name")
    assert "in the future" in (file_report.batch.detail or "")
    write_csv(tmp_path / "b", "telenor_full_20261130T020000.csv", [person("22202400", first="Y")])
    (file_report,) = ingest([tmp_path / "b"], settings).files
    assert file_report.batch.status == "applied"
    listing = served(settings).find("22202400")
    assert listing is not None and listing.first_name == "Y"


# 5. A held file hides addresses at once.


def test_a_held_file_applies_its_address_hidden_rows_and_adds_nothing(
    tmp_path: Path, settings: Settings
) -> None:
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(20))
    ingest([tmp_path / "a"], settings)
    rows = [
        person("40000001", first="Renamed", adresse="Ny gate 9", reservert="A"),
        person("41999999", first="Newcomer", reservert="A"),
        *filler(10)[2:],
    ]
    write_csv(tmp_path / "b", "telenor_full_20261123T020000.csv", rows)
    report = ingest([tmp_path / "b"], settings)
    assert (report.files[0].batch.status, report.files[0].batch.reason) == (
        "held",
        "shrinks_too_much",
    )
    assert "hidden address(es) were applied" in (report.files[0].batch.detail or "")
    assert report.published is not None
    snapshot = served(settings)
    hidden = snapshot.find("40000001")
    assert hidden is not None
    assert (hidden.street, hidden.postcode, hidden.city) == ("", "", "")
    assert hidden.first_name == "Navn1"  # nothing else of the held file applied
    assert snapshot.find("41999999") is None
    other = snapshot.find("40000002")
    assert other is not None and other.street == "Storgata 1"
    assert len(snapshot) == 20


# 6. Mixed encodings.


def test_one_latin1_line_in_a_utf8_file_garbles_no_name(tmp_path: Path, settings: Settings) -> None:
    utf8 = [person(str(22202400 + i), first="Bjørn", last="Sæther").encode() for i in range(5)]
    latin1 = person("22202499", first="Åse", last="Løken").encode("iso-8859-1")
    data = b"\n".join([HEADER.encode(), *utf8, latin1]) + b"\n"
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "telenor_full_20261122T020000.csv").write_bytes(data)
    (file_report,) = ingest([folder], settings).files
    assert file_report.batch.status == "applied"
    snapshot = served(settings)
    for i in range(5):
        listing = snapshot.find(str(22202400 + i))
        assert listing is not None and (listing.first_name, listing.last_name) == (
            "Bjørn",
            "Sæther",
        )
    ase = snapshot.find("22202499")
    assert ase is not None and (ase.first_name, ase.last_name) == ("Åse", "Løken")


# 7. Empty deltas and actions in full files.


def test_an_empty_delta_is_a_counted_no_op(
    tmp_path: Path,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(5))
    ingest([tmp_path / "a"], settings)
    folder = tmp_path / "b"
    write_csv(folder, "telenor_delta_20261123T020000.csv", [], header=DELTA_HEADER)
    folder.joinpath("ice_delta_20261123T020000.jsonl").write_bytes(b"")
    monkeypatch.setenv("LOOKUP_DATA_DIR", str(settings.data_path))
    assert main(["ingest", str(folder)]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    assert "rows 0, accepted 0, rejected 0" in out.out
    assert [(b[1], b[3]) for b in batches(settings)[1:]] == [
        ("applied", "no data rows: nothing to change"),
        ("applied", "no data rows: nothing to change"),
    ]
    assert len(served(settings)) == 5


def test_a_delete_in_a_full_file_is_rejected_and_the_number_kept(
    tmp_path: Path, lenient: Settings
) -> None:
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(5))
    ingest([tmp_path / "a"], lenient)
    rows = [
        person("40000000") + ";D",
        *(row + ";U" for row in filler(5)[1:]),
        person("40000009") + ";",
    ]
    write_csv(tmp_path / "b", "telenor_full_20261123T020000.csv", rows, header=DELTA_HEADER)
    (file_report,) = ingest([tmp_path / "b"], lenient).files
    assert [(r.line, r.reason) for r in file_report.rejects] == [(2, "bad_code.action")]
    snapshot = served(lenient)
    assert snapshot.find("40000000") is not None
    assert snapshot.find("40000009") is not None  # an empty action in a full file is fine


def test_a_delta_without_an_action_column_is_refused_at_its_header(
    tmp_path: Path, settings: Settings
) -> None:
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(5))
    ingest([tmp_path / "a"], settings)
    # Each row would otherwise be rejected alone, for the same missing column.
    write_csv(tmp_path / "b", "telenor_delta_20261123T020000.csv", filler(3))
    [file] = ingest([tmp_path / "b"], settings).files
    assert (file.batch.status, file.batch.reason) == ("rejected", "bad_header")
    assert "action" in (file.batch.detail or "") and file.rejects == []
    assert len(served(settings)) == 5


def test_a_broken_address_hidden_row_still_takes_the_address_away(
    tmp_path: Path, lenient: Settings
) -> None:
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(10))
    ingest([tmp_path / "a"], lenient)
    rows = [
        person("40000001", reservert="A", postnr="150") + ";U",  # the lost leading zero
        person("40000002", reservert="A", gyldig_fra="yesterday") + ";U",
        person("40000003", reservert="A", fodselsdato="1980-13-45") + ";U",
        person("40000004", reservert="A") + ";U;one field too many",
    ]
    write_csv(tmp_path / "b", "telenor_delta_20261123T020000.csv", rows, header=DELTA_HEADER)
    (file_report,) = ingest([tmp_path / "b"], lenient).files
    assert len(file_report.rejects) == 4
    snapshot = served(lenient)
    for index in range(1, 5):
        listing = snapshot.find(f"4000000{index}")
        assert listing is not None, index
        # The address is gone; the rest of the previous record stays, nothing of the row.
        assert (listing.street, listing.postcode, listing.city) == ("", "", ""), index
        assert listing.first_name == f"Navn{index}"
    untouched = snapshot.find("40000005")
    assert untouched is not None and untouched.street == "Storgata 1"


def test_a_broken_address_hidden_jsonl_row_takes_the_address_away_even_when_held(
    tmp_path: Path, settings: Settings
) -> None:
    def row(number: str, reservation: str = "listed") -> dict[str, object]:
        return {
            "number": number,
            "kind": "person",
            "first_name": "Kari",
            "last_name": "Hansen",
            "street": "Storgata 1",
            "postcode": "0150",
            "city": "Oslo",
            "reservation": reservation,
            "valid_from": "2025-01-01",
        }

    write_jsonl(
        tmp_path / "a", "ice_full_20261122T020000.jsonl", [row(f"4123456{i}") for i in range(10)]
    )
    ingest([tmp_path / "a"], settings)
    # Shrinks by half: held back, but the address-hidden wish still holds.
    rows: list[dict[str, object] | str] = [
        row("41234560", "Address_hidden"),
        *(row(f"4123456{i}") for i in range(1, 5)),
    ]
    write_jsonl(tmp_path / "b", "ice_full_20261123T020000.jsonl", rows)
    (file_report,) = ingest([tmp_path / "b"], settings).files
    assert file_report.batch.status == "held"
    snapshot = served(settings)
    hidden = snapshot.find("41234560")
    assert hidden is not None and hidden.street == "" and hidden.city == ""
    assert len(snapshot) == 10


def test_a_subscriber_who_becomes_reserved_leaves_no_data_in_old_snapshots_or_rejects(
    tmp_path: Path, lenient: Settings
) -> None:
    rows = [person("22202400", first="Ola", last="Hemmelig"), *filler(8)]
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", rows)
    ingest([tmp_path / "a"], lenient)
    # A delta whose row for the number is rejected: its raw text is kept, as for any row.
    broken = person("22202400", first="Ola", last="Hemmelig", postnr="150") + ";U"
    other = person("40000002", first="Changed") + ";U"  # so that it publishes
    write_csv(
        tmp_path / "b", "telenor_delta_20261123T020000.csv", [broken, other], header=DELTA_HEADER
    )
    ingest([tmp_path / "b"], lenient)
    assert "Hemmelig" in " ".join(str(r) for r in stored_rejects(lenient))
    snapshots = lenient.snapshots_path
    assert len(list(snapshots.glob("*.arrow"))) == 2
    reserve = person("22202400", first="", last="", reservert="J", gyldig_fra="2025-06-01") + ";U"
    write_csv(tmp_path / "c", "telenor_delta_20261124T020000.csv", [reserve], header=DELTA_HEADER)
    ingest([tmp_path / "c"], lenient)
    assert served(lenient).find("22202400") is None
    # Only the new snapshot stays on disk, and no reject still quotes the subscriber.
    files = list(snapshots.glob("*.arrow"))
    assert len(files) == 1
    assert all(b"Hemmelig" not in path.read_bytes() for path in files)
    assert "Hemmelig" not in " ".join(str(r) for r in stored_rejects(lenient))
    # A later publish that withdraws nothing keeps older snapshots as configured again.
    write_csv(
        tmp_path / "d",
        "telenor_delta_20261125T020000.csv",
        [person("40000001", first="Renamed") + ";U"],
        header=DELTA_HEADER,
    )
    ingest([tmp_path / "d"], lenient)
    assert len(list(snapshots.glob("*.arrow"))) == 2


def test_a_reservation_withholds_rejects_stored_before_they_carried_their_number(
    tmp_path: Path, lenient: Settings
) -> None:
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(8))
    ingest([tmp_path / "a"], lenient)
    # As an earlier version stored it: no number column, the number in a written form.
    with duckdb.connect(str(lenient.warehouse_path)) as con:
        con.execute("ALTER TABLE rejects DROP COLUMN number")
        con.execute(
            "INSERT INTO rejects VALUES (1, 'old.csv', 3, 'bad_postcode', 'postnr', "
            "'+47 222 02 410;P;Kari;Hemmelig;;;Storgata 1;150;Oslo;N;N;;2025-01-01', false)"
        )
    reserve = person("22202410", first="", last="", reservert="J", gyldig_fra="2025-06-01") + ";U"
    write_csv(tmp_path / "b", "telenor_delta_20261124T020000.csv", [reserve], header=DELTA_HEADER)
    ingest([tmp_path / "b"], lenient)
    assert "Hemmelig" not in " ".join(str(r) for r in stored_rejects(lenient))


@pytest.mark.parametrize("form", ["old_copy", "bad_header", "broken_row"])
def test_a_reservation_said_again_in_any_form_keeps_the_subscriber_withdrawn(
    tmp_path: Path, form: str
) -> None:
    # Telenor lists an old record of the number; Telia's reservation of it (May) outlived
    # its record (deleted in November). Telia then says the reservation again, dated before
    # the withdrawal or broken: Telenor's record, dated between, must stay veiled.
    settings = make_settings(tmp_path / "var", reject_ratio_max=1.0)
    number = "22202400"
    stale = person(number, first="Stale", gyldig_fra="2026-03-01")
    write_csv(tmp_path / "t", "telenor_full_20261120T020000.csv", [stale, *filler(20, 41000000)])
    old = write_csv(
        tmp_path / "a",
        "telia_full_20261121T020000.csv",
        [person(number, reservert="J", gyldig_fra="2026-01-01"), *filler(20)],
    )
    write_csv(
        tmp_path / "b",
        "telia_full_20261122T020000.csv",
        [person(number, reservert="J", gyldig_fra="2026-05-07"), *filler(20)],
    )
    delete = person(number, reservert="J", gyldig_fra="2026-11-25") + ";D"
    write_csv(tmp_path / "c", "telia_delta_20261125T020000.csv", [delete], header=DELTA_HEADER)
    for folder in ("t", "a", "b", "c"):
        ingest([tmp_path / folder], settings)
    assert served(settings).find(number) is None
    again = tmp_path / "d"
    if form == "old_copy":  # the January file sent again under a new name
        again.mkdir()
        shutil.copy(old, again / "telia_full_20261126T020000.csv")
    elif form == "bad_header":
        rows = [person(number, reservert="J", gyldig_fra="2026-01-01"), *filler(20)]
        header = HEADER.replace("type;", "typ;")
        write_csv(again, "telia_full_20261126T020000.csv", rows, header=header)
    else:  # a stray separator shifts the date of birth into the valid-from place
        broken = person(number, first="Berit;Anne", reservert="J", gyldig_fra="2026-11-26")
        write_csv(again, "telia_full_20261126T020000.csv", [broken, *filler(20)])
    ingest([again], settings)
    assert served(settings).find(number) is None
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        dates = warehouse.query(
            "SELECT valid_from::DATE::VARCHAR FROM records WHERE number = ? "
            "UNION ALL SELECT valid_from::DATE::VARCHAR FROM withdrawals WHERE number = ?",
            [number, number],
        )
    assert ("1980-02-03",) not in dates  # no date of birth kept as a date


def test_names_that_would_show_other_than_kept_or_swamp_every_answer_are_rejected(
    tmp_path: Path, lenient: Settings
) -> None:
    rows = [
        person("40000001", first="Rtl\u202eevil"),  # displayed reversed after the override
        person("40000002", last="\u200b\u200b"),  # a last name of nothing visible
        person("40000003", last="Huge" * 30_000),  # 120,000 characters
        person("40000004", first="Åse Marie", last="Ødegård"),
        *filler(20, start=40000010),
    ]
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", rows)
    report = ingest([tmp_path / "in"], lenient)
    reasons = {r.line: (r.reason, r.detail) for f in report.files for r in f.rejects}
    assert reasons[2] == (
        "bad_text.first_name",
        "fornavn contains a text direction control (U+202E)",
    )
    assert reasons[3][0] == "missing.last_name"
    assert reasons[4] == (
        "bad_text.last_name",
        "etternavn is longer than 300 characters (120000)",
    )
    snapshot = served(lenient)
    assert [snapshot.find(n) for n in ("40000001", "40000002", "40000003")] == [None] * 3
    kept = snapshot.find("40000004")
    assert kept is not None and (kept.first_name, kept.last_name) == ("Åse Marie", "Ødegård")


def test_a_marker_with_an_unseen_character_still_reserves_and_deep_json_is_one_bad_row(
    tmp_path: Path, lenient: Settings
) -> None:
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(12))
    ingest([tmp_path / "a"], lenient)
    rows = [
        person("40000000", reservert="\u200bJ") + ";U",  # a zero-width space before the J
        person("40000001", reservert="\ufeffJ") + ";U",  # a byte-order mark mid-file
    ]
    write_csv(tmp_path / "b", "telenor_delta_20261123T020000.csv", rows, header=DELTA_HEADER)
    deep = '{"number": "41790001", "kind": ' + "[" * 5000 + "]" * 5000 + "}"
    write_jsonl(tmp_path / "b", "ice_full_20261123T020000.jsonl", [deep])
    report = ingest([tmp_path / "b"], lenient)
    by_file = {f.batch.file: f for f in report.files}
    # Read as the J it shows, the invisible character left out (it was a broken row whose
    # reservation held).
    assert by_file["telenor_delta_20261123T020000.csv"].rejects == []
    [broken] = by_file["ice_full_20261123T020000.jsonl"].rejects
    assert broken.reason == "bad_json" and "recursion" in broken.detail
    snapshot = served(lenient)
    assert snapshot.find("40000000") is None and snapshot.find("40000001") is None


def test_a_row_giving_a_key_twice_is_judged_on_what_it_parses_to(
    tmp_path: Path, lenient: Settings
) -> None:
    def line(number: str, tail: str) -> str:
        head = f'{{"number": "{number}", "kind": "person", "first_name": "Vera", '
        return head + '"first_name": "V", "last_name": "Hemmelig", ' + tail + "}"

    numbers = [f"4179100{i}" for i in range(5)]
    listed = [
        json.loads(line(n, '"reservation": "listed", "valid_from": "2025-01-01"')) for n in numbers
    ]
    write_jsonl(tmp_path / "a", "qk_full_20261122T020000.jsonl", listed)
    ingest([tmp_path / "a"], lenient)
    dated = '"valid_from": "2025-01-01"'
    rows: list[dict[str, object] | str] = [
        line("41791000", f'"reservation": "hemmelig", {dated}'),  # a word, not a code
        line("41791001", f'"reservation": [[{{"a": "reserved"}}]], {dated}'),  # deep
        line(
            "41791002", f'"reservation": "listed", "fodselsdato": "1980\\u002d02\\u002d03", {dated}'
        ),
        line("41791003", f'"reservation": "\\u2066J\\u2069", {dated}'),  # isolates around a J
        line("41791004", f'"reservation": "listed", {dated}'),
    ]
    write_jsonl(tmp_path / "b", "qk_full_20261123T020000.jsonl", rows)
    report = ingest([tmp_path / "b"], lenient)
    rejects = {r.number: r.raw for f in report.files for r in f.rejects}
    for withdrawn in ("41791000", "41791001", "41791003"):  # a reserved row keeps no text
        assert rejects[withdrawn].startswith("[reserved row withheld"), rejects[withdrawn]
    assert "1980" not in rejects["41791002"] and "u002d" not in rejects["41791002"]
    snapshot = served(lenient)
    assert [snapshot.find(n) is None for n in numbers] == [True, True, False, True, False]


def test_a_row_giving_a_key_twice_keeps_no_date_of_birth_and_no_depth_hides_it(
    tmp_path: Path, lenient: Settings
) -> None:
    def line(number: str, tail: str) -> str:
        head = f'{{"number": "{number}", "kind": "person", "first_name": "Kari", '
        return head + '"last_name": "Nordmann", "last_name": "N", ' + tail + "}"

    deep = range(900, 1001)  # msgspec and json give up at different depths in between
    numbers = [f"4179200{i}" for i in range(6)] + [f"4179{d:04d}" for d in deep]
    listed: list[dict[str, object] | str] = [
        {
            "number": n,
            "kind": "person",
            "first_name": "Kari",
            "last_name": "Nordmann",
            "reservation": "listed",
            "valid_from": "2025-01-01",
        }
        for n in numbers
    ]
    write_jsonl(tmp_path / "a", "qk_full_20261122T020000.jsonl", listed)
    ingest([tmp_path / "a"], lenient)
    dated = '"reservation": "listed", "valid_from": "2025-01-01"'
    rows: list[dict[str, object] | str] = [
        line("41792000", f'"birth_date": "ca 1980\\u002d02\\u002d03", {dated}'),
        line("41792001", f'"birth_date": 1.9800203e7, {dated}'),
        line("41792002", f'"note": "Kari, f\\u00f8dt 3.2.1980", {dated}'),
        line("41792003", '"reservation": [[[["reserved"]]]], "valid_from": "2025-01-01"'),
        # Dates that only read as dates decoded, or as numbers (encoded again, they hid).
        line("41792004", f'"street": "1980-02-03\\n", "city": -19800203.0, {dated}'),
        '{"number": "41792005", "birth_date": 1.9800203e7, "first_name": "1980\\u002d02\\u002d03", '
        '"kind": "person", "x": '
        + "[" * 995
        + "]" * 995
        + f", {dated}, "
        + '"city": "a", "city": "b"}',
        *(
            f'{{"number": "4179{d:04d}", "reservation": "reserved", "x": '
            + "[" * d
            + "]" * d
            + ', "reservation": "listed", "kind": "person"}'
            for d in deep
        ),
    ]
    write_jsonl(tmp_path / "b", "qk_delta_20261123T020000.jsonl", rows)
    report = ingest([tmp_path / "b"], lenient)
    kept = [r.raw + r.detail for f in report.files for r in f.rejects]
    # The row's own number stays, however it reads: it is how an operator finds the row.
    assert any(text.startswith('{"number": "41792004"') for text in kept)
    for text in kept:
        for leaked in ("1980", "u002d", "3.2.", "e7", "Kari, f", "19800203"):
            assert leaked not in text, text
    snapshot = served(lenient)
    assert snapshot.find("41792003") is None  # reserved four arrays deep
    served_listed = [n for n in numbers[6:] if snapshot.find(n) is not None]
    assert served_listed == []  # reserved first, then listed: never the last value's word


def test_a_whole_rejected_row_keeps_no_date_written_as_a_number_or_split_by_blanks(
    tmp_path: Path, lenient: Settings
) -> None:
    row = {
        "number": "41793001",
        "kind": "person",
        "first_name": "Kari",
        "last_name": "Nordmann",
        "postcode": "12",  # rejected for this
        "city": 1.9800203e7,
        "street": "1980-\t02-\t03",
        "reservation": "listed",
        "valid_from": "2025-01-01",
    }
    # Dates that are a phone number's digits too, with a time, or inside an array.
    rows = [
        person("40000001", postnr="12", reklamereservert="24.12.1980"),
        person("40000002", postnr="12", reklamereservert="17.05.1975 12:00"),
    ]
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", rows)
    listed = {**row, "number": "41793002", "city": ["23051975"], "street": "1975-05-17 00:00:00"}
    write_jsonl(tmp_path / "in", "qk_full_20261122T020000.jsonl", [row, listed])
    report = ingest([tmp_path / "in"], lenient)
    rejects = [r for f in report.files for r in f.rejects]
    assert len(rejects) == 4 and all("postcode" in r.reason for r in rejects)
    for reject in rejects:
        for leaked in ("1980", "e7", "19800203", "1975", "23051975"):
            assert leaked not in reject.raw, reject.raw
    # The row is still found by its number.
    assert any('"number":"41793001"' in r.raw.replace(" ", "") for r in rejects)


@pytest.mark.parametrize(("first", "force"), [("J", False), ("N", False), ("N", True)])
def test_two_files_of_one_moment_keep_the_reservation_either_way(
    tmp_path: Path, settings: Settings, first: str, force: bool
) -> None:
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(30))
    ingest([tmp_path / "a"], settings)
    # The same delta sent as .csv and .csv.gz, re-exported in between: the subscriber
    # reserved their number (J) or the export before it still lists it (N).
    second = "N" if first == "J" else "J"
    rows = {
        flag: [person("40000003", reservert=flag, gyldig_fra="2026-11-21") + ";U"]
        for flag in ("J", "N")
    }
    folder = tmp_path / "b"
    write_csv(folder, "telenor_delta_20261123T060000.csv", rows[first], header=DELTA_HEADER)
    write_csv(
        folder,
        "telenor_delta_20261123T060000.csv.gz",
        rows[second],
        header=DELTA_HEADER,
        compress=True,
    )
    # Forced too (a folder forced for its held files): the operator forces one alone.
    plain, packed = ingest([folder], settings, force=force).files
    assert plain.batch.status == "applied"
    assert (packed.batch.status, packed.batch.reason) == ("held", "same_stamp")
    assert (packed.batch.detail or "").startswith(
        "telenor_delta_20261123T060000.csv, another file with the same time stamp, was applied"
    )
    assert served(settings).find("40000003") is None  # reserved, whichever came first


def test_a_second_full_file_of_one_moment_removes_nothing_unseen(
    tmp_path: Path, settings: Settings
) -> None:
    folder = tmp_path / "in"
    write_csv(folder, "telenor_full_20261122T020000.csv", filler(30))
    write_jsonl(
        folder,
        "telenor_full_20261122T020000.jsonl",
        [json_person(str(41000000 + i)) for i in range(30)],
    )
    taken, twin = ingest([folder], settings).files
    assert (taken.batch.status, twin.batch.status, twin.batch.reason) == (
        "applied",
        "held",
        "same_stamp",
    )
    assert len(served(settings)) == 30  # the first file's numbers, none removed
    forced = ingest([folder / "telenor_full_20261122T020000.jsonl"], settings, force=True)
    assert forced.files[0].batch.status == "applied"  # the operator says which holds
    assert served(settings).find("41000000") is not None


def test_a_held_file_corrected_and_sent_again_under_its_name_goes_in(
    tmp_path: Path, settings: Settings
) -> None:
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(40))
    ingest([tmp_path / "a"], settings)
    # A truncated export, held for shrinking; the whole one, re-exported under its name.
    truncated = [person("40000000", reservert="J"), *filler(10)[1:]]
    write_csv(tmp_path / "b", "telenor_full_20261123T020000.csv", truncated)
    (held,) = ingest([tmp_path / "b"], settings).files
    assert (held.batch.status, held.batch.reason) == ("held", "shrinks_too_much")
    whole = [person("40000000", first="Lifted?"), *filler(40)[1:]]
    write_csv(tmp_path / "c", "telenor_full_20261123T020000.csv", whole)
    (corrected,) = ingest([tmp_path / "c"], settings).files
    assert corrected.batch.status == "applied", corrected.batch.detail
    # The correction says what holds at that moment, as the held file forced alone would.
    listing = served(settings).find("40000000")
    assert listing is not None and listing.first_name == "Lifted?"
    assert len(served(settings)) == 40


def test_a_file_taken_cut_mid_line_has_its_last_line_rejected(tmp_path: Path) -> None:
    # The contract lets columns come in any order: with the first name last, a line cut
    # mid-name ("Andr" of Andreas) reads as a whole row, and was served so.
    header = "nummer;type;etternavn;reservert;gyldig_fra;fornavn"
    name = "telia_full_20261123T020000.csv"
    rows = [f"400000{i:02};P;Hansen;N;2025-01-01;Navn{i}" for i in range(40)]
    rows += ["40000045;P;Berg;N;2025-01-01;Andr", "40000046;P;Lie;J;2025-01-01;Ma"]
    for last, reason, hidden in ((rows[40], "cut_line", None), (rows[41], "cut_line", "reserved")):
        folder = tmp_path / reason / (hidden or "listed")
        path = write_csv(
            folder, "telia_full_20261123T020000.csv", [*rows[:40], last], header=header
        )
        path.write_bytes(path.read_bytes().rstrip(b"\n"))  # cut: no line break at its end
        data = tmp_path / f"data-{hidden}"
        report = ingest([path], make_settings(data), cut_off={path})
        [file_report] = report.files
        assert file_report.batch.status == "applied"
        assert [(r.line, r.reason) for r in file_report.rejects] == [(42, reason)]
        number = last.split(";", 1)[0]
        with Warehouse(make_settings(data).warehouse_path, read_only=True) as warehouse:
            stored = warehouse.query(
                "SELECT reservation, first_name FROM records WHERE number = ?", [number]
            )
        # The cut name is kept nowhere; a reservation the cut line plainly carries holds.
        assert stored == ([] if hidden is None else [("reserved", None)])
    # Only a line with more than blanks after the last line break, in CSV, was cut; a
    # delta's delete on it takes its number away all the same.
    jsonl = write_jsonl(
        tmp_path / "jsonl", "telia_full_20261123T020000.jsonl", [json_person(r[:8]) for r in rows]
    )
    jsonl.write_bytes(jsonl.read_bytes().rstrip(b"\n"))
    blanks = write_csv(tmp_path / "blanks", name, rows[:40], header=header)
    blanks.write_bytes(blanks.read_bytes() + b"  ")
    for whole in (jsonl, blanks):
        report = ingest(
            [whole], make_settings(tmp_path / f"data-{whole.parent.name}"), cut_off={whole}
        )
        assert report.files[0].rejects == [], whole.name
    delta_data = tmp_path / "data-delta"
    ingest(
        [write_csv(tmp_path / "base", name, rows[:40], header=header)], make_settings(delta_data)
    )
    delta_header = header + ";action"
    deletion = write_csv(
        tmp_path / "delta",
        "telia_delta_20261123T060000.csv",
        [f"{row};U" for row in rows[10:40]] + ["40000001;P;Hansen;N;2025-01-01;Navn1;D"],
        header=delta_header,
    )
    deletion.write_bytes(deletion.read_bytes().rstrip(b"\n"))
    [cut_delete] = ingest([deletion], make_settings(delta_data), cut_off={deletion}).files
    assert cut_delete.batch.status == "applied"
    assert [r.reason for r in cut_delete.rejects] == ["cut_line"]
    assert served(make_settings(delta_data)).find("40000001") is None
    # Ingested by hand (not cut off), the same file's last line is the operator's.
    plain = write_csv(
        tmp_path / "plain", "telia_full_20261123T020000.csv", rows[:41], header=header
    )
    plain.write_bytes(plain.read_bytes().rstrip(b"\n"))
    assert ingest([plain], make_settings(tmp_path / "data-plain")).files[0].rejects == []


def test_a_file_taken_half_then_finished_under_its_name_goes_in_whole(
    tmp_path: Path, settings: Settings
) -> None:
    # An upload a watcher took while it paused at a line break, then finished: the whole
    # file was held as its own twin ("same_stamp": itself), and the missing half's
    # numbers stayed removed until the next night.
    write_csv(tmp_path / "a", "telenor_full_20261122T020000.csv", filler(60))
    ingest([tmp_path / "a"], settings)
    renamed = [person(str(40000000 + i), first=f"Ny{i}") for i in range(60)]
    whole = write_csv(tmp_path / "b", "telenor_full_20261123T020000.csv", renamed)
    data = whole.read_bytes()
    cut = data.index(b"\n", len(data) * 19 // 20) + 1  # at a line break, 95 % in
    whole.write_bytes(data[:cut])
    [half] = ingest([whole], settings).files
    assert half.batch.status == "applied" and len(served(settings)) < 60
    whole.write_bytes(data)
    # As the watcher passes it: the file it read before, changed in place since.
    [rest] = ingest([whole], settings, rewritten={whole}).files
    assert (rest.batch.status, rest.batch.reason) == ("applied", None)
    assert len(served(settings)) == 60


def test_two_copies_of_one_name_from_two_folders_are_twins(
    tmp_path: Path, settings: Settings
) -> None:
    # Which is newer cannot be told: the second must not lift the first's reservation
    # (a same-name exemption let it, for a moment).
    rows = {flag: [*filler(40), person("40000099", reservert=flag)] for flag in ("J", "N")}
    name = "telia_full_20261123T020000.csv"
    write_csv(tmp_path / "inbox", name, rows["J"])
    write_csv(tmp_path / "archive", name, rows["N"])
    first, second = ingest([tmp_path / "inbox", tmp_path / "archive"], settings).files
    assert first.batch.status == "applied"
    assert (second.batch.status, second.batch.reason) == ("held", "same_stamp")
    # Said as what it is: not "telia_full_…, another file with the same time stamp".
    assert (second.batch.detail or "").startswith(
        "an earlier delivery under this same name, with other content, was applied before it"
    )
    assert served(settings).find("40000099") is None
