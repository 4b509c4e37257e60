"""The `lookup` command line contract, run as a real process."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from lookup.abuse.events import utc_now
from lookup.abuse.holds import Hold, Swarmed
from lookup.ingest.files import sidecar_for
from lookup.keys import KeyStore
from tests.ingest_helpers import person, write_csv


def lookup(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lookup.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "LOOKUP_DATA_DIR": str(data_dir), **env},
        timeout=120,
        check=False,
    )


def test_keys_create_prints_the_key_alone_on_the_last_line(tmp_path: Path) -> None:
    result = lookup(
        "keys", "create", "--org", "Acme AS", "--roles", "lookup,search", data_dir=tmp_path
    )
    assert result.returncode == 0, result.stderr
    last = result.stdout.rstrip("\n").splitlines()[-1]
    assert last.startswith("lk_") and " " not in last
    # Stored only as a hash.
    assert last.encode() not in (tmp_path / "keys.sqlite3").read_bytes()


def test_keys_revoke_takes_the_id_or_the_whole_key_and_never_prints_a_secret(
    tmp_path: Path,
) -> None:
    def create() -> str:
        made = lookup("keys", "create", "--org", "acme", "--roles", "lookup", data_dir=tmp_path)
        return made.stdout.rstrip("\n").splitlines()[-1]

    first, second, third = create(), create(), create()
    by_id = lookup("keys", "revoke", first.split("_")[1], data_dir=tmp_path)
    assert (by_id.returncode, by_id.stdout) == (0, f"revoked key {first.split('_')[1]}\n")
    again = lookup("keys", "revoke", first.split("_")[1], data_dir=tmp_path)
    assert again.returncode == 1
    assert again.stderr == f"lookup: no active key with id {first.split('_')[1]!r}\n"
    # Pasted whole, as `keys create` printed it: revoked, and the answer names only its id.
    whole = lookup("keys", "revoke", second, data_dir=tmp_path)
    assert (whole.returncode, whole.stdout) == (0, f"revoked key {second.split('_')[1]}\n")
    # A whole key whose secret is not the key's (a typo, another key's secret): refused,
    # the key stays, and the secret given is not printed back.
    forged = f"lk_{third.split('_')[1]}_{second.split('_', 2)[2]}"
    refused = lookup("keys", "revoke", forged, data_dir=tmp_path)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert second.split("_", 2)[2] not in refused.stderr + refused.stdout
    assert third.split("_")[1] in refused.stderr
    with_prefix = lookup("keys", "revoke", f"lk_{third.split('_')[1]}", data_dir=tmp_path)
    assert with_prefix.returncode == 0
    # Pasted with its header: the key is found in it, and its secret never printed.
    fourth = create()
    header = lookup("keys", "revoke", f"Bearer {fourth}", data_dir=tmp_path)
    assert (header.returncode, header.stdout) == (0, f"revoked key {fourth.split('_')[1]}\n")
    again = lookup("keys", "revoke", f"Bearer {fourth}", data_dir=tmp_path)
    assert again.returncode == 1 and fourth.split("_", 2)[2] not in again.stderr


def test_keys_create_refuses_unknown_roles_and_bad_networks(tmp_path: Path) -> None:
    result = lookup("keys", "create", "--org", "x", "--roles", "lookup,god", data_dir=tmp_path)
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and "god" in result.stderr
    result = lookup(
        "keys",
        "create",
        "--org",
        "x",
        "--roles",
        "lookup",
        "--allow",
        "10.0.0/99",
        data_dir=tmp_path,
    )
    assert result.returncode != 0 and "10.0.0/99" in result.stderr
    # An organization's name is part of the actor of its officers' audited decisions.
    result = lookup(
        "keys", "create", "--org", "desk\x1fx", "--roles", "compliance", data_dir=tmp_path
    )
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and "control characters" in result.stderr
    # Shown in the trail, it must read as it is kept: no override turning it around.
    for org, said in (
        ("desk\u202ex", "text direction controls"),
        ("\u200b\u200b", "required"),
        ("qa 1/€", "must not contain '/'"),
        ("\udcff\udcfe", "must be UTF-8 text"),  # the bytes ff fe: no UTF-8 at all
        ("a\u200bb", "invisible characters (U+200B)"),  # shows as "ab": another account
    ):
        result = lookup("keys", "create", "--org", org, "--roles", "lookup", data_dir=tmp_path)
        assert result.returncode != 0
        assert result.stderr.count("\n") == 1 and said in result.stderr


def test_an_account_name_is_one_however_its_letters_are_composed(tmp_path: Path) -> None:
    # "Å" typed as an A and a combining ring (macOS input) made a second account that
    # looked like the first, and brought an ended customer back under its name.
    composed, decomposed = "\u00c5se", "A\u030ase"
    assert lookup("keys", "create", "--org", composed, "--roles", "lookup", data_dir=tmp_path)
    plan = lookup("keys", "plan", "--org", decomposed, "--plan", "5/second", data_dir=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert lookup("keys", "end", "--org", decomposed, data_dir=tmp_path).returncode == 0
    again = lookup("keys", "create", "--org", decomposed, "--roles", "lookup", data_dir=tmp_path)
    assert again.returncode == 1
    assert again.stderr.startswith("lookup: account 'Åse' ended on ")
    # An account stored decomposed (made before names were kept composed) is found too.
    older = tmp_path / "older"
    older.mkdir()
    store = KeyStore(older / "keys.sqlite3")
    try:
        store.create("placeholder", frozenset({"lookup"}))
        with store._con:
            store._con.execute("UPDATE accounts SET name = ?", (decomposed,))
    finally:
        store.close()
    assert lookup("keys", "end", "--org", composed, data_dir=older).returncode == 0
    back = lookup("keys", "create", "--org", composed, "--roles", "lookup", data_dir=older)
    assert back.returncode == 1 and "ended on" in back.stderr


def test_a_key_that_cannot_be_shown_is_revoked_and_a_cut_report_is_no_failure(
    tmp_path: Path,
) -> None:
    # Standard output on a full disk: the key was kept, and no one could ever have it.
    # Buffered as a terminal's or a file's is (not PYTHONUNBUFFERED): the failure comes at
    # the last flush, and was a traceback there.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["LOOKUP_DATA_DIR"] = str(tmp_path)

    def to_full(*args: str) -> subprocess.CompletedProcess[str]:
        with Path("/dev/full").open("w") as full:
            return subprocess.run(
                [sys.executable, "-m", "lookup.cli", *args],
                stdout=full,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                check=False,
            )

    result = to_full("keys", "create", "--org", "a", "--roles", "lookup")
    assert result.returncode == 1
    said = result.stderr.strip()
    assert said.startswith("lookup: the new key could not be written to standard output")
    key_id = said.split("key ")[2].split(" ")[0]
    again = lookup("keys", "revoke", key_id, data_dir=tmp_path)
    assert again.stderr.strip() == f"lookup: no active key with id {key_id!r}"
    plan = to_full("keys", "plan", "--org", "a", "--plan", "default")
    assert (plan.returncode, plan.stderr) == (1, "lookup: [Errno 28] No space left on device\n")
    # Output closed (`>&-`, as a daemon's): nothing to say, and no failure.
    closed = subprocess.run(
        [sys.executable, "-m", "lookup.cli", "keys", "plan", "--org", "a", "--plan", "default"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        check=False,
        preexec_fn=lambda: os.close(1),
    )
    assert (closed.returncode, closed.stderr) == (0, "")
    # The report's reader gone (`| head -1`, here `| true`): the ingest done is no failure.
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", [person("22202400")])
    ingest = subprocess.Popen(
        [sys.executable, "-m", "lookup.cli", "ingest", str(tmp_path / "in")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "LOOKUP_DATA_DIR": str(tmp_path / "var")},
    )
    assert ingest.stdout is not None and ingest.stderr is not None
    ingest.stdout.close()
    with ingest.stderr:
        assert ingest.wait(timeout=120) == 0
        assert ingest.stderr.read() == b""


def test_a_damaged_key_store_is_named(tmp_path: Path) -> None:
    (tmp_path / "keys.sqlite3").write_text("garbage\n")
    result = lookup("keys", "create", "--org", "a", "--roles", "lookup", data_dir=tmp_path)
    assert (result.returncode, result.stderr) == (
        1,
        f"lookup: cannot open the key store {tmp_path / 'keys.sqlite3'}: file is not a database\n",
    )


def test_ingest_reports_and_status_shows_the_served_snapshot(tmp_path: Path) -> None:
    rows = [person("22202400"), *(person(str(40000000 + i)) for i in range(30)), person("2220X")]
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", rows)
    result = lookup("ingest", str(tmp_path / "in"), data_dir=tmp_path / "var")
    assert result.returncode == 0, result.stderr
    assert "telenor_full_20261122T020000.csv:33: number.letters" in result.stdout
    assert "published snapshot" in result.stdout
    status = lookup("ingest", "status", data_dir=tmp_path / "var")
    assert status.returncode == 0
    assert "31 listings" in status.stdout and "applied" in status.stdout
    # A mistyped data dir is not an empty service: said so, and not created.
    typo = lookup("ingest", "status", data_dir=tmp_path / "vra")
    assert typo.returncode == 2 and typo.stderr.count("\n") == 1
    assert f"no data dir at {tmp_path / 'vra'}" in typo.stderr
    assert not (tmp_path / "vra").exists()


# An ingest whose files wait for a go-ahead file: the real pipeline, paused on its file.
_PAUSED_INGEST = """
import sys, time
from pathlib import Path
from lookup.config import load_settings
from lookup.ingest import pipeline
apply, go = pipeline._ingest_file, Path(sys.argv[2])
def paused(*args, **kwargs):
    while not go.exists():
        time.sleep(0.05)
    return apply(*args, **kwargs)
pipeline._ingest_file = paused
pipeline.ingest([Path(sys.argv[1])], load_settings())
"""


def test_ingest_status_while_an_ingest_runs_shows_what_it_is_doing(tmp_path: Path) -> None:
    var = tmp_path / "var"
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", [person("22202400")])
    assert lookup("ingest", str(tmp_path / "in"), data_dir=var).returncode == 0
    assert not (var / "ingest-running.json").exists()
    rows = [person(str(40000000 + i)) for i in range(5)]
    for ending, day in (("finishes", 23), ("is killed", 24)):
        name = f"telenor_full_202611{day}T020000.csv"
        write_csv(tmp_path / ending, name, rows)
        running = subprocess.Popen(
            [sys.executable, "-c", _PAUSED_INGEST, str(tmp_path / ending), str(tmp_path / "go")],
            env={**os.environ, "LOOKUP_DATA_DIR": str(var)},
        )
        try:
            deadline = time.monotonic() + 60
            while name.encode() not in _read(var / "ingest-running.json"):
                assert time.monotonic() < deadline and running.poll() is None
                time.sleep(0.05)
            status = lookup("ingest", "status", data_dir=var)
            assert status.returncode == 0, status.stderr
            served = "(1 listings" if ending == "finishes" else "(5 listings"
            assert "serving: " in status.stdout and served in status.stdout
            assert (
                f"an ingest is running (pid {running.pid}, started " in status.stdout
                and f"0 of 1 files done, applying {name})" in status.stdout
            ), status.stdout
            if ending == "is killed":
                running.kill()
            else:
                (tmp_path / "go").touch()
            running.wait(timeout=60)
        finally:
            running.kill()
        status = lookup("ingest", "status", data_dir=var)
        assert status.returncode == 0, status.stderr
        # A killed ingest's progress file is left behind, and believed no more.
        assert "running" not in status.stdout and "recent batches" in status.stdout
        # The full file replaced the operator's listings; the killed one applied nothing.
        assert "(5 listings" in status.stdout
        (tmp_path / "go").unlink(missing_ok=True)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def test_ingest_exits_non_zero_when_a_file_is_not_applied(tmp_path: Path) -> None:
    write_csv(tmp_path / "in", "telenor_full_20261122T020000.csv", [person("2220X")])
    result = lookup("ingest", "--inbox", str(tmp_path / "in"), data_dir=tmp_path / "var")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "held" in result.stderr


def test_bad_settings_and_paths_give_one_line_reasons(tmp_path: Path) -> None:
    result = lookup("ingest", "status", data_dir=tmp_path, LOOKUP_REJECT_RATIO_MAX="lots")
    assert result.returncode == 2
    assert result.stderr.startswith("lookup: LOOKUP_REJECT_RATIO_MAX")
    missing = lookup("ingest", str(tmp_path / "nowhere"), data_dir=tmp_path)
    assert missing.returncode == 1 and "no such file or folder" in missing.stderr
    # SQLite names no file ("unexpected OperationalError: unable to open database file").
    blocked = tmp_path / "blocked"
    (blocked / "keys.sqlite3").mkdir(parents=True)
    keys = lookup("keys", "create", "--org", "a", "--roles", "lookup", data_dir=blocked)
    assert keys.stderr == (
        f"lookup: cannot open the key store {blocked / 'keys.sqlite3'}: "
        "unable to open database file\n"
    )
    # An address of another machine is not a port in use.
    elsewhere = lookup("serve", "--host", "192.0.2.1", "--port", "19603", data_dir=tmp_path)
    assert elsewhere.returncode == 1
    assert "192.0.2.1 is no address of this machine" in elsewhere.stderr, elsewhere.stderr
    assert "Traceback" not in result.stderr + missing.stderr
    # Where the fixtures cannot go: the path and the reason, not an exception's repr.
    taken_out = tmp_path / "out-file"
    taken_out.touch()
    for out, said in ((taken_out, "is a file"), (Path("/proc/nope"), "/proc/nope: No such")):
        refused = lookup(
            "fixtures", "generate", "--listings", "5", "--out", str(out), data_dir=tmp_path
        )
        assert refused.returncode in (1, 2) and said in refused.stderr, refused.stderr
        assert refused.stderr.count("\n") == 1 and "Errno" not in refused.stderr
    written = lookup(
        "fixtures", "generate", "--listings", "5", "--out", str(tmp_path / "fx"), data_dir=tmp_path
    )
    assert written.returncode == 0 and "GenerationSummary" not in written.stdout
    assert written.stdout.startswith(f"4 file(s) written to {tmp_path / 'fx'}: ")
    # One port for both APIs, or no worker: refused before any process starts, in one line.
    same = lookup(
        "serve", data_dir=tmp_path / "var", LOOKUP_PORT="19240", LOOKUP_INTERNAL_PORT="19240"
    )
    assert same.returncode == 1 and "both 19240" in same.stderr, same.stderr
    assert same.stderr.count("\n") == 1
    # Commands that listen on no port do not care (an ingest-only host).
    status = lookup(
        "ingest",
        "status",
        data_dir=tmp_path / "var",
        LOOKUP_PORT="19240",
        LOOKUP_INTERNAL_PORT="19240",
    )
    assert status.returncode == 0, status.stderr
    # A Redis database the server does not have: every keyed request would get 503.
    for setting in ("LOOKUP_RATELIMIT_STORAGE", "LOOKUP_REDIS_URL"):
        missing_db = lookup(
            "serve", data_dir=tmp_path / "var", **{setting: "redis://127.0.0.1:6379/99"}
        )
        assert missing_db.returncode == 2, missing_db.stderr
        assert missing_db.stderr == (
            f"lookup: {setting}: 'redis://127.0.0.1:6379/99': the Redis server has no "
            "such database (DB index is out of range; they are numbered from 0, `databases` "
            "in redis.conf)\n"
        )
    none = lookup("serve", "--workers", "0", data_dir=tmp_path / "var")
    assert none.returncode == 2 and "--workers" in none.stderr, none.stderr
    for host in ("999.1.1.1", "a..b"):
        unknown = lookup("serve", data_dir=tmp_path / "var", LOOKUP_HOST=host)
        assert unknown.returncode == 1 and "does not resolve" in unknown.stderr, unknown.stderr
        assert unknown.stderr.count("\n") == 1
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    device = lookup("ingest", str(pipe), data_dir=tmp_path / "var")
    assert device.returncode == 1 and "not a file or folder" in device.stderr
    # A data dir that is a file: said as such, not as an error of whatever opened it first.
    taken = tmp_path / "taken"
    taken.touch()
    for args in (("ingest", "status"), ("keys", "create", "--org", "x", "--roles", "lookup")):
        refused = lookup(*args, data_dir=taken)
        assert refused.returncode == 2 and "is a file, not a folder" in refused.stderr
        assert refused.stderr.count("\n") == 1


def test_fixtures_generate_writes_operator_files(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    result = lookup(
        "fixtures",
        "generate",
        "--listings",
        "300",
        "--operators",
        "2",
        "--seed",
        "7",
        "--out",
        str(out),
        data_dir=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (out / "manifest.json").exists()
    assert len(list(out.glob("*_full_*"))) >= 2
    generate = ("fixtures", "generate", "--listings", "50", "--operators", "1", "--out", str(out))
    # Generated again into its own folder: its earlier files make way (a desktop's
    # dotfile beside them is no operator file).
    (out / ".DS_Store").write_bytes(b"\0")
    assert lookup(*generate, data_dir=tmp_path).returncode == 0
    # A file it did not write would be overwritten or left to be ingested with the new ones.
    (out / "telia_full_20261101T020000.csv").write_text("nummer;fornavn\n", "utf-8")
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    refused = lookup(*generate, data_dir=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr == (
        f"lookup: --out {out} holds files these fixtures did not write "
        "(telia_full_20261101T020000.csv): give an empty or new folder\n"
    )
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def test_ingest_watch_applies_files_as_they_arrive(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    env = {**os.environ, "LOOKUP_DATA_DIR": str(tmp_path / "var")}
    watcher = subprocess.Popen(
        [sys.executable, "-m", "lookup.cli", "ingest", "--watch", str(inbox), "--interval", "0.2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        write_csv(inbox, "telenor_full_20261122T020000.csv", [person("22202400")])
        pointer = tmp_path / "var" / "snapshots" / "CURRENT"
        deadline = time.monotonic() + 20
        while not pointer.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pointer.exists(), "the watcher did not ingest the new file"
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)


def test_the_watcher_says_what_it_ignores_and_checks_a_sidecar_that_comes_late(
    tmp_path: Path,
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    watcher = subprocess.Popen(
        [sys.executable, "-m", "lookup.cli", "ingest", "--watch", str(inbox), "--interval", "0.1"],
        env={**os.environ, "LOOKUP_DATA_DIR": str(tmp_path / "var")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # A delivery misnamed is said (once), not waited for unseen; an upload under a
        # temporary name is not.
        write_csv(inbox, "telia_full_20261122T020000.csv.zip", [person("22202400")])
        write_csv(inbox, "telia_full_20261122T020000.csv.part", [person("22202400")])
        applied = write_csv(inbox, "telenor_full_20261122T020000.csv", [person("22202400")])
        pointer = tmp_path / "var" / "snapshots" / "CURRENT"
        deadline = time.monotonic() + 30
        while not pointer.exists():
            assert time.monotonic() < deadline, "the watcher did not ingest the file"
            time.sleep(0.05)
        # Its sidecar comes after it was read, and does not match: the file is read again
        # and the mismatch said.
        sidecar_for(applied).write_text("0" * 64 + "  " + applied.name + "\n")
        time.sleep(2)
    finally:
        watcher.terminate()
        stdout, stderr = watcher.communicate(timeout=10)
    assert stdout.count("csv.zip: ignored (not an operator file name)") == 1, stdout
    assert ".part" not in stdout
    assert "telenor_full_20261122T020000.csv: applied" in stdout
    assert "telenor_full_20261122T020000.csv: rejected" in stdout, stdout
    assert "sidecar_mismatch" in stdout and "Traceback" not in stderr


def test_account_plans_and_allow_lists_are_set_from_the_command_line(tmp_path: Path) -> None:
    assert (
        lookup("keys", "create", "--org", "acme", "--roles", "lookup", data_dir=tmp_path).returncode
        == 0
    )
    ok = lookup("keys", "plan", "--org", "acme", "--plan", "5/second;100/minute", data_dir=tmp_path)
    assert ok.returncode == 0 and "5/second" in ok.stdout
    bad = lookup("keys", "plan", "--org", "acme", "--plan", "lots/forever", data_dir=tmp_path)
    assert bad.returncode == 1 and "lots/forever" in bad.stderr
    # A limit of none would refuse every request with a Retry-After that never comes true.
    never = lookup("keys", "plan", "--org", "acme", "--plan", "5/second;0/day", data_dir=tmp_path)
    assert never.returncode == 1 and "at least 1 request" in never.stderr
    for plan, reason in [
        ("2/0 seconds", "1 second to 366 days"),  # `limits` would read it as 2/second
        ("1/99999999999999999999 seconds", "1 second to 366 days"),
        # RateLimit-Policy names the quota: a header parser refuses more than 15 digits.
        ("1000000000000000/second;1/minute", "at most 999,999,999,999,999 requests"),
        ("5/second\n10/minute", "control character"),
        ("1/second\r", "control character"),
        # Both would count each request on one counter: 1 a second, not 3.
        ("3/second;3/second", "two limits"),
        # `limits` reads no sign: "cannot read plan" did not say what was wrong.
        ("5/second; -1/day", "at least 1 request"),
        ("3/second;100/minute;5/1 second", "two limits"),
    ]:
        refused = lookup("keys", "plan", "--org", "acme", "--plan", plan, data_dir=tmp_path)
        assert refused.returncode == 1 and reason in refused.stderr, (plan, refused.stderr)
        assert refused.stderr.count("\n") == 1, refused.stderr
    # Its own search plan: the listings its name searches may return, checked alike.
    search = ("keys", "plan", "--org", "acme", "--search", "--plan")
    ok = lookup(*search, "5000/hour;30000/day", data_dir=tmp_path)
    assert ok.stdout == "acme: search limits 5000/hour;30000/day\n"
    refused = lookup(*search, "5/second;0/day", data_dir=tmp_path)
    assert refused.returncode == 1 and "at least 1 listing in each" in refused.stderr
    store = KeyStore(tmp_path / "keys.sqlite3")
    account = store.accounts()["acme"]
    store.close()
    assert (account.plan, account.search_plan) == ("5/second;100/minute", "5000/hour;30000/day")
    assert lookup(*search, "default", data_dir=tmp_path).stdout == "acme: search limits default\n"
    most = ("keys", "plan", "--org", "acme", "--plan", "999999999999999/second")
    assert lookup(*most, data_dir=tmp_path).returncode == 0
    nobody = lookup("keys", "plan", "--org", "nobody", "--plan", "1/second", data_dir=tmp_path)
    assert nobody.returncode == 1 and "nobody" in nobody.stderr
    bound = lookup("keys", "allow", "--org", "acme", "--cidr", "10.0.0.0/8", data_dir=tmp_path)
    assert bound.stdout == "acme: keys usable from 10.0.0.0/8\n"
    # A key's own allow-list stays whatever the account's says: the client must be in both.
    own = ("keys", "create", "--org", "acme", "--roles", "lookup", "--allow", "192.0.2.0/24")
    assert lookup(*own, data_dir=tmp_path).returncode == 0
    unbound = lookup("keys", "allow", "--org", "acme", data_dir=tmp_path)
    assert unbound.stdout == (
        "acme: no account-wide allow-list; 1 key(s) keep their own allow-list\n"
    )


def test_every_bad_setting_is_named_in_one_line(tmp_path: Path) -> None:
    for variable, value in [
        ("LOOKUP_PORT", "70000"),
        ("LOOKUP_LOG_LEVEL", "verbose"),
        ("LOOKUP_ABUSE_ALLOW_IPS", "10.0.0.0/33"),
        ("LOOKUP_ABUSE_ALLOW_IPS", "10.0.0.5/8"),
        ("LOOKUP_RATELIMIT_STORAGE", "foo://x"),
        ("LOOKUP_PLAN_KEY", "2/0 seconds"),
        ("LOOKUP_FORWARDED_ALLOW_IPS", "the-proxy"),
        # uvicorn would match no address with host bits set, nor '*' among others.
        ("LOOKUP_FORWARDED_ALLOW_IPS", "10.0.0.5/24"),
        ("LOOKUP_FORWARDED_ALLOW_IPS", "10.0.0.1,*"),
        ("LOOKUP_PLAN_KEY", "lots/forever"),
        ("LOOKUP_PLAN_ACCOUNT", "0/second"),
        ("LOOKUP_PLAN_SEARCH", "0/hour"),
        ("LOOKUP_PLAN_ACCOUNT", "2/second;2/second"),
        ("LOOKUP_MONITOR_NICE", "25"),
        # NaN passes a `<= 0` check: the service would start with a broken poll loop.
        ("LOOKUP_SNAPSHOT_POLL_SECONDS", "nan"),
        ("LOOKUP_EVENT_FLUSH_SECONDS", "inf"),
        ("LOOKUP_KEY_REFRESH_SECONDS", "0"),
        ("LOOKUP_KEEP_ALIVE_SECONDS", "-1"),
        ("LOOKUP_LOG_COMMIT_SECONDS", "-1"),
        ("LOOKUP_LOG_COMMIT_SECONDS", "nan"),
        ("LOOKUP_LOG_COMMIT_SECONDS", "7200"),  # its late lookups would outlive an erasure
        # Workers would each die on it with a traceback, and the server answer nothing.
        ("LOOKUP_REDIS_URL", "notaurl"),
        ("LOOKUP_REDIS_URL", "redis://127.0.0.1:notaport"),
        # The client reads a path that is no number as database 0, silently.
        ("LOOKUP_REDIS_URL", "redis://127.0.0.1:6379/abc"),
        ("LOOKUP_RATELIMIT_STORAGE", "redis://127.0.0.1:6379/abc"),
        ("LOOKUP_ABUSE_ALLOW_IPS", "fe80::1%eth0"),
        # msgspec's lax reading took these for whole numbers.
        ("LOOKUP_PORT", "1e3"),
        ("LOOKUP_WORKERS", "2.0"),
    ]:
        result = lookup("serve", data_dir=tmp_path, **{variable: value})
        assert result.returncode == 2, (variable, result.stderr)
        assert result.stderr.startswith(f"lookup: {variable}") and result.stderr.count("\n") == 1
    # A value of the wrong form is told what form it needs, in words.
    for variable, value, says in [
        ("LOOKUP_ABUSE_DETECTION", "yes", "must be true or false (1 or 0), not 'yes'"),
        ("LOOKUP_PORT", "abc", "must be a whole number, not 'abc'"),
        ("LOOKUP_EVENT_FLUSH_SECONDS", "soon", "must be a number, not 'soon'"),
        # A search plan counts listings, and says so.
        (
            "LOOKUP_PLAN_SEARCH",
            "0/hour",
            "plan '0/hour' must allow at least 1 listing in each limit",
        ),
    ]:
        result = lookup("ingest", "status", data_dir=tmp_path, **{variable: value})
        assert result.stderr == f"lookup: {variable}: {says}\n"
    # A Redis password is never quoted back.
    result = lookup("serve", data_dir=tmp_path, LOOKUP_REDIS_URL="redis://:s3cret@h:x/0")
    assert result.returncode == 2 and "s3cret" not in result.stderr and "***" in result.stderr
    # A level in capitals is the level; a setting a letter off is warned of, not ignored
    # unsaid (another tool's LOOKUP_ variable is left alone).
    tmp_path.joinpath("var").mkdir()
    result = lookup(
        "ingest",
        "status",
        data_dir=tmp_path / "var",
        LOOKUP_LOG_LEVEL="DEBUG",
        LOOKUP_PROT="8001",
        LOOKUP_API_KEY="lk_x",
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "WARNING lookup.config: LOOKUP_PROT is no setting (did you mean LOOKUP_PORT?); ignored\n"
    )


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    watch = ("ingest", "--watch", str(tmp_path))
    for args in (
        ("ingest", "--bogus"),
        ("keys", "plan"),
        (),
        (*watch, "--interval", "0"),
        ("serve", "--port", "99999"),  # named as the option given, not as LOOKUP_PORT
    ):
        result = lookup(*args, data_dir=tmp_path)
        assert result.returncode == 2, args
        assert result.stderr.count("\n") == 1 and "--help" in result.stderr, result.stderr
    # Options that would be ignored are refused, saying what they belong to.
    (tmp_path / "dangling").symlink_to("nowhere-else")
    for ignored, says in [
        (("ingest", "--interval", "5", str(tmp_path)), "give --watch DIR"),
        (("ingest", "--force", "status"), "ingest status takes nothing else"),
        (("ingest", "status", "extra"), "ingest status takes nothing else"),
        # Left unsaid, the other files would never be applied.
        ((*watch, str(tmp_path)), "--watch DIR takes no other files or --inbox"),
        ((*watch, "--inbox", str(tmp_path)), "--watch DIR takes no other files or --inbox"),
        (("ingest", "--inbox", "a", "--inbox", "b"), "--inbox given twice"),
        (("ingest", "--inbox", str(Path(__file__))), "--inbox needs a folder"),
        # Named by the command given them, and its help (it was `lookup --help`).
        (
            ("keys", "revoke", "a", "b"),
            "lookup keys revoke: unrecognized arguments: b (see lookup keys revoke --help)",
        ),
        (
            ("fixtures", "generate", "--listings", "2", "--operators", "5", "--out", "x"),
            "--operators 5 is more than --listings 2",
        ),
        (
            ("fixtures", "generate", "--listings", "5", "--out", str(tmp_path / "dangling")),
            "is a link to nowhere-else, which does not exist",
        ),
        # Any option of one value: argparse kept the last, a key without the role asked first.
        (
            ("keys", "create", "--org", "a", "--roles", "lookup", "--roles", "search"),
            "--roles given twice",
        ),
        (("keys", "plan", "--org", "a", "--org", "b", "--plan", "default"), "--org given twice"),
        (("abuse", "replay", "e.jsonl", "--out", "a", "--out", "b"), "--out given twice"),
        (("fixtures", "generate", "--listings", "5", "--out", ""), "'' is not a folder name"),
        (
            ("fixtures", "generate", "--listings", "100000000000", "--out", str(tmp_path / "x")),
            "--listings must be at most 10,000,000",
        ),
        (
            ("fixtures", "generate", "--listings", "5", "--operators", "1000000000", "--out", "x"),
            "--operators at most 100",
        ),
    ]:
        result = lookup(*ignored, data_dir=tmp_path)
        assert (result.returncode, result.stderr.count("\n")) == (2, 1), result.stderr
        assert says in result.stderr, result.stderr


def test_the_watcher_outlives_a_failing_round(tmp_path: Path) -> None:
    inbox, data_dir = tmp_path / "inbox", tmp_path / "var"
    inbox.mkdir()
    # A folder where the warehouse file should be: every round fails until it is removed.
    blocker = data_dir / "warehouse.duckdb"
    blocker.mkdir(parents=True)
    watcher = subprocess.Popen(
        [sys.executable, "-m", "lookup.cli", "ingest", "--watch", str(inbox), "--interval", "0.1"],
        env={**os.environ, "LOOKUP_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        write_csv(inbox, "telenor_full_20261122T020000.csv", [person("22202400")])
        time.sleep(1.5)
        assert watcher.poll() is None, watcher.communicate()
        blocker.rmdir()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (data_dir / "snapshots" / "CURRENT").exists():
            time.sleep(0.05)
        assert (data_dir / "snapshots" / "CURRENT").exists(), "the file was not retried"
    finally:
        watcher.terminate()
        _, stderr = watcher.communicate(timeout=10)
    assert "ingest failed" in stderr and "retrying" in stderr and "Traceback" not in stderr


def test_an_operator_lists_the_swarmed_blocks_and_ends_one_for_good(tmp_path: Path) -> None:
    # A swarm's findings name it alike; the monitor writes each to the key store.
    now = utc_now()
    found = Swarmed(Hold.of(22200000), now - timedelta(days=7), now + timedelta(hours=20))
    other = Swarmed(Hold.of(91234567), now - timedelta(days=7), now + timedelta(hours=2))
    with contextlib.closing(KeyStore(tmp_path / "keys.sqlite3")) as store:
        store.swarm(found)
        store.swarm(other)
    listed = lookup("keys", "swarms", data_dir=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        f"+4791230000..9999: refused to accounts first used after "
        f"{other.opened_after:%Y-%m-%d %H:%M} UTC, or not yet, until "
        f"{other.until:%Y-%m-%d %H:%M} UTC",
        f"+4722200000..999: refused to accounts first used after "
        f"{found.opened_after:%Y-%m-%d %H:%M} UTC, or not yet, until "
        f"{found.until:%Y-%m-%d %H:%M} UTC",
    ]
    # A town's new customers, the operator finds: ended by any number in the block.
    ended = lookup("keys", "swarms", "--end", "22 20 01 23", data_dir=tmp_path)
    assert ended.returncode == 0, ended.stderr
    assert ended.stdout.startswith("+4722200000..999: answered to new accounts again")
    again = lookup("keys", "swarms", "--end", "+4722200000..999", data_dir=tmp_path)
    assert again.returncode == 1
    assert again.stderr == "lookup: +4722200000..999 is not refused to new accounts now\n"
    with contextlib.closing(KeyStore(tmp_path / "keys.sqlite3")) as store:
        # The same swarm's later findings do not bring it back; a swarm found later does.
        store.swarm(found)
        assert store.swarms()[found.hold].until <= utc_now()
        later = found._replace(
            opened_after=found.opened_after + timedelta(days=1), until=found.until + timedelta(1)
        )
        store.swarm(later)
        assert store.swarms()[found.hold] == later
    bad = lookup("keys", "swarms", "--end", "nonsense", data_dir=tmp_path)
    assert bad.returncode == 2 and "--end takes a block like +4722200000..999" in bad.stderr
    # A label no block has is a typo, not a block that is not swarmed.
    typo = lookup("keys", "swarms", "--end", "+4722200000..99", data_dir=tmp_path)
    assert typo.returncode == 2
    assert typo.stderr == (
        "lookup: --end: '+4722200000..99' is no block; did you mean +4722200000..999?\n"
    )
    with contextlib.closing(KeyStore(tmp_path / "keys.sqlite3")) as store:
        store.end_swarm(later.hold)
        store.end_swarm(other.hold)
    none = lookup("keys", "swarms", data_dir=tmp_path)
    assert none.stdout == "no block is refused to new accounts\n"
