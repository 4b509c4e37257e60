#!/usr/bin/env bash
# What the abuse detector and the lookup-event path cost in lookup throughput, in one run.
#
# Target (issue): "the detector and event path cost under 5 % of lookup throughput
# (same-run comparison with detection off)".
#
# Starts three `lookup serve` processes (1 worker each, embedded mode: no Redis) on the cached
# 1M-listing set, each with its own data dir bench/out/var-overhead-<variant> (the DuckDB
# compliance store can be opened by one process only; `snapshots/` is a symlink to
# bench/out/var-1m/snapshots and birth-date.key beside it, the key store is fresh, one API key and account per server):
#   on     the default: every answered lookup queues an event; every LOOKUP_EVENT_FLUSH_SECONDS
#          a background thread writes the batch to the lookup log and runs the detectors;
#   off    LOOKUP_ABUSE_DETECTION=false: events are queued and written to the lookup log,
#          the detectors do not run;
#   nolog  no events at all: the same server with lookup.api.services.Services.emit replaced by a no-op
#          in the launching interpreter (a monkeypatch in this script, no code change), so
#          neither the event, nor the lookup log, nor the detectors cost anything.
# Rate limits are 1,000,000/second (wrk measures the service, not its 429s).
#
# wrk (-t2 -c64 -d10s, bench/requests.lua) runs against on, off, nolog in turn, 5 rounds.
# After each run the script waits until that server is idle again (its event backlog drained)
# before the next one starts, so one server's background work does not slow the next's run;
# that wait is printed ("drain s") and its CPU time is counted in the server's CPU per request.
# Traffic (TRAFFIC):
#   fresh  (default) a 600k-number list (70 % listed / 30 % not, random over the whole plan);
#          every round and wrk thread gets its own slice, the same slices for the three servers,
#          so nearly every lookup is a number the account has not looked up before: the
#          detectors' full path, and the account's detector state grows as it would all day;
#   cycle  bench/out/numbers-10k.txt cycled as in bench/http_throughput.sh: after the first
#          10k lookups every number is a repeat, which the detectors skip early (cheap path).
# Placement (PIN): with 2+ cores, each server runs on core 0 and wrk and the monitor processes
# on core 1 (PIN=1, the default), as in production, where the load comes from elsewhere and the
# monitor (niced, LOOKUP_MONITOR_NICE) does not share the serving core; PIN=0 lets everything
# float, so on 2 cores wrk and the monitor take CPU from the server and the figure measures that
# contention as much as the event path.
# Prints per variant the median and per-round req/s, server CPU µs/request (from /proc), p50/p99,
# status counts and socket errors, the monitor process's CPU per event; the overheads (off-on)/off, (nolog-off)/nolog and
# (nolog-on)/nolog from the medians and as the median of the per-round ratios; then, after the
# servers have stopped, each account's status and each compliance store's lookup-log rows
# (checked against the lookups answered) and findings. Fails if the `on` account got
# suspended or throttled (the comparison would be void) or lookups went unlogged.
#
# Run from anywhere:  bench/abuse_overhead.sh        (needs wrk: apt-get install -y wrk)
# Environment: TRAFFIC (fresh|cycle), DURATION (10s), ROUNDS (5), CONNECTIONS (64), THREADS (2),
#              FRESH_COUNT (600000), BASE_PORT (8121: public ports 8121-8123, internal +10).
# Takes about 3.5 minutes with the defaults (the 1M set must be built: bench/dataset.py).
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=bench/out
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-5}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
TRAFFIC=${TRAFFIC:-fresh}
FRESH_COUNT=${FRESH_COUNT:-600000}
BASE_PORT=${BASE_PORT:-8121}
VARIANTS=(on off nolog)

if ! command -v wrk >/dev/null 2>&1; then
    echo "abuse_overhead: wrk is missing; install it with: apt-get install -y wrk" >&2
    exit 1
fi
case $TRAFFIC in
    fresh) NUMBERS=$OUT/numbers-$((FRESH_COUNT / 1000))k.txt count=$FRESH_COUNT ;;
    cycle) NUMBERS=$OUT/numbers-10k.txt count=10000 ;;
    *) echo "abuse_overhead: TRAFFIC must be fresh or cycle, not '$TRAFFIC'" >&2; exit 1 ;;
esac

declare -A port internal dir pid token log
for i in "${!VARIANTS[@]}"; do
    v=${VARIANTS[$i]}
    port[$v]=$((BASE_PORT + i))
    internal[$v]=$((BASE_PORT + 10 + i))
    dir[$v]=$OUT/var-overhead-$v
    log[$v]=$OUT/overhead-$v.log
    for p in "${port[$v]}" "${internal[$v]}"; do
        if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/"; then
            echo "abuse_overhead: something already answers on port $p; stop it first" >&2
            exit 1
        fi
    done
done

# The cached 1M set (built if missing) and the lookup numbers.
"$BIN/python" bench/dataset.py --numbers "$NUMBERS" --count "$count"

if [[ ! -f $OUT/var-1m/birth-date.key ]]; then
    echo "abuse_overhead: $OUT/var-1m has no birth-date.key: rebuild it (bench/dataset.py --rebuild)" >&2
    exit 1
fi

# Fresh data dirs: shared snapshots (and the date-of-birth key they were published under: a
# server serves no snapshot of another key), own key store and compliance store.
for v in "${VARIANTS[@]}"; do
    rm -rf "${dir[$v]}"
    mkdir -p "${dir[$v]}"
    ln -s ../var-1m/snapshots "${dir[$v]}/snapshots"
    ln -s ../var-1m/birth-date.key "${dir[$v]}/birth-date.key"
    token[$v]=$(LOOKUP_DATA_DIR=${dir[$v]} "$BIN/lookup" keys create --org "bench-$v" \
        --roles lookup | tail -n1)
done

NAME=abuse_overhead
# shellcheck source=bench/lib.sh
source bench/lib.sh
results=$(mktemp)
trap 'stop_servers; rm -f "$results"' EXIT
trap 'exit 130' INT TERM

# The `nolog` server: `lookup serve` with the event emitter (Services.emit) disabled.
NOLOG_LAUNCHER='
import sys
from lookup.api.services import Services
from lookup.cli import main
if not callable(getattr(Services, "emit", None)):
    sys.exit("abuse_overhead: Services.emit is gone; update the nolog variant")
Services.emit = lambda *args, **kwargs: None
sys.exit(main(["serve", *sys.argv[1:]]))
'
# PIN=1 (default with 2+ cores): each server on core 0, wrk and the monitor processes on
# core 1, as in production where the load comes from elsewhere and the monitor has a core of
# its own; PIN=0: everything floats over every core (wrk competes with the server).
PIN=${PIN:-$(($(nproc) >= 2 ? 1 : 0))}
SERVER_CPUS=() WRK_CPUS=()
if ((PIN)); then SERVER_CPUS=(taskset -c 0) WRK_CPUS=(taskset -c 1); fi
for v in "${VARIANTS[@]}"; do
    settings=(
        "LOOKUP_DATA_DIR=${dir[$v]}" LOOKUP_LOG_LEVEL=warning "LOOKUP_INTERNAL_PORT=${internal[$v]}"
        LOOKUP_PLAN_KEY=1000000/second LOOKUP_PLAN_ACCOUNT=1000000/second
        LOOKUP_REDIS_URL= LOOKUP_ABUSE_ALLOW_IPS=
    )
    case $v in
        on) command=("$BIN/lookup" serve) settings+=(LOOKUP_ABUSE_DETECTION=true) ;;
        off) command=("$BIN/lookup" serve) settings+=(LOOKUP_ABUSE_DETECTION=false) ;;
        nolog) command=("$BIN/python" -c "$NOLOG_LAUNCHER") settings+=(LOOKUP_ABUSE_DETECTION=false) ;;
    esac
    env "${settings[@]}" "${SERVER_CPUS[@]}" "${command[@]}" --port "${port[$v]}" --workers 1 \
        >"${log[$v]}" 2>&1 &
    pid[$v]=$!
    pids+=("${pid[$v]}")
done

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
children() { pgrep -P "$1" || true; } # the monitor (and multiprocessing's resource tracker)
child_ticks() { # pid: CPU ticks of its live children (the monitor's work)
    local c sum=0
    for c in $(children "$1"); do sum=$((sum + $(cpu_ticks "$c" 2>/dev/null || echo 0))); done
    echo "$sum"
}
rss_mib() { awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
sanity() { # variant label: the first 8 numbers of the file, statuses printed and recorded
    local v=$1 number code codes="" answered=0
    while read -r number; do
        code=$(curl -s -o /dev/null -w '%{http_code}' \
            -H "Authorization: Bearer ${token[$v]}" "http://127.0.0.1:${port[$v]}/v1/numbers/$number")
        codes+=" $code"
        if [[ $code == 200 || $code == 404 ]]; then answered=$((answered + 1)); fi
    done < <(head -n 8 "$NUMBERS")
    echo "SANITY $v answered=$answered" >>"$results"
    echo "  $2 $v:$codes"
}
settle() { # pid: wait until the server and its monitor are idle (< 1 tick of CPU in 0.2 s)
    local started a b i
    started=$(date +%s.%N)
    for i in $(seq 1 300); do
        a=$(($(cpu_ticks "$1") + $(child_ticks "$1")))
        sleep 0.2
        b=$(($(cpu_ticks "$1") + $(child_ticks "$1")))
        if ((b - a <= 1)); then break; fi
    done
    elapsed "$started"
}

for v in "${VARIANTS[@]}"; do
    wait_for "http://127.0.0.1:${port[$v]}/readyz" "${pid[$v]}" "${log[$v]}"
    if ((PIN)); then
        for c in $(children "${pid[$v]}"); do taskset -a -p -c 1 "$c" >/dev/null; done
    fi
done
declare -A rss_start
for v in "${VARIANTS[@]}"; do rss_start[$v]=$(rss_mib "${pid[$v]}"); done
echo
echo "sanity: /v1/numbers/ for the first 8 numbers of $NUMBERS (200 = listed, 404 = not; 403 = suspended):"
for v in "${VARIANTS[@]}"; do sanity "$v" before; done

lines=$(wc -l <"$NUMBERS")
if [[ $TRAFFIC == fresh ]]; then
    slice=$((lines / (ROUNDS * THREADS))) # numbers per wrk thread and round
else
    slice=4999
fi
run() { # variant round
    local v=$1 round=$2 start before during after line drain
    start=0
    if [[ $TRAFFIC == fresh ]]; then start=$(((round - 1) * THREADS * slice)); fi
    before=$(cpu_ticks "${pid[$v]}") monitor_before=$(child_ticks "${pid[$v]}")
    line=$("${WRK_CPUS[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s bench/requests.lua \
        "http://127.0.0.1:${port[$v]}" -- /v1/numbers/ "$NUMBERS" "${token[$v]}" "$start" "$slice" |
        grep '^BENCH ')
    during=$(cpu_ticks "${pid[$v]}")
    drain=$(settle "${pid[$v]}")
    after=$(cpu_ticks "${pid[$v]}")
    echo "$v round=$round cpu_ticks=$((after - before)) drain_ticks=$((after - during))" \
        "monitor_ticks=$(($(child_ticks "${pid[$v]}") - monitor_before))" \
        "drain_s=$drain ${line#BENCH }" >>"$results"
    printf '  round %d %-6s %s  drain %.1f s\n' "$round" "$v" "${line#BENCH }" "$drain"
}

if [[ $TRAFFIC == fresh ]]; then
    traffic="$lines numbers, a fresh slice of $slice per wrk thread and round"
else
    traffic="$lines numbers, cycled"
fi
echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds of on, off, nolog (each round starting with the next);" \
    "traffic '$TRAFFIC' ($traffic);" \
    "LOOKUP_EVENT_FLUSH_SECONDS=${LOOKUP_EVENT_FLUSH_SECONDS:-0.1 (default)};" \
    "$(nproc) CPU cores, $(if ((PIN)); then echo "servers on core 0, wrk and monitors on core 1";
    else echo "unpinned: wrk and the monitor compete with the server"; fi)"
for round in $(seq 1 "$ROUNDS"); do
    # Each round starts with the next variant: a machine that slows down (or speeds up) as the
    # run goes on favours none of them.
    for i in "${!VARIANTS[@]}"; do
        run "${VARIANTS[$(((round - 1 + i) % ${#VARIANTS[@]}))]}" "$round"
    done
done

echo
echo "after the runs:"
for v in "${VARIANTS[@]}"; do sanity "$v" after; done
declare -A rss_end
for v in "${VARIANTS[@]}"; do rss_end[$v]=$(rss_mib "${pid[$v]}"); done

# Stop each server (it handles its last events on the way out) and time it.
for v in "${VARIANTS[@]}"; do
    started=$(date +%s.%N)
    kill "${pid[$v]}"
    status=0
    wait "${pid[$v]}" || status=$?
    echo "STOP $v seconds=$(elapsed "$started") status=$status" \
        "rss_start=${rss_start[$v]} rss_end=${rss_end[$v]}" >>"$results"
done
pids=()

"$BIN/python" - "$results" "$(getconf CLK_TCK)" "$THREADS" "$slice" "$TRAFFIC" "$CONNECTIONS" \
    "${dir[on]}" "${dir[off]}" "${dir[nolog]}" <<'EOF'
"""Summarize: req/s, overheads, CPU, statuses; then the stores and accounts of each server."""

import sqlite3
import statistics
import sys
from pathlib import Path

import duckdb

results, ticks_per_second, threads, slice_, traffic, connections = sys.argv[1:7]
dirs = dict(zip(("on", "off", "nolog"), map(Path, sys.argv[7:10]), strict=True))
ticks = int(ticks_per_second)
runs: dict[str, list[dict[str, float]]] = {}
answered_sanity: dict[str, int] = {}
stops: dict[str, dict[str, float]] = {}
for line in open(results):
    label, *fields = line.split()
    name = fields.pop(0) if label in ("SANITY", "STOP") else label
    values = {k: float(v) for k, v in (f.split("=") for f in fields)}
    if label == "SANITY":
        answered_sanity[name] = answered_sanity.get(name, 0) + int(values["answered"])
    elif label == "STOP":
        stops[name] = values
    else:
        runs.setdefault(name, []).append(values)

names = {"on": "on    (log + detectors)", "off": "off   (log, no detectors)",
         "nolog": "nolog (no events)"}
median = {v: statistics.median(r["rps"] for r in rs) for v, rs in runs.items()}
print()
print(f"{'variant':<26} {'median req/s':>12} {'runs req/s':>42} {'CPU µs/req':>10} "
      f"{'drain s':>7} {'p50 ms':>6} {'p99 ms':>6}  {'2xx':>8} {'404':>7} {'403':>4} "
      f"{'429':>4} {'4xx':>4} {'5xx':>4} {'sock err':>8}")
problems = []
for v, rs in runs.items():
    total = {k: sum(r[k] for r in rs) for k in rs[0]}
    socket_errors = sum(total[k] for k in ("connect", "read", "write", "timeout"))
    cpu_us = total["cpu_ticks"] / ticks * 1e6 / total["requests"]
    print(f"{names[v]:<26} {median[v]:>12,.0f} "
          f"{' / '.join(format(r['rps'], ',.0f') for r in rs):>42} {cpu_us:>10.0f} "
          f"{max(r['drain_s'] for r in rs):>7.1f} "
          f"{statistics.median(r['p50_us'] for r in rs) / 1000:>6.2f} "
          f"{statistics.median(r['p99_us'] for r in rs) / 1000:>6.2f}  "
          f"{total['s2xx']:>8,.0f} {total['s404']:>7,.0f} {total['s403']:>4,.0f} "
          f"{total['s429']:>4,.0f} {total['s4xx']:>4,.0f} {total['s5xx']:>4,.0f} "
          f"{socket_errors:>8,.0f}")
    if total["s403"]:
        problems.append(f"{v}: {total['s403']:,.0f} 403s (account suspended during the run)")
    if total["s5xx"] or socket_errors or total["s429"] or total["s4xx"] or total["other"]:
        problems.append(f"{v}: 5xx/429/other 4xx/socket errors seen")
    if not (total["s2xx"] and total["s404"]):
        problems.append(f"{v}: expected both 200s and 404s")
    if traffic == "fresh" and max(r["requests"] for r in rs) / int(threads) > int(slice_):
        print(f"  note: {v} asked more than {slice_} numbers per thread in a run: "
              "some numbers of the next slice were asked twice")

def overhead(fast: str, slow: str) -> str:
    """(fast - slow) / fast from the medians, and the median of the per-round ratios."""
    paired = [(f["rps"] - s["rps"]) / f["rps"] for f, s in zip(runs[fast], runs[slow])]
    return (f"{(median[fast] - median[slow]) / median[fast]:6.1%} of medians, "
            f"{statistics.median(paired):6.1%} median of per-round pairs "
            f"(rounds: {' '.join(format(p, '.1%') for p in paired)})")

print()
print(f"detectors        (off - on) / off:      {overhead('off', 'on')}")
print(f"lookup log       (nolog - off) / nolog: {overhead('nolog', 'off')}")
print(f"whole event path (nolog - on) / nolog:  {overhead('nolog', 'on')}")
cpu = {v: sum(r["cpu_ticks"] for r in rs) / ticks * 1e6 / sum(r["requests"] for r in rs)
       for v, rs in runs.items()}
print(f"CPU µs/req: detectors +{cpu['on'] - cpu['off']:.0f}, lookup log and events "
      f"+{cpu['off'] - cpu['nolog']:.0f} (on {cpu['on']:.0f}, off {cpu['off']:.0f}, "
      f"nolog {cpu['nolog']:.0f})")
monitor = {v: sum(r["monitor_ticks"] for r in rs) / ticks * 1e6 / sum(r["requests"] for r in rs)
           for v, rs in runs.items()}
print(f"monitor process CPU µs per lookup event (runs and drains): on {monitor['on']:.1f}, "
      f"off {monitor['off']:.1f}, nolog {monitor['nolog']:.1f}; one core keeps up with "
      f"{1e6 / max(monitor['on'], 0.1):,.0f} events/s with detection on")
detectors = (median["off"] - median["on"]) / median["off"]
event_path = (median["nolog"] - median["on"]) / median["nolog"]
print("target 'the detector and event path cost under 5 % of lookup throughput': "
      f"detectors alone (on vs off) {detectors:.1%}: {'met' if detectors < 0.05 else 'NOT met'}; "
      f"whole event path (on vs nolog) {event_path:.1%}: {'met' if event_path < 0.05 else 'NOT met'}")

print()
print("after stopping (each server handles its last events on the way out):")
for v, folder in dirs.items():
    stop = stops[v]
    answered = sum(r["s2xx"] + r["s404"] for r in runs[v]) + answered_sanity[v]
    con = duckdb.connect(str(folder / "compliance.duckdb"), read_only=True)
    rows, distinct = con.execute("SELECT count(*), count(DISTINCT number) FROM lookup_log").fetchone()
    findings = con.execute(
        "SELECT kind, action, count(*) FROM findings GROUP BY ALL ORDER BY ALL").fetchall()
    cases = con.execute("SELECT count(*) FROM cases").fetchone()[0]
    con.close()
    keys = sqlite3.connect(folder / "keys.sqlite3")
    accounts = keys.execute("SELECT name, status, coalesce(status_reason, '') FROM accounts").fetchall()
    keys.close()
    # wrk stops counting at the end of a run with up to one request per connection in flight:
    # the server answers and logs those too.
    in_flight = int(connections) * len(runs[v])
    expected = (0, 0) if v == "nolog" else (answered, answered + in_flight)
    print(f"  {v:<6} lookup_log rows {rows:>9,} (lookups answered {answered:,.0f} "
          f"+ up to {in_flight} in flight at wrk's end; "
          f"{distinct:,} distinct numbers)  findings {findings or 'none'}  cases {cases}")
    print(f"         account {', '.join(f'{n}: {s} {r}'.strip() for n, s, r in accounts)}  "
          f"RSS {stop['rss_start']:.0f} -> {stop['rss_end']:.0f} MiB  "
          f"stop took {stop['seconds']:.1f} s (exit status {stop['status']:.0f})")
    if not expected[0] <= rows <= expected[1]:
        problems.append(f"{v}: {rows:,} lookup-log rows, {expected[0]:,.0f} to {expected[1]:,.0f} "
                        "expected")
    if any(status != "active" for _, status, _ in accounts):
        problems.append(f"{v}: account no longer active: the comparison is void")
print("(CPU µs/req = server process CPU time, drain included / requests; 'drain s' = longest "
      "wait after a run until the server was idle again; 404 = number not listed, ~30 %;\n"
      " exit status 143: uvicorn re-raises SIGTERM after its graceful shutdown)")
if problems:
    print("FAILED: " + "; ".join(problems))
    sys.exit(1)
EOF
