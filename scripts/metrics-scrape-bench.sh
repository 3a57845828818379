#!/usr/bin/env bash
# The metrics' scrape at a large registry: seeds N runners (default
# 100,000; half of them online, 1,000 busy) and 1,000 pending jobs into a
# fresh SQLite file, starts the server with --metrics-listen, prints the
# query plan of each statement a scrape runs (an index each, no statement
# per runner), then times 200 scrapes and prints their latency.
# Usage: SERVER=target/release/runners-server [N=100000] scripts/metrics-scrape-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
server=${SERVER:-target/release/runners-server}
n=${N:-100000}
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
db="$dir/runners.db"
"$server" token create --user admin --admin --db "$db" >/dev/null
now=2026-12-08T00:00:00.000000Z
sqlite3 "$db" <<SQL
INSERT INTO specs (uuid, name, name_folded, slug, architecture, os, cpu, memory, disk, network,
                   created, modified)
  VALUES ('00000000-0000-4000-8000-000000000001', 'Bench', 'bench', 'bench', 'x86_64', 'linux',
          1, 1073741824, 1073741824, 0, '$now', '$now');
WITH RECURSIVE i(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM i WHERE k < $n)
INSERT INTO runners (uuid, name, name_folded, slug, token_hash, created, modified)
  SELECT printf('00000000-0000-4000-8000-%012d', k), 'runner ' || k, 'runner ' || k,
         'runner-' || k, randomblob(32), '$now', '$now' FROM i;
WITH RECURSIVE i(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM i WHERE k < 1000)
INSERT INTO jobs (uuid, status, spec_id, priority, config, timeout, created, modified)
  SELECT printf('00000000-0000-4000-9000-%012d', k), 'pending', 1, 0, '{}', 3600, '$now', '$now'
  FROM i;
SQL
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$server" --bind 127.0.0.1:0 --db "$db" --metrics-listen "127.0.0.1:$port" 2>"$dir/server.log" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$dir/server.log" && break; sleep 0.1; done
# Online and busy once it serves (a start closes the channels it finds).
sqlite3 "$db" "PRAGMA busy_timeout = 5000;
  UPDATE runners SET channel = '$now' WHERE id % 2 = 0;
  WITH RECURSIVE i(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM i WHERE k < 1000)
  INSERT INTO jobs (uuid, status, spec_id, runner_id, priority, config, timeout, claimed, started,
                    created, modified)
    SELECT printf('00000000-0000-4000-a000-%012d', k), 'running', 1, k * 2, 0, '{}', 3600,
           '$now', '$now', '$now', '$now' FROM i;"
echo "== the statements a scrape runs, and their plans"
for sql in \
  "SELECT active FROM runner_counts WHERE id = 1" \
  "SELECT count(*) FROM runners WHERE channel IS NOT NULL AND archived IS NULL" \
  "SELECT count(DISTINCT j.runner_id), count(DISTINCT CASE WHEN r.channel IS NOT NULL THEN j.runner_id END) FROM jobs j JOIN runners r ON r.id = j.runner_id WHERE j.status IN ('claimed', 'running') AND r.archived IS NULL" \
  "SELECT pending, claimed, running, completed, processed, failed, canceled FROM job_counts" \
  "SELECT s.slug, count(*) FROM jobs j JOIN specs s ON s.id = j.spec_id WHERE j.status = 'pending' GROUP BY s.slug ORDER BY s.slug"; do
  echo "-- $sql"
  sqlite3 "$db" "EXPLAIN QUERY PLAN $sql" | sed 's/^/   /'
done
url="http://127.0.0.1:$port/metrics"
curl -sf "$url" | grep -E '^runners_(runners|jobs|pending_jobs)' 
for _ in $(seq 10); do curl -sf -o /dev/null "$url"; done
echo "== 200 scrapes at $n runners (seconds)"
for _ in $(seq 200); do curl -sf -o /dev/null -w '%{time_total}\n' "$url"; done | sort -n \
  | awk '{ t[NR] = $1 } END { printf "p50 %s  p90 %s  p99 %s  max %s\n", t[int(NR*0.5)], t[int(NR*0.9)], t[int(NR*0.99)], t[NR] }'
