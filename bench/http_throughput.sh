#!/usr/bin/env bash
# HTTP throughput of the real lookup endpoint against a bare Litestar app, side by side.
#
# Measures req/s with wrk (-t2 -c64 -d10s, bench/requests.lua) against
#   (i)   GET /v1/numbers/{n}  the real service (`lookup serve`, 1 worker) on the 1M set,
#         with an API key; numbers cycle through 10k numbers, 70 % listed (200) / 30 % not (404);
#   (ii)  GET /bare/{n}        bench/bare_app.py: a constant listing-shaped Struct, same numbers;
#   (iii) GET /const           bench/bare_app.py: the constant Struct, no path parameter;
# both servers run uvicorn with 1 worker, uvloop, httptools, no access log. Runs are interleaved
# (i, ii, iii) x 3; prints the median req/s of each, the ratios, wrk's status/socket-error
# counts and the server CPU time per request (from /proc, independent of wrk's share of CPU).
#
# Run from anywhere:  bench/http_throughput.sh   (or `make bench`; needs wrk: apt-get install -y wrk)
# Environment: DURATION (default 10s), ROUNDS (3), CONNECTIONS (64), THREADS (2),
#              SERVICE_PORT (8101), BARE_PORT (8102).
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=bench/out
NUMBERS=$OUT/numbers-10k.txt
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
SERVICE_PORT=${SERVICE_PORT:-8101}
BARE_PORT=${BARE_PORT:-8102}
SERVICE=http://127.0.0.1:$SERVICE_PORT
BARE=http://127.0.0.1:$BARE_PORT

if ! command -v wrk >/dev/null 2>&1; then
    echo "http_throughput: wrk is missing; install it with: apt-get install -y wrk" >&2
    exit 1
fi

for url in "$SERVICE" "$BARE"; do
    if curl -s -o /dev/null --max-time 1 "$url/"; then
        echo "http_throughput: something already answers on $url; stop it first" >&2
        exit 1
    fi
done

"$BIN/python" bench/dataset.py --numbers "$NUMBERS" --count 10000

if [[ ! -f $OUT/var-1m/birth-date.key ]]; then
    echo "http_throughput: $OUT/var-1m has no birth-date.key: rebuild it (bench/dataset.py --rebuild)" >&2
    exit 1
fi

# A fresh data dir each run, sharing the 1M set's snapshots (and the date-of-birth key they
# were published under): its own key store and compliance store, so no run starts with an
# earlier run's lookup log, or on an account an earlier run got flagged.
DATA_DIR=$OUT/var-http
rm -rf "$DATA_DIR"
mkdir -p "$DATA_DIR"
ln -s ../var-1m/snapshots "$DATA_DIR/snapshots"
ln -s ../var-1m/birth-date.key "$DATA_DIR/birth-date.key"
token=$(LOOKUP_DATA_DIR=$DATA_DIR "$BIN/lookup" keys create --org bench --roles lookup | tail -n1)

NAME=http_throughput
# shellcheck source=bench/lib.sh
source bench/lib.sh
trap stop_servers EXIT
trap 'exit 130' INT TERM

# Limits high enough that wrk measures the service, not its 429s.
LOOKUP_DATA_DIR=$DATA_DIR LOOKUP_LOG_LEVEL=warning LOOKUP_INTERNAL_PORT=$((SERVICE_PORT + 10)) \
    LOOKUP_PLAN_KEY=1000000/second LOOKUP_PLAN_ACCOUNT=1000000/second \
    LOOKUP_ABUSE_DETECTION=${LOOKUP_ABUSE_DETECTION:-true} \
    "$BIN/lookup" serve --port "$SERVICE_PORT" --workers 1 >"$OUT/service.log" 2>&1 &
service_pid=$!
pids+=("$service_pid")
"$BIN/uvicorn" --app-dir bench bare_app:app --host 127.0.0.1 --port "$BARE_PORT" --workers 1 \
    --loop uvloop --http httptools --no-access-log --log-level warning >"$OUT/bare.log" 2>&1 &
bare_pid=$!
pids+=("$bare_pid")

wait_for "$SERVICE/readyz" "$service_pid" "$OUT/service.log"
wait_for "$BARE/const" "$bare_pid" "$OUT/bare.log"

# Sanity: the real endpoint answers the numbers file with both 200 and 404.
statuses=""
while read -r number; do
    statuses+=" $(curl -s -o /dev/null -w '%{http_code}' \
        -H "Authorization: Bearer $token" "$SERVICE/v1/numbers/$number")"
done < <(head -n 8 "$NUMBERS")
echo "sanity: /v1/numbers/ for the first 8 numbers ->$statuses;" \
    "/const -> $(curl -s -o /dev/null -w '%{http_code}' "$BARE/const")"

results=$(mktemp)
trap 'stop_servers; rm -f "$results"' EXIT
run() { # label pid url prefix numbers-file
    local before after line
    before=$(cpu_ticks "$2")
    line=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s bench/requests.lua "$3" \
        -- "$4" "$5" "$token" | grep '^BENCH ')
    after=$(cpu_ticks "$2")
    echo "$1 round=$round cpu_ticks=$((after - before)) ${line#BENCH }" | tee -a "$results"
}

echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS interleaved rounds; $(nproc) CPU cores:" \
    "wrk's threads compete with the 1-worker server for them (the same for every target)"
for round in $(seq 1 "$ROUNDS"); do
    run "i" "$service_pid" "$SERVICE" /v1/numbers/ "$NUMBERS"
    run "ii" "$bare_pid" "$BARE" /bare/ "$NUMBERS"
    run "iii" "$bare_pid" "$BARE" /const -
done

"$BIN/python" - "$results" "$(getconf CLK_TCK)" <<'EOF'
"""Summarize the wrk runs: median req/s, ratios, status and error counts, CPU per request."""

import statistics
import sys

ticks_per_second = int(sys.argv[2])
runs: dict[str, list[dict[str, float]]] = {}
for line in open(sys.argv[1]):
    label, *fields = line.split()
    runs.setdefault(label, []).append({k: float(v) for k, v in (f.split("=") for f in fields)})
names = {"i": "GET /v1/numbers/{n} (service)", "ii": "GET /bare/{n} (bare app)",
         "iii": "GET /const (bare app)"}
median = {label: statistics.median(r["rps"] for r in rs) for label, rs in runs.items()}
print()
print(f"{'target':<32} {'median req/s':>12} {'runs req/s':>26} {'CPU µs/req':>10} "
      f"{'p50 ms':>7} {'p99 ms':>7}  {'2xx':>8} {'404':>7} {'4xx':>4} {'5xx':>4} {'sock err':>8}")
problems = []
for label, rs in runs.items():
    total = {k: sum(r[k] for r in rs) for k in rs[0]}
    socket_errors = sum(total[k] for k in ("connect", "read", "write", "timeout"))
    cpu_us = total["cpu_ticks"] / ticks_per_second * 1e6 / total["requests"]
    print(f"{names[label]:<32} {median[label]:>12,.0f} "
          f"{' / '.join(format(r['rps'], ',.0f') for r in rs):>26} {cpu_us:>10.0f} "
          f"{statistics.median(r['p50_us'] for r in rs) / 1000:>7.2f} "
          f"{statistics.median(r['p99_us'] for r in rs) / 1000:>7.2f}  "
          f"{total['s2xx']:>8,.0f} {total['s404']:>7,.0f} {total['s4xx']:>4,.0f} "
          f"{total['s5xx']:>4,.0f} {socket_errors:>8,.0f}")
    if total["s5xx"] or socket_errors or total["s4xx"] or total["s403"] or total["s429"] \
            or total["other"]:
        problems.append(f"{names[label]}: 5xx/other 4xx/socket errors seen")
    if label != "i" and total["s404"]:
        problems.append(f"{names[label]}: unexpected 404s")
    if label == "i" and not (total["s2xx"] and total["s404"]):
        problems.append(f"{names[label]}: expected both 200s and 404s")
print()
print(f"ratio (i)/(ii)  service vs bare with path parameter: {median['i'] / median['ii']:.2f}")
print(f"ratio (i)/(iii) service vs bare constant:            {median['i'] / median['iii']:.2f}")
print("(404 = number not listed, expected for ~30 % of (i); 'sock err' = connect+read+write+"
      "timeout; CPU µs/req = server process CPU time / requests served)")
if problems:
    print("FAILED: " + "; ".join(problems))
    sys.exit(1)
EOF
