# Shared by the HTTP benchmarks (sourced): server processes, readiness, CPU time.
# The sourcing script sets NAME (its name, for messages) and appends every server's pid to
# `pids`, which stop_servers kills and waits for.

pids=()

stop_servers() {
    local p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
}

wait_for() { # url pid log: until the URL answers; exits, showing the log, if the server died
    local i
    for i in $(seq 1 300); do
        if curl -fs -o /dev/null --max-time 1 "$1"; then
            return 0
        fi
        if ! kill -0 "$2" 2>/dev/null; then
            echo "$NAME: server for $1 exited; its log:" >&2
            cat "$3" >&2
            exit 1
        fi
        sleep 0.2
    done
    echo "$NAME: $1 did not answer within 60 s" >&2
    exit 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # pid: user + system CPU ticks
