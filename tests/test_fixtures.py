"""Tests for the operator-file fixture generator, read back from real files as an ingester would."""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import json
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import phonenumbers
import pytest

from lookup.fixtures import generate, names
from lookup.index.reader import Snapshot
from lookup.index.snapshot import read_pointer, snapshot_path
from lookup.ingest.pipeline import ingest
from tests.conftest import make_settings

DEMO = Path(__file__).resolve().parent.parent / "data" / "fixtures" / "demo"
FILE_NAME = re.compile(r"^[a-z0-9-]+_(full|delta)_\d{8}T\d{6}\.(csv|jsonl)(\.gz)?$")
# The reason codes as the brief spells them, kept apart from the generator's own constants.
COMMON_REASONS = {
    "number.letters",
    "number.too_short",
    "number.too_long",
    "number.empty",
    "number.not_norwegian",
    "number.not_in_plan",
    "missing.first_name",
    "missing.last_name",
    "missing.business_name",
    "missing.valid_from",
    "bad_code.kind",
    "bad_code.reservation",
    "bad_date.valid_from",
    "bad_date.birth_date",
    "bad_postcode",
    "bad_org_number",
}
REASONS = {
    "csv": COMMON_REASONS | {"bad_code.marketing_reserved", "bad_row"},
    "jsonl": COMMON_REASONS | {"bad_json", "bad_type.marketing_reserved"},
}
CSV_TO_JSON = {
    "nummer": "number",
    "type": "kind",
    "fornavn": "first_name",
    "etternavn": "last_name",
    "firmanavn": "business_name",
    "orgnr": "org_number",
    "adresse": "street",
    "postnr": "postcode",
    "poststed": "city",
    "reservert": "reservation",
    "reklamereservert": "marketing_reserved",
    "fodselsdato": "birth_date",
    "gyldig_fra": "valid_from",
    "action": "action",
}
CODES: dict[str, dict[str, Any]] = {
    "kind": {"P": "person", "B": "business"},
    "reservation": {"N": "listed", "J": "reserved", "A": "address_hidden"},
    "marketing_reserved": {"J": True, "N": False},
    "action": {"U": "upsert", "D": "delete"},
}
PRIVACY = {"listed": 0, "address_hidden": 1, "reserved": 2}


@dataclass
class Row:
    file: str
    operator: str
    kind: str  # full or delta
    line: int
    raw: str
    fields: dict[str, Any] | None  # English JSON Lines names and values; None if unparsable
    reason: str | None  # planned reject reason from the manifest


def national(written: str) -> str:
    """The national number of a well-formed written form, as a strict normalizer would give."""
    digits = re.sub(r"[ \-]", "", written)
    for prefix in ("+47", "0047"):
        if digits.startswith(prefix):
            return digits[len(prefix) :]
    return digits


def orgnr_ok(orgnr: str) -> bool:
    if not re.fullmatch(r"[89]\d{8}", orgnr):
        return False
    total = sum(w * int(d) for w, d in zip((3, 2, 7, 6, 5, 4, 3, 2), orgnr[:8], strict=True))
    check = (11 - total % 11) % 11
    return check != 10 and check == int(orgnr[8])


def read_rows(
    folder: Path, entry: dict[str, Any], rejects: dict[tuple[str, int], str]
) -> list[Row]:
    data = (folder / entry["name"]).read_bytes()
    if entry["gzip"]:
        data = gzip.decompress(data)
    text = data.decode(entry["encoding"])
    parsed: list[tuple[int, str, dict[str, Any] | None]] = []
    if entry["format"] == "csv":
        lines = text.splitlines()  # no field holds a newline, so one line is one record
        header = [
            CSV_TO_JSON.get(c.lower(), c.lower())
            for c in next(csv.reader(lines[:1], delimiter=";"))
        ]
        for line, raw in enumerate(lines[1:], start=2):
            values = next(csv.reader([raw], delimiter=";"))
            fields: dict[str, Any] | None = None
            if len(values) == len(header):
                fields = {k: v for k, v in zip(header, values, strict=True) if v != ""}
                for key, mapping in CODES.items():
                    if key in fields:
                        fields[key] = mapping.get(fields[key], fields[key])
            parsed.append((line, raw, fields))
    else:
        for line, raw in enumerate(text.splitlines(), start=1):
            try:
                obj = json.loads(raw)
            except ValueError:
                obj = None
            fields = {k: v for k, v in obj.items() if v != ""} if isinstance(obj, dict) else None
            parsed.append((line, raw, fields))
    name, operator, kind = entry["name"], entry["operator"], entry["kind"]
    return [
        Row(name, operator, kind, line, raw, fields, rejects.get((name, line)))
        for line, raw, fields in parsed
    ]


@dataclass
class Generated:
    folder: Path
    manifest: dict[str, Any]
    rows: list[Row]

    def valid(self) -> list[Row]:
        return [r for r in self.rows if r.reason is None]

    def entry(self, **match: Any) -> dict[str, Any]:
        return next(e for e in self.manifest["files"] if match.items() <= e.items())


def load(folder: Path) -> Generated:
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    rejects = {(r["file"], r["line"]): r["reason"] for r in manifest["rejects"]}
    rows = [row for e in manifest["files"] for row in read_rows(folder, e, rejects)]
    return Generated(folder, manifest, rows)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    folder = tmp_path_factory.mktemp("small")
    generate(listings=3000, operators=3, seed=11, out=folder)
    return load(folder)


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    folder = tmp_path_factory.mktemp("large")
    generate(listings=20_000, operators=4, seed=5, out=folder)
    return load(folder)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate(listings=1500, operators=3, seed=seed, out=tmp_path / name)
    a, b, c = (folder_bytes(tmp_path / n) for n in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[name] != c[name] for name in a if not name.endswith(".sha256"))


def test_summary_matches_what_was_written(tmp_path: Path) -> None:
    summary = generate(listings=2500, operators=3, seed=1, out=tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text("utf-8"))
    assert summary.files == tuple(e["name"] for e in manifest["files"])
    assert summary.rows == sum(e["rows"] for e in manifest["files"])
    assert summary.rejects == len(manifest["rejects"])
    assert summary.listings == manifest["listings"] == 2500


def test_file_names_follow_the_contract(small: Generated) -> None:
    names_on_disk = {p.name for p in small.folder.iterdir()}
    files = [e["name"] for e in small.manifest["files"]]
    sidecars = {f"{e['name']}.sha256" for e in small.manifest["files"] if e["sidecar"]}
    assert all(FILE_NAME.match(name) for name in files)
    assert names_on_disk == {*files, *sidecars, "manifest.json"}
    assert [e["kind"] for e in small.manifest["files"]] == ["full", "full", "full", "delta"]
    assert [e["format"] for e in small.manifest["files"]] == ["csv", "csv", "jsonl", "csv"]
    assert [e["gzip"] for e in small.manifest["files"]] == [False, False, False, True]
    assert all(e["name"].endswith(".gz") == e["gzip"] for e in small.manifest["files"])
    assert small.manifest["operators"] == ["telenor", "telia", "ice"]


def test_rows_in_manifest_count_data_lines(small: Generated) -> None:
    per_file = Counter(r.file for r in small.rows)
    assert all(per_file[e["name"]] == e["rows"] for e in small.manifest["files"])


def test_iso_8859_1_file_needs_its_encoding(small: Generated) -> None:
    data = (small.folder / small.entry(encoding="iso-8859-1")["name"]).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    text = data.decode("latin-1")
    assert {"æ", "ø", "å"} <= set(text)


def test_utf8_file_starts_with_a_bom(small: Generated) -> None:
    data = (small.folder / small.entry(encoding="utf-8-sig", kind="full")["name"]).read_bytes()
    assert data.startswith(codecs.BOM_UTF8)
    assert {"æ", "ø", "å"} <= set(data.decode("utf-8-sig"))


def test_every_name_encodes_as_iso_8859_1() -> None:
    words = [*names.MALE_FIRST_NAMES, *names.FEMALE_FIRST_NAMES, *names.LAST_NAMES]
    words += [*names.STREETS, *names.BUSINESS_WORDS, *names.TRADES, *names.BUSINESS_TEMPLATES]
    words += [p.city for p in names.PLACES]
    for word in words:
        word.encode("iso-8859-1")
    assert len(names.PLACES) >= 40
    assert all(re.fullmatch(r"\d{4}", code) for p in names.PLACES for code in p.postcodes)


def test_sidecars_match_the_file_bytes(small: Generated) -> None:
    with_sidecar = [e for e in small.manifest["files"] if e["sidecar"]]
    assert 0 < len(with_sidecar) < len(small.manifest["files"])
    for entry in with_sidecar:
        digest = hashlib.sha256((small.folder / entry["name"]).read_bytes()).hexdigest()
        sidecar = (small.folder / f"{entry['name']}.sha256").read_text("ascii")
        assert sidecar == f"{digest}  {entry['name']}\n"


def test_csv_headers_vary_by_operator(small: Generated) -> None:
    headers = {}
    for entry in small.manifest["files"]:
        if entry["format"] == "csv" and entry["kind"] == "full":
            first = (small.folder / entry["name"]).read_bytes().decode(entry["encoding"])
            headers[entry["operator"]] = first.splitlines()[0].split(";")
    assert "kundenr" in headers["telenor"]
    assert "NUMMER" in headers["telia"]
    assert [h.lower() for h in headers["telia"]] != [
        h for h in headers["telenor"] if h != "kundenr"
    ]


def test_every_full_file_has_every_reject_reason_of_its_format(small: Generated) -> None:
    by_file: defaultdict[str, set[str]] = defaultdict(set)
    for reject in small.manifest["rejects"]:
        by_file[reject["file"]].add(reject["reason"])
    for entry in small.manifest["files"]:
        if entry["kind"] == "full":
            assert by_file[entry["name"]] == REASONS[entry["format"]], entry["name"]


@pytest.mark.parametrize("data", ["small", "large"])
def test_reject_share_stays_well_below_the_bound(data: str, request: pytest.FixtureRequest) -> None:
    generated: Generated = request.getfixturevalue(data)
    counts = Counter(r["file"] for r in generated.manifest["rejects"])
    for entry in generated.manifest["files"]:
        assert counts[entry["name"]] / entry["rows"] < 0.05
    if data == "large":
        full = [e for e in generated.manifest["files"] if e["kind"] == "full"]
        assert all(0.012 < counts[e["name"]] / e["rows"] < 0.025 for e in full)


@pytest.mark.parametrize(
    ("listings", "operators", "seed"),
    [(10, 1, 1), (10, 3, 2), (50, 2, 3), (50, 3, 4), (500, 2, 3), (500, 3, 5), (500, 5, 0)],
)
def test_small_sets_ingest_as_their_manifest_says(
    tmp_path: Path, listings: int, operators: int, seed: int
) -> None:
    # The real ingest at its default 5 % reject bound: no file held back or rejected, whatever
    # the set's size, and the snapshot serves exactly the manifest's unreserved numbers.
    generate(listings=listings, operators=operators, seed=seed, out=tmp_path / "in")
    manifest = json.loads((tmp_path / "in" / "manifest.json").read_text("utf-8"))
    assert len(manifest["files"]) == operators + 1
    counts = Counter(r["file"] for r in manifest["rejects"])
    assert all(counts[e["name"]] <= 0.03 * e["rows"] for e in manifest["files"])
    settings = make_settings(tmp_path / "var")
    report = ingest([tmp_path / "in"], settings)
    statuses = {f.batch.file: f.batch.status for f in report.files}
    assert statuses == {e["name"]: "applied" for e in manifest["files"]}
    assert report.ok and report.published is not None
    reported = {(f.batch.file, r.line, r.reason) for f in report.files for r in f.rejects}
    assert reported == {(r["file"], r["line"], r["reason"]) for r in manifest["rejects"]}
    pointer = read_pointer(settings.snapshots_path)
    assert pointer is not None
    table = Snapshot(snapshot_path(settings.snapshots_path, pointer)).table()
    served = table.column("number").to_pylist()
    expected = {n for n, v in manifest["numbers"].items() if v["reservation"] != "reserved"}
    assert len(served) == len(expected) and set(served) == expected


def test_fewer_listings_than_operators_write_no_empty_file(tmp_path: Path) -> None:
    generate(listings=2, operators=4, seed=1, out=tmp_path / "in")
    manifest = json.loads((tmp_path / "in" / "manifest.json").read_text("utf-8"))
    assert all(e["rows"] > 0 for e in manifest["files"])
    assert len({e["operator"] for e in manifest["files"] if e["kind"] == "full"}) == 2
    report = ingest([tmp_path / "in"], make_settings(tmp_path / "var"))
    assert report.ok and {f.batch.status for f in report.files} == {"applied"}


def test_rejected_rows_carry_their_defect_and_never_a_reservation(small: Generated) -> None:
    rejected = [r for r in small.rows if r.reason]
    assert len(rejected) == len(small.manifest["rejects"])
    for row in rejected:
        fields = row.fields or {}
        assert fields.get("reservation") != "reserved", row
        reason = row.reason or ""
        if reason in ("bad_row", "bad_json"):
            assert row.fields is None, row
            continue
        assert row.fields is not None, row
        number = str(fields.get("number", ""))
        if reason == "number.letters":  # phonenumbers would read letters as a keypad would
            assert re.search("[A-Z]", number), row
        elif reason.startswith("number."):
            valid = False
            if number:
                try:
                    parsed = phonenumbers.parse(number, "NO")
                    valid = parsed.country_code == 47 and phonenumbers.is_valid_number(parsed)
                except phonenumbers.NumberParseException:
                    valid = False
            assert not valid, row
        else:
            assert re.fullmatch(r"\d{8}", national(number)), row
        expected_missing = {
            "missing.first_name": "first_name",
            "missing.last_name": "last_name",
            "missing.business_name": "business_name",
            "missing.valid_from": "valid_from",
            "number.empty": "number",
        }
        if reason in expected_missing:
            assert expected_missing[reason] not in fields, row
        if reason == "bad_org_number":
            assert not orgnr_ok(fields["org_number"]), row
        if reason == "bad_postcode":
            assert not re.fullmatch(r"\d{4}", fields["postcode"]), row
        if reason.endswith("marketing_reserved"):
            assert isinstance(fields["marketing_reserved"], str), row


def test_valid_numbers_are_valid_norwegian_numbers(large: Generated) -> None:
    numbers = sorted(large.manifest["numbers"])
    for number in random.Random(0).sample(numbers, 1500):
        parsed = phonenumbers.parse(number, "NO")
        assert phonenumbers.is_valid_number(parsed), number
        assert phonenumbers.region_code_for_number(parsed) == "NO"
    mobile = sum(n[0] in "49" for n in numbers) / len(numbers)
    assert 0.60 < mobile < 0.70


def test_written_forms_normalize_to_the_planned_numbers(large: Generated) -> None:
    seen = {national(str(r.fields["number"])) for r in large.valid() if r.fields}
    assert set(large.manifest["numbers"]) <= seen
    patterns = {
        "plain": r"\d{8}",
        "pairs": r"\d\d \d\d \d\d \d\d",
        "mobile groups": r"[49]\d\d \d\d \d{3}",
        "+47 space": r"\+47 \d{8}",
        "0047": r"0047\d{8}",
        "+47 dashes": r"\+47-\d{3}-\d\d-\d{3}",
    }
    forms: Counter[str] = Counter()
    for row in large.valid():
        written = str((row.fields or {})["number"])
        forms[next(k for k, pattern in patterns.items() if re.fullmatch(pattern, written))] += 1
    assert forms.keys() == patterns.keys()
    assert forms["plain"] > 0.6 * forms.total()


def test_fixed_numbers_belong_to_the_subscribers_area(large: Generated) -> None:
    areas = {p.city: p.area_codes for p in names.PLACES}
    checked = 0
    for row in large.valid():
        fields = row.fields or {}
        number = national(str(fields["number"]))
        if number[0] not in "49" and "city" in fields:
            assert number[:2] in areas[fields["city"]], row
            checked += 1
    assert checked > 1000


def test_business_rows_have_valid_org_numbers(large: Generated) -> None:
    businesses = [r.fields for r in large.valid() if r.fields and r.fields["kind"] == "business"]
    with_orgnr = [f["org_number"] for f in businesses if "org_number" in f]
    assert len(with_orgnr) > 0.8 * len(businesses)
    assert all(orgnr_ok(orgnr) for orgnr in with_orgnr)
    assert not any("birth_date" in f for f in businesses)


def test_shares_are_roughly_as_specified(large: Generated) -> None:
    final = large.manifest["numbers"].values()
    reservations = Counter(v["reservation"] for v in final)
    kinds = Counter(v["kind"] for v in final)
    total = len(final)
    assert 0.09 < reservations["reserved"] / total < 0.15
    assert 0.03 < reservations["address_hidden"] / total < 0.07
    assert 0.75 < kinds["person"] / total < 0.85
    rows = [r.fields for r in large.valid() if r.fields and r.kind == "full"]
    marketing = sum(f.get("marketing_reserved") is True for f in rows) / len(rows)
    assert 0.25 < marketing < 0.35
    persons = [f for f in rows if f["kind"] == "person"]
    births = [f["birth_date"] for f in persons if "birth_date" in f]
    assert 0.85 < len(births) / len(persons) < 0.95
    assert all("1930-01-01" <= b <= "2008-12-31" for b in births)


def test_reserved_rows_are_delivered_anyway_with_names_and_addresses(small: Generated) -> None:
    reserved = [
        r.fields for r in small.valid() if r.fields and r.fields["reservation"] == "reserved"
    ]
    assert len(reserved) > 0.08 * len(small.manifest["numbers"])
    assert all("first_name" in f or "business_name" in f for f in reserved)
    assert sum("street" in f for f in reserved) > 0.7 * len(reserved)


def test_direct_dial_ranges_are_consecutive_numbers_of_one_business(large: Generated) -> None:
    by_name: defaultdict[tuple[str, str | None], set[int]] = defaultdict(set)
    for row in large.valid():
        fields = row.fields or {}
        if row.kind == "full" and fields.get("kind") == "business":
            by_name[(fields["business_name"], fields.get("org_number"))].add(
                int(national(str(fields["number"])))
            )
    runs = [sorted(n) for n in by_name.values() if len(n) >= 3]
    assert any(run[-1] - run[0] == len(run) - 1 for run in runs)


def valid_from(fields: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(fields["valid_from"])


def better(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether record a beats b: newest valid_from, then the more private."""
    key_a = (valid_from(a), PRIVACY[a["reservation"]])
    return key_a > (valid_from(b), PRIVACY[b["reservation"]])


@pytest.mark.parametrize("data", ["small", "large"])
def test_manifest_is_the_contract_rules_applied_to_the_files(
    data: str, request: pytest.FixtureRequest
) -> None:
    generated: Generated = request.getfixturevalue(data)
    per_operator: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    deliveries: dict[str, set[str]] = defaultdict(set)
    duplicates: Counter[tuple[str, str]] = Counter()
    dates: dict[str, set[str]] = defaultdict(set)
    for row in generated.valid():
        assert row.fields is not None
        number, held = national(str(row.fields["number"])), per_operator[row.operator]
        if row.kind == "full":
            deliveries[number].add(row.operator)
            duplicates[(row.file, number)] += 1
            dates[number].add(row.fields["valid_from"])
        if row.fields.get("action") == "delete":
            held.pop(number, None)
        elif number not in held or row.kind == "delta" or better(row.fields, held[number]):
            held[number] = row.fields
    expected: dict[str, tuple[str, dict[str, Any]]] = {}
    for operator, held in per_operator.items():
        for number, fields in held.items():
            if number not in expected or better(fields, expected[number][1]):
                expected[number] = (operator, fields)
    manifest = generated.manifest["numbers"]
    assert expected.keys() == manifest.keys()
    for number, (operator, fields) in expected.items():
        ported = len(deliveries[number]) > 1
        want = {"operator": operator, "reservation": fields["reservation"]}
        want |= {"kind": fields["kind"], "ported": ported}
        assert manifest[number] == want, number
    moved = [n for n, v in manifest.items() if v["ported"]]
    assert all(len(deliveries[n]) == 2 for n in moved)
    assert 0.015 < len(moved) / len(manifest) < 0.025
    assert any(manifest[n]["reservation"] == "reserved" for n in moved)
    assert any(len(dates[n]) == 1 for n in moved), "no porting tie"
    assert sum(count > 1 for count in duplicates.values()) >= 3 * len(per_operator)


def test_delta_has_upserts_deletes_and_a_new_reservation(small: Generated) -> None:
    delta = [r.fields for r in small.rows if r.kind == "delta" and r.fields]
    actions = Counter(f["action"] for f in delta)
    assert actions["upsert"] >= 3
    assert actions["delete"] >= 2
    deleted = {national(f["number"]) for f in delta if f["action"] == "delete"}
    assert not deleted & small.manifest["numbers"].keys()
    reserved = [f for f in delta if f["action"] == "upsert" and f["reservation"] == "reserved"]
    assert reserved
    for fields in reserved:
        assert small.manifest["numbers"][national(fields["number"])]["reservation"] == "reserved"
    stamp = re.compile(r"_(\d{8}T\d{6})\.")
    full = stamp.findall(small.entry(operator="telenor", kind="full")["name"])
    assert stamp.findall(small.entry(kind="delta")["name"]) > full


def test_regenerating_with_fewer_operators_removes_stale_files(tmp_path: Path) -> None:
    generate(listings=1500, operators=3, seed=1, out=tmp_path)
    generate(listings=1500, operators=2, seed=1, out=tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text("utf-8"))
    expected = {e["name"] for e in manifest["files"]}
    expected |= {f"{e['name']}.sha256" for e in manifest["files"] if e["sidecar"]}
    assert {p.name for p in tmp_path.iterdir()} == expected | {"manifest.json"}


def test_committed_demo_matches_the_generator(tmp_path: Path) -> None:
    generate(listings=3000, operators=3, seed=2026, out=tmp_path)
    fresh, committed = folder_bytes(tmp_path), folder_bytes(DEMO)
    assert fresh.keys() == committed.keys()
    for name, data in fresh.items():
        if name.endswith(".gz"):  # compressed bytes may differ between zlib builds
            assert gzip.decompress(data) == gzip.decompress(committed[name]), name
        elif not name.endswith(".gz.sha256"):
            assert data == committed[name], name


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        generate(listings=0, operators=3, seed=1, out=tmp_path)
    with pytest.raises(ValueError, match="at least 1"):
        generate(listings=10, operators=0, seed=1, out=tmp_path)


def test_a_generation_stopped_part_way_leaves_files_its_next_run_takes_for_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The manifest was written last: a run stopped part-way left operator files no
    # manifest named, and every run after it refused the folder as holding others' files.
    from lookup.fixtures import generator  # noqa: PLC0415
    from lookup.fixtures.render import foreign_files  # noqa: PLC0415

    def stopped(*args: object, **kwargs: object) -> bytes:
        raise KeyboardInterrupt

    out = tmp_path / "fx"
    with monkeypatch.context() as patch:
        patch.setattr(generator, "render_jsonl", stopped)
        with pytest.raises(KeyboardInterrupt):
            generate(50, 3, 1, out)
    assert [p.name for p in out.iterdir() if p.name != "manifest.json"]  # some were written
    assert foreign_files(out) == []
    summary = generate(50, 3, 1, out)
    assert sorted(p.name for p in out.iterdir() if not p.name.endswith(".sha256")) == sorted(
        [*summary.files, "manifest.json"]
    )
