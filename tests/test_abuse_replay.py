"""`lookup abuse replay`: the file contract other tools rely on."""

from __future__ import annotations

import gzip
import json
import os
import signal
import stat
import subprocess
import sys
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lookup.abuse.detectors import Engine
from lookup.abuse.events import EPOCH
from lookup.abuse.replay import BadEventFile, decode_findings, read_events, replay
from lookup.errors import BadOutputPath
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


def test_columns_outside_the_contract_are_left_unread(tmp_path: Path) -> None:
    # A lookup log's export carries `held` (null in rows logged before it was): no column
    # of the replay's, in JSON Lines as in Parquet.
    rows = write_events(tmp_path / "events.jsonl")
    replay(tmp_path / "events.jsonl", tmp_path / "plain.jsonl")
    for held in (None, "no", True):
        extra = [{**row, "held": held, "note": [1, 2]} for row in rows]
        (tmp_path / "extra.jsonl").write_text("".join(json.dumps(row) + "\n" for row in extra))
        replay(tmp_path / "extra.jsonl", tmp_path / "extra-findings.jsonl")
        plain = (tmp_path / "plain.jsonl").read_bytes()
        assert (tmp_path / "extra-findings.jsonl").read_bytes() == plain, held


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
    with pytest.raises(BadOutputPath, match="does not exist"):
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


# --- --out: never the input, never a special file, never half a file ---------------------------


def _replay_cli(events: Path, out: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return lookup("abuse", "replay", str(events), "--out", out, data_dir=tmp_path / "var")


def _start_replay(events: Path, out: Path, tmp_path: Path) -> subprocess.Popen[str]:
    # As from a terminal: a test run started in the background of a shell script inherits
    # SIGINT ignored, which its children keep, and Python then ignores Ctrl-C.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # And SIGHUP as from a terminal: a run under nohup passes it on ignored (the child
    # takes the disposition it starts with; this process's is given back).
    hangup = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "lookup.cli", "abuse", "replay", str(events), "--out", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "LOOKUP_DATA_DIR": str(tmp_path / "var")},
        )
    finally:
        signal.signal(signal.SIGHUP, hangup)


def _one_line(stderr: str) -> str:
    assert stderr.count("\n") == 1 and stderr.startswith("lookup"), stderr
    assert "unexpected" not in stderr and ".tmp" not in stderr, stderr
    return stderr


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
def test_out_that_is_the_events_file_is_refused_and_the_input_kept(
    tmp_path: Path, link: str
) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events)
    before = events.read_bytes()
    out = events if link == "same" else tmp_path / "out.jsonl"
    if link == "symlink":
        out.symlink_to(events)
    elif link == "hardlink":
        out.hardlink_to(events)
    result = _replay_cli(events, str(out), tmp_path)
    assert result.returncode == 1
    assert _one_line(result.stderr) == (
        f"lookup: {out} is the events file {events}: write the findings elsewhere\n"
    )
    assert events.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "var") == sorted(
        {"events.jsonl", out.name}
    )


def test_an_events_file_named_like_a_temporary_file_is_read_not_wiped(tmp_path: Path) -> None:
    write_events(tmp_path / "events.jsonl")
    replay(tmp_path / "events.jsonl", tmp_path / "expected.jsonl")
    events = tmp_path / "findings.jsonl.tmp"  # the name the temporary file used to have
    events.write_bytes((tmp_path / "events.jsonl").read_bytes())
    assert replay(events, tmp_path / "findings.jsonl") > 0
    assert events.read_bytes() == (tmp_path / "events.jsonl").read_bytes()
    assert (tmp_path / "findings.jsonl").read_bytes() == (tmp_path / "expected.jsonl").read_bytes()


def test_concurrent_replays_to_one_out_each_write_it_whole(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events, count=4_000)
    replay(events, tmp_path / "expected.jsonl")
    out = tmp_path / "findings.jsonl"
    runs = [_start_replay(events, out, tmp_path) for _ in range(2)]
    results = [(run.communicate(timeout=120)[1], run.returncode) for run in runs]
    assert results == [("", 0), ("", 0)]
    assert out.read_bytes() == (tmp_path / "expected.jsonl").read_bytes()
    # A file of our own, yet as readable to other tools as one `open` creates.
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "events.jsonl",
        "expected.jsonl",
        "findings.jsonl",
    ]


@pytest.mark.parametrize(
    ("signum", "status"),
    [
        (signal.SIGINT, 130),
        (signal.SIGTERM, 128 + signal.SIGTERM),
        (signal.SIGHUP, 128 + signal.SIGHUP),  # its terminal closed
    ],
)
def test_an_interrupted_replay_leaves_neither_its_temporary_file_nor_old_findings(
    tmp_path: Path, signum: int, status: int
) -> None:
    events = tmp_path / "events.jsonl"
    write_events(events, count=60_000)
    out = tmp_path / "findings.jsonl"
    out.write_text('{"account": "old"}\n')
    run = _start_replay(events, out, tmp_path)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("*.tmp")):
        assert run.poll() is None and time.monotonic() < deadline, "no temporary file seen"
        time.sleep(0.01)
    run.send_signal(signum)
    try:
        _, stderr = run.communicate(timeout=60)
    finally:
        run.kill()  # not left running (a long replay) if it did not stop
    assert run.returncode == status
    # Stopped, it said nothing: a script's log showed no reason for the missing findings.
    assert stderr == "lookup: interrupted: no findings written\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl"]


def test_a_replay_under_nohup_outlives_its_terminal(tmp_path: Path) -> None:
    # SIGHUP ignored (nohup): a closed terminal must not stop it, nor delete its findings.
    events = tmp_path / "events.jsonl"
    write_events(events, count=5_000)
    out = tmp_path / "findings.jsonl"
    replay = ["abuse", "replay", str(events), "--out", str(out)]
    run = subprocess.Popen(
        ["nohup", sys.executable, "-m", "lookup.cli", *replay],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LOOKUP_DATA_DIR": str(tmp_path / "var")},
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("*.tmp")):
        assert run.poll() is None and time.monotonic() < deadline, "no temporary file seen"
        time.sleep(0.01)
    run.send_signal(signal.SIGHUP)
    stdout, _ = run.communicate(timeout=120)
    assert run.returncode == 0 and out.exists(), stdout


def test_a_stop_the_moment_the_temporary_file_is_made_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A SIGTERM under load landed between the file's making and the cleanup's `try`:
    # the temporary file and the old findings stayed, though it said none were written.
    from lookup.abuse import replay as module  # noqa: PLC0415

    made = module._create

    def made_then_stopped(tmp: Path, out: Path) -> int:
        os.close(made(tmp, out))
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "_create", made_then_stopped)
    write_events(tmp_path / "events.jsonl", count=5)
    out = tmp_path / "findings.jsonl"
    out.write_text('{"account": "old"}\n')
    with pytest.raises(KeyboardInterrupt):
        replay(tmp_path / "events.jsonl", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl"]


def test_a_failed_replay_leaves_the_findings_another_replay_wrote_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two replays to one --out: the one that failed removed the other's whole output.
    from lookup.abuse import replay as module  # noqa: PLC0415

    out = tmp_path / "findings.jsonl"
    out.write_text('{"account": "old"}\n')
    other = tmp_path / "other.tmp"

    def other_replay_wins_then_this_one_fails(*args: object) -> int:
        other.write_text('{"account": "other run"}\n')
        other.replace(out)
        raise BadEventFile("events.jsonl:6: not a JSON object")

    monkeypatch.setattr(module, "_write_findings", other_replay_wins_then_this_one_fails)
    write_events(tmp_path / "events.jsonl", count=5)
    with pytest.raises(BadEventFile):
        replay(tmp_path / "events.jsonl", out)
    assert out.read_text() == '{"account": "other run"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "findings.jsonl"]


def test_a_failed_replay_removes_an_older_findings_file(tmp_path: Path) -> None:
    write_events(tmp_path / "events.jsonl", count=5)
    with (tmp_path / "events.jsonl").open("a") as handle:
        handle.write("{broken\n")
    out = tmp_path / "findings.jsonl"
    out.write_text('{"account": "old"}\n')
    result = _replay_cli(tmp_path / "events.jsonl", str(out), tmp_path)
    assert result.returncode == 1
    assert "events.jsonl:6: not a JSON object" in _one_line(result.stderr)
    assert not out.exists()


def test_odd_out_paths_are_refused_in_one_line_naming_them(tmp_path: Path) -> None:
    write_events(tmp_path / "events.jsonl", count=5)
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "pipe")  # stands for a device: /dev/full was replaced once
    cases = {
        str(tmp_path / "folder"): f"{tmp_path / 'folder'} is a folder",
        str(tmp_path / "pipe"): f"{tmp_path / 'pipe'} is not a regular file",
        # Standard output, a pipe here: its link resolves to a name that does not exist.
        "/dev/stdout": "/dev/stdout is not a regular file",
        "/proc/findings.jsonl": "/proc/findings.jsonl: cannot create a file in /proc",
        "": "argument --out: '' is not a file name",
    }
    for out, message in cases.items():
        result = _replay_cli(tmp_path / "events.jsonl", out, tmp_path)
        assert result.returncode != 0, out
        assert message in _one_line(result.stderr)
    assert (tmp_path / "folder").is_dir() and not any((tmp_path / "folder").iterdir())
    assert stat.S_ISFIFO((tmp_path / "pipe").lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "folder", "pipe"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_an_unwritable_folder_is_named_not_the_temporary_file(tmp_path: Path) -> None:
    write_events(tmp_path / "events.jsonl", count=5)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = _replay_cli(tmp_path / "events.jsonl", str(locked / "f.jsonl"), tmp_path)
    assert result.returncode == 1
    assert _one_line(result.stderr).startswith(
        f"lookup: {locked / 'f.jsonl'}: cannot create a file in {locked}: Permission denied"
    )


def test_out_as_a_symlink_writes_the_file_it_points_to(tmp_path: Path) -> None:
    write_events(tmp_path / "events.jsonl")
    replay(tmp_path / "events.jsonl", tmp_path / "expected.jsonl")
    (tmp_path / "shared").mkdir()
    target = tmp_path / "shared" / "findings.jsonl"
    target.write_text('{"account": "old"}\n')
    link = tmp_path / "latest.jsonl"
    link.symlink_to(target)
    result = _replay_cli(tmp_path / "events.jsonl", str(link), tmp_path)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and link.resolve() == target
    assert target.read_bytes() == (tmp_path / "expected.jsonl").read_bytes()
    assert [p.name for p in (tmp_path / "shared").iterdir()] == ["findings.jsonl"]


# --- EVENTS: what the contract says, nothing looser ---------------------------------------------


def _appended(tmp_path: Path, *rows: dict[str, object]) -> Path:
    events = tmp_path / "events.jsonl"
    write_events(events, count=2)
    with events.open("a") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    return events


def _row(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "ts": "2026-11-02T09:00:05",
        "account": "a",
        "key": "k",
        "ip": "i",
        "number": "+4722202400",
        "outcome": "miss",
    }
    return {**base, **fields}


@pytest.mark.parametrize("outcome", ["hit", "miss"])
@pytest.mark.parametrize(
    "number", ["+4622300000", "+474722300000", "+47223000011234", "+4712345678", "+471881"]
)
def test_numbers_outside_the_norwegian_plan_are_refused(
    tmp_path: Path, number: str, outcome: str
) -> None:
    events = _appended(tmp_path, _row(number=number, outcome=outcome))
    with pytest.raises(BadEventFile) as failure:
        list(read_events(events))
    # Written as E.164 but in no number series, it is named as such, not as a bad form.
    reason = (
        "is not in the Norwegian numbering plan (no such number series)"
        if number == "+4712345678"
        else "is not a Norwegian number (E.164, +47 and 8 digits, or 5 for short numbers)"
    )
    assert str(failure.value) == f"events.jsonl:3: number {number!r} {reason}"


@pytest.mark.parametrize("endpoint", ["Numbers", "lookup", ""])
def test_an_unknown_endpoint_is_refused_not_replayed_as_no_lookup(
    tmp_path: Path, endpoint: str
) -> None:
    # Only a `numbers` event counts a number: a scan whose column said "Numbers" replayed clean.
    events = _appended(tmp_path, _row(endpoint=endpoint))
    with pytest.raises(BadEventFile) as failure:
        list(read_events(events))
    assert str(failure.value).startswith("events.jsonl:3: ") and "endpoint" in str(failure.value)


def test_a_null_endpoint_is_the_default_and_a_wrong_value_is_said_in_words(
    tmp_path: Path,
) -> None:
    # Optional columns are often written as nulls (a Parquet column of them, too).
    events = _appended(tmp_path, _row(endpoint=None))
    assert [event.endpoint for event in read_events(events)][-1] == "numbers"
    for row, says in [
        (_row(outcome="HIT"), "outcome must be hit, miss or invalid, not 'HIT'"),
        (_row(endpoint="lookup"), "endpoint must be numbers or search, not 'lookup'"),
        (_row(account=5), "account must be text, not 5"),
        # Any length in the file, a line's length in the message.
        (_row(account=list(range(100_000))), "account must be text, not [0, 1, 2, 3, 4"),
    ]:
        with pytest.raises(BadEventFile) as failure:
            list(read_events(_appended(tmp_path, row)))
        assert str(failure.value).startswith(f"events.jsonl:3: {says}")
        assert len(str(failure.value)) < 200


@pytest.mark.parametrize("events", ["missing.jsonl", "."])
def test_a_replay_that_cannot_start_removes_an_older_findings_file(
    tmp_path: Path, events: str
) -> None:
    out = tmp_path / "findings.jsonl"
    out.write_text('{"account": "old"}\n')
    result = _replay_cli(tmp_path / events, str(out), tmp_path)
    assert result.returncode == 2 and not out.exists()


def test_invalid_rows_keep_any_text_and_short_numbers_count(tmp_path: Path) -> None:
    events = _appended(
        tmp_path,
        _row(number="", outcome="invalid"),
        _row(number="+4622300000", outcome="invalid"),
        _row(number="ring meg 22 20", outcome="invalid"),
        _row(number="+4702400", outcome="hit"),
    )
    read = list(read_events(events))
    assert [e.number for e in read[2:]] == ["", "+4622300000", "ring meg 22 20", "+4702400"]
    assert [e.looked_up() for e in read[2:]] == [None, None, None, 2400]


@pytest.mark.parametrize(
    "ts", [1793610005, 1793610005.0, "1793610005", "1793610005000", "20261102T090005Z"]
)
def test_an_epoch_or_basic_form_ts_is_refused(tmp_path: Path, ts: object) -> None:
    # 1793610005 is 2026-11-02T09:00:05Z: in order, so only its form is wrong. The basic
    # form is ISO 8601 too: the message says which form is read.
    events = _appended(tmp_path, _row(ts=ts))
    with pytest.raises(BadEventFile) as failure:
        list(read_events(events))
    assert str(failure.value) == (
        "events.jsonl:3: ts must be an ISO 8601 time in its extended form "
        f"(2026-11-01T12:00:00Z), not {ts!r}"
    )


@pytest.mark.parametrize("name", ["account", "key", "ip"])
def test_a_blank_account_key_or_ip_is_refused(tmp_path: Path, name: str) -> None:
    events = _appended(tmp_path, _row(**{name: " \t "}))
    with pytest.raises(BadEventFile) as failure:
        list(read_events(events))
    assert str(failure.value) == f"events.jsonl:3: {name} is blank"


def test_a_utf16_events_file_says_so(tmp_path: Path) -> None:
    write_events(tmp_path / "plain.jsonl")
    for codec in ("utf-16", "utf-16-le"):  # with a byte-order mark, and without
        events = tmp_path / f"{codec}.jsonl"
        events.write_bytes((tmp_path / "plain.jsonl").read_text().encode(codec))
        result = _replay_cli(events, str(tmp_path / "f.jsonl"), tmp_path)
        assert result.returncode == 1
        assert _one_line(result.stderr) == (
            f"lookup: {events}: the file is UTF-16 text: events are UTF-8 JSON Lines (or "
            "Parquet); convert it first (iconv -f UTF-16 -t UTF-8)\n"
        )
    # Not said of UTF-32 (converted as UTF-16 it would be garbled) nor of NULs alone.
    for name, data in (
        ("utf-32.jsonl", (tmp_path / "plain.jsonl").read_text().encode("utf-32")),
        ("nuls.jsonl", bytes(64)),
    ):
        (tmp_path / name).write_bytes(data)
        result = _replay_cli(tmp_path / name, str(tmp_path / "f.jsonl"), tmp_path)
        assert result.returncode == 1 and "UTF-16" not in result.stderr, result.stderr


def test_a_gzip_compressed_events_file_says_so(tmp_path: Path) -> None:
    write_events(tmp_path / "plain.jsonl")
    events = tmp_path / "events.jsonl.gz"
    events.write_bytes(gzip.compress((tmp_path / "plain.jsonl").read_bytes()))
    result = _replay_cli(events, str(tmp_path / "f.jsonl"), tmp_path)
    assert result.returncode == 1
    assert _one_line(result.stderr) == (
        f"lookup: {events}: file is gzip-compressed: decompress it first\n"
    )


@pytest.mark.parametrize("tz", [None, "UTC"])
def test_parquet_nanoseconds_are_rounded_as_json_lines_fractions_are(
    tmp_path: Path, tz: str | None
) -> None:
    rows = write_events(tmp_path / "plain.jsonl")
    nanos = [
        int((T0 - EPOCH).total_seconds()) * 10**9 + i * 10**9 + fraction
        for i, fraction in enumerate(
            [123_456_789, 999_999_600, 1, 500, 999_999_499] * (len(rows) // 5)
        )
    ]
    suffix = "Z" if tz else ""
    texts = [
        f"{(EPOCH + timedelta(seconds=n // 10**9)).isoformat()}.{n % 10**9:09d}{suffix}"
        for n in nanos
    ]
    (tmp_path / "events.jsonl").write_text(
        "".join(
            json.dumps({**row, "ts": text}) + "\n" for row, text in zip(rows, texts, strict=True)
        )
    )
    table = pa.Table.from_pylist(rows).set_column(
        0, "ts", pa.array(nanos, type=pa.timestamp("ns", tz=tz))
    )
    pq.write_table(table, tmp_path / "events.parquet")
    replay(tmp_path / "events.jsonl", tmp_path / "a.jsonl")
    replay(tmp_path / "events.parquet", tmp_path / "b.jsonl")
    assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()
    assert b".123457" in (tmp_path / "b.jsonl").read_bytes()  # rounded, not cut


def _peak_python_memory(events: Path) -> tuple[int, str]:
    tracemalloc.start()
    try:
        with pytest.raises(BadEventFile) as failure:
            for _ in read_events(events):
                pass
        return tracemalloc.get_traced_memory()[1], str(failure.value)
    finally:
        tracemalloc.stop()


def test_parquet_is_read_in_batches_with_rows_numbered_across_them(tmp_path: Path) -> None:
    peaks = []
    for count in (8_000, 32_000):
        rows = write_events(tmp_path / "events.jsonl", count=count)
        rows[-1]["ts"] = rows[0]["ts"]  # out of order on the very last row
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / "events.parquet")
        peak, message = _peak_python_memory(tmp_path / "events.parquet")
        assert message.startswith(f"events.parquet row {count}: events are not sorted by time")
        peaks.append(peak)
    # Loaded whole, four times the rows took four times the memory.
    assert peaks[1] < 1.5 * peaks[0], peaks


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"a": 1}], ": no column ts, account, key, ip, number, outcome"),
        ([], ": no column ts, account, key, ip, number, outcome"),  # no rows to refuse either
        (
            [{"a": 1, "ts": "2026-11-02T09:00:05"}],
            ": no column account, key, ip, number, outcome",
        ),
    ],
)
def test_a_parquet_file_without_the_columns_is_refused_naming_them(
    tmp_path: Path, rows: list[dict[str, object]], message: str
) -> None:
    # With none of the columns read, no row came out at all: "0 finding(s)", rc 0.
    events = tmp_path / "events.parquet"
    table = pa.Table.from_pylist(rows) if rows else pa.table({"a": pa.array([], pa.int64())})
    pq.write_table(table, events)
    out = tmp_path / "findings.jsonl"
    out.write_text('{"account": "old"}\n')
    result = _replay_cli(events, str(out), tmp_path)
    assert result.returncode == 1
    assert _one_line(result.stderr) == f"lookup: events.parquet{message}\n"
    assert not out.exists()


def test_a_parquet_file_with_the_columns_and_no_rows_gives_no_findings(tmp_path: Path) -> None:
    events = tmp_path / "events.parquet"
    pq.write_table(pa.table({name: pa.array([], pa.string()) for name in _row()}), events)
    result = _replay_cli(events, str(tmp_path / "findings.jsonl"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"0 finding(s) written to {tmp_path / 'findings.jsonl'}\n"
    assert (tmp_path / "findings.jsonl").read_bytes() == b""


@pytest.mark.parametrize(
    "line",
    [
        '{"ts": "2026-11-02T09:00:05", "account": "a", "key": "k", "ip": "i",'
        ' "number": "+4722202400", "outcome": "miss", "outcome": "hit"}',
        # Escaped, it is the same key to the decoder.
        '{"ts": "2026-11-02T09:00:05", "account": "a", "key": "k", "ip": "i",'
        ' "number": "+4722202400", "outcome": "miss", "\\u006futcome": "hit"}',
    ],
)
def test_a_key_given_twice_is_refused_not_read_as_its_last_value(tmp_path: Path, line: str) -> None:
    events = _appended(tmp_path)
    with events.open("a") as handle:
        handle.write(line + "\n")
    with pytest.raises(BadEventFile) as failure:
        list(read_events(events))
    assert str(failure.value) == (
        "events.jsonl:3: key 'outcome' is given twice: which value holds cannot be told"
    )


def test_a_parquet_column_given_twice_is_refused(tmp_path: Path) -> None:
    row = _row()
    names = [*row, "outcome"]
    arrays = [pa.array([value]) for value in row.values()] + [pa.array(["hit"])]
    events = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_arrays(arrays, names=names), events)
    with pytest.raises(BadEventFile) as failure:
        list(read_events(events))
    assert str(failure.value) == (
        "events.parquet: column 'outcome' is given twice: which value holds cannot be told"
    )


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_ts_outside_the_years_in_utc_names_the_line(tmp_path: Path, ts: str) -> None:
    # Valid times whose UTC is no datetime: "unexpected OverflowError", no line named.
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(_row(ts=ts)) + "\n")
    result = _replay_cli(events, str(tmp_path / "findings.jsonl"), tmp_path)
    assert result.returncode == 1
    assert _one_line(result.stderr) == (
        f"lookup: events.jsonl:1: ts {ts!r} is out of range: "
        "in UTC it falls outside years 1 to 9999\n"
    )
    assert not (tmp_path / "findings.jsonl").exists()


def test_a_pipe_as_the_events_file_is_refused_as_one(tmp_path: Path) -> None:
    # It exists: "no such events file: /dev/stdin" sent the user looking for a typo.
    write_events(tmp_path / "events.jsonl", count=5)
    out = tmp_path / "findings.jsonl"
    out.write_text('{"account": "old"}\n')
    piped = subprocess.run(
        [sys.executable, "-m", "lookup.cli", "abuse", "replay", "/dev/stdin", "--out", str(out)],
        input=(tmp_path / "events.jsonl").read_text(),
        capture_output=True,
        text=True,
        env={**os.environ, "LOOKUP_DATA_DIR": str(tmp_path / "var")},
        timeout=120,
        check=False,
    )
    assert piped.returncode == 1
    assert _one_line(piped.stderr) == (
        "lookup: /dev/stdin is not a regular file (a pipe or device): "
        "write the events to a file first\n"
    )
    assert not out.exists()
    os.mkfifo(tmp_path / "fifo")  # no writer: opened, it would hang
    fifo = _replay_cli(tmp_path / "fifo", str(out), tmp_path)
    assert fifo.returncode == 1
    assert "fifo is not a regular file (a pipe or device)" in _one_line(fifo.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "fifo"]
