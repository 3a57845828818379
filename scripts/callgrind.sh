#!/usr/bin/env bash
# Where a request's instructions go: the server (release code with line
# tables, the `profiling` profile) under valgrind's callgrind, on a fresh
# SQLite file (or, with RUNNERS_TEST_PG set, a fresh PostgreSQL database:
# `.ci/postgres -- scripts/callgrind.sh create`), driven by N sequential
# requests of one workload after a warm-up. Callgrind counts instructions,
# so the figures repeat on a noisy machine; they are per request.
#
#   scripts/callgrind.sh create|view|list|search|rotate|heartbeat [N]
#
# Prints the inclusive top of the profile (functions of this project and
# the libraries they spend in) and keeps callgrind.out.* in target/profiles.
set -euo pipefail
cd "$(dirname "$0")/.."
workload=${1:?create, view, list, search, rotate or heartbeat}
n=${2:-2000}

cargo build --locked --profile profiling -p runners-server
bin=target/profiling/runners-server
out=target/profiles
mkdir -p "$out"
dir=$(mktemp -d)
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$dir"' EXIT
db=$dir/runners.db
if [ -n "${RUNNERS_TEST_PG:-}" ]; then db=$RUNNERS_TEST_PG; fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
profile="$out/callgrind.out.$workload"
valgrind --tool=callgrind --callgrind-out-file="$profile" --instr-atstart=no \
  "$bin" serve --bind "127.0.0.1:$port" --db "$db" --log-level warning 2>"$dir/log" &
server=$!
for _ in $(seq 600); do
  grep -q "listening on" "$dir/log" && break
  sleep 0.1
done
token=$(grep -o 'eyJ[A-Za-z0-9._-]*' "$dir/log" | head -n 1)
[ -n "$token" ] || { cat "$dir/log" >&2; exit 1; }

python3 - "$port" "$token" "$workload" "$n" "$server" <<'PY'
import http.client, json, subprocess, sys
port, token, workload, n, pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
# One keep-alive connection, as the benchmark's clients: the profile is of
# requests, not of connections.
conn = http.client.HTTPConnection("127.0.0.1", int(port))
def call(method, path, body=None, bearer=token):
    conn.request(method, path, body=None if body is None else json.dumps(body),
                 headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"})
    r = conn.getresponse()
    answer = r.read()
    assert r.status < 300, (method, path, r.status)
    return answer
# A registry to read, and a warm-up of the workload itself.
keys = [json.loads(call("POST", "/v0/runners", {"name": f"seed runner {i:05}"}))["token"]
        for i in range(1000)]
def once(i):
    if workload == "create":
        call("POST", "/v0/runners", {"name": f"profiled runner {i:05}"})
    elif workload == "view":
        call("GET", f"/v0/runners/seed-runner-{i % 1000:05}")
    elif workload == "list":
        call("GET", "/v0/runners?per_page=8")
    elif workload == "search":
        call("GET", "/v0/runners?per_page=8&search=unner%20001")
    elif workload == "rotate":
        # The last 100 runners: the heartbeats use the first ones' keys.
        call("POST", f"/v0/runners/seed-runner-{900 + i % 100:05}/key")
    elif workload == "heartbeat":
        call("POST", f"/v0/runners/seed-runner-{i % 16:05}/heartbeat", bearer=keys[i % 16])
    else:
        raise SystemExit(f"unknown workload {workload}")
for i in range(200):
    once(100000 + i)
subprocess.run(["callgrind_control", "--instr=on", str(pid)], check=True, capture_output=True)
for i in range(n):
    once(i)
subprocess.run(["callgrind_control", "--instr=off", str(pid)], check=True, capture_output=True)
PY
kill -TERM "$server"
wait "$server" || true
echo "callgrind: $workload, $n requests; profile in $profile"
total=$(callgrind_annotate "$profile" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
echo "instructions per request: $(( total / n ))"
callgrind_annotate --inclusive=yes "$profile" 2>/dev/null | sed -n '/^Ir/,$p' | head -45
