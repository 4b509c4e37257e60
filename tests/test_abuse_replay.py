"""`lookup abuse replay`: the file contract other tools rely on."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lookup.abuse.detectors import Engine
from lookup.abuse.replay import BadEventFile, decode_findings, read_events, replay
from tests.test_abuse_detectors import T0, alternating, event
from tests.test_cli import lookup


def write_events(path: Path, count: int = 120) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [
        {
            "ts": (T0 + timedelta(seconds=i)).isoformat() + "Z",
            "account": "acme",
            "key": "k1",
            "ip": "10.0.0.1",
            "number": f"+47{22202000 + i}",
            "outcome": alternating(i),
        }
        for i in range(count)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return rows


def test_replay_writes_one_finding_per_line_in_the_contract_shape(tmp_path: Path) -> None:
    write_events(tmp_path / "events.jsonl")
    result = lookup(
        "abuse",
        "replay",
        str(tmp_path / "events.jsonl"),
        "--out",
        str(tmp_path / "findings.jsonl"),
        data_dir=tmp_path / "var",
    )
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "findings.jsonl").read_text().splitlines()
    assert lines
    first = json.loads(lines[0])
    assert set(first) == {"account", "kind", "action", "ts", "events_seen", "evidence"}
    assert first["kind"] in {
        "sequential_run",
        "block_coverage",
        "miss_ratio",
        "distinct_velocity",
        "distributed_scan",
    }
    assert first["action"] in {"flag", "throttle", "suspend"}
    assert any(json.loads(line)["action"] == "suspend" for line in lines)


def test_replay_uses_the_live_detector_code(tmp_path: Path) -> None:
    rows = write_events(tmp_path / "events.jsonl")
    replay(tmp_path / "events.jsonl", tmp_path / "findings.jsonl")
    live = Engine()
    expected = [
        f for i in range(len(rows)) for f in live.observe(event(22202000 + i, i, alternating(i)))
    ]
    assert decode_findings(tmp_path / "findings.jsonl") == expected


def test_parquet_events_give_the_same_findings(tmp_path: Path) -> None:
    rows = write_events(tmp_path / "events.jsonl")
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, tmp_path / "events.parquet")
    replay(tmp_path / "events.jsonl", tmp_path / "a.jsonl")
    replay(tmp_path / "events.parquet", tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "events.jsonl:3: not a JSON object"),
        (
            '{"ts": "2026-11-02T09:00:00", "account": "a", "key": "k", "ip": "i",'
            ' "number": "+4722202400"}',
            "events.jsonl:3: missing outcome",
        ),
        (
            '{"ts": "yesterday", "account": "a", "key": "k", "ip": "i", "number": "+4722202400",'
            ' "outcome": "hit"}',
            "events.jsonl:3:",
        ),
        (
            '{"ts": "2026-11-02T09:00:05", "account": "a", "key": "k", "ip": "i",'
            ' "number": "+4722202400", "outcome": "maybe"}',
            "events.jsonl:3:",
        ),
        (
            '{"ts": "2020-01-01T00:00:00", "account": "a", "key": "k", "ip": "i",'
            ' "number": "+4722202400", "outcome": "hit"}',
            "not sorted by time",
        ),
        *(
            (
                f'{{"ts": "2026-11-02T09:00:05", "account": "a", "key": "k", "ip": "i",'
                f' "number": "{number}", "outcome": "miss"}}',
                "events.jsonl:3: number",
            )
            # A scan written in any of these forms would otherwise replay clean.
            for number in ("22200100", "4722200100", "+47 22200100", "+47222001OO")
        ),
    ],
)
def test_malformed_event_files_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    write_events(tmp_path / "events.jsonl", count=2)
    with (tmp_path / "events.jsonl").open("a") as handle:
        handle.write(line + "\n")
    with pytest.raises(BadEventFile) as failure:
        list(read_events(tmp_path / "events.jsonl"))
    assert message in str(failure.value)


def test_cli_reports_a_bad_file_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "events.jsonl").write_text("{broken\n")
    result = lookup(
        "abuse",
        "replay",
        str(tmp_path / "events.jsonl"),
        "--out",
        str(tmp_path / "f.jsonl"),
        data_dir=tmp_path / "var",
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "events.jsonl:1" in result.stderr
    assert not (tmp_path / "f.jsonl").exists()
    assert list(tmp_path.glob("f.jsonl*")) == []  # no half-written file left behind either


def test_replay_reads_parquet_whatever_its_name_and_refuses_a_missing_folder(
    tmp_path: Path,
) -> None:
    rows = write_events(tmp_path / "events.jsonl")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "EVENTS.PARQUET")
    replay(tmp_path / "events.jsonl", tmp_path / "a.jsonl")
    replay(tmp_path / "EVENTS.PARQUET", tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    with pytest.raises(BadEventFile, match="does not exist"):
        replay(tmp_path / "events.jsonl", tmp_path / "missing" / "f.jsonl")


def test_findings_round_trip(tmp_path: Path) -> None:
    write_events(tmp_path / "events.jsonl")
    replay(tmp_path / "events.jsonl", tmp_path / "findings.jsonl")
    for finding in decode_findings(tmp_path / "findings.jsonl"):
        assert msgspec.json.decode(msgspec.json.encode(finding))["account"] == "acme"


def test_a_byte_order_mark_is_read_past_and_a_folder_is_named(tmp_path: Path) -> None:
    write_events(tmp_path / "events.jsonl")
    marked = tmp_path / "marked.jsonl"
    marked.write_bytes(b"\xef\xbb\xbf" + (tmp_path / "events.jsonl").read_bytes())
    replay(tmp_path / "events.jsonl", tmp_path / "a.jsonl")
    replay(marked, tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    folder = lookup(
        "abuse", "replay", str(tmp_path), "--out", str(tmp_path / "c.jsonl"), data_dir=tmp_path
    )
    assert folder.returncode == 2
    assert folder.stderr == f"lookup: {tmp_path} is a folder: give the events file itself\n"
