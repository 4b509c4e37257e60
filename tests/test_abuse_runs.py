"""The sequential-run rule read directly: which kind a long run is named, as keys and
addresses join and leave it."""

from __future__ import annotations

from datetime import datetime, timedelta

from lookup.abuse.policy import DEFAULT_POLICY, Kind
from lookup.abuse.runs import SequentialRuns
from lookup.abuse.state import AccountState, Lookup

T0 = datetime(2026, 11, 2, 9, 0)
WINDOW = DEFAULT_POLICY.window_seconds


def lookup(seq: int, seconds: float, *, key: str = "k1", ip: str = "10.0.0.1") -> Lookup:
    ts = T0 + timedelta(seconds=seconds)
    return Lookup(ts, ts.timestamp(), 21_000_000 + seq, "miss", key, ip, "acme", seq)


def test_a_run_is_distributed_while_a_second_key_or_address_is_in_it_and_not_after() -> None:
    rule, state = SequentialRuns(DEFAULT_POLICY), AccountState()
    kinds = []
    # A walk on one key, one lookup from a second key in the middle, then on for over the
    # window (a week) at one a minute, so the second key's lookup leaves the run.
    minutes = int(WINDOW // 60) + 500
    for seq in range(minutes):
        extra = {"key": "k2"} if seq == 100 else {"ip": "10.0.0.9"} if seq == 300 else {}
        verdicts = rule.check(state, lookup(seq, seq * 60.0, **extra))
        kinds.append(verdicts[0].kind if verdicts else None)
    first = DEFAULT_POLICY.run_flag - 1
    assert set(kinds[first:100]) == {Kind.SEQUENTIAL_RUN}
    assert set(kinds[100 : minutes - 200]) == {Kind.DISTRIBUTED_SCAN}
    # Both lookups left the week's window: the run is one key's and one address's again.
    assert set(kinds[-100:]) == {Kind.SEQUENTIAL_RUN}
    (run,) = state.runs
    assert run.tally == ({"k1": len(run.items)}, {"10.0.0.1": len(run.items)})


def test_a_runs_evidence_quotes_the_run_as_it_stood_when_it_fired() -> None:
    rule, state = SequentialRuns(DEFAULT_POLICY), AccountState()
    verdicts = []
    for seq in range(DEFAULT_POLICY.run_flag):
        verdicts = rule.check(state, lookup(seq, seq * 10.0))
    evidence = verdicts[0].evidence()
    assert evidence["range"] == ["+4721000000", f"+47{21_000_000 + seq}"]
    assert evidence["rule"]["run_length"] == DEFAULT_POLICY.run_flag
    assert len(evidence["lookups"]) == DEFAULT_POLICY.run_flag
