#!/usr/bin/env bash
# Two runners-server replicas on one PostgreSQL database, poked with curl
# (issue 19 smoke test, not a test of record):
#   .ci/postgres -- scripts/pg-replicas-smoke.sh
# Uses target/debug/runners-server (or $RUNNERS_SERVER), ports 61901 and 61902.
set -u
bin=${RUNNERS_SERVER:-${CARGO_TARGET_DIR:-target}/debug/runners-server}
work=$(mktemp -d)
$bin serve --bind 127.0.0.1:61901 --db "$RUNNERS_TEST_PG" >"$work/a.out" 2>"$work/a.err" &
a=$!
$bin serve --bind 127.0.0.1:61902 --db "$RUNNERS_TEST_PG" >"$work/b.out" 2>"$work/b.err" &
b=$!
for i in $(seq 50); do
  curl -fs 127.0.0.1:61901/v0/server/version >/dev/null && curl -fs 127.0.0.1:61902/v0/server/version >/dev/null && break
  sleep 0.2
done
token=$(grep -oE 'ey[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+' "$work/a.err" "$work/b.err" | head -1 | cut -d: -f2)
echo "admin token found: ${token:+yes}"
H=(-H "Authorization: Bearer $token" -H 'Content-Type: application/json')
echo "--- create on A"; curl -s "${H[@]}" -X POST 127.0.0.1:61901/v0/runners -d '{"name":"Bare metal 1"}' | cut -c1-80; echo
echo "--- list on B"; curl -s -D - "${H[@]}" '127.0.0.1:61902/v0/runners?search=metal' | grep -iE 'x-total-count|bare' | cut -c1-160
echo "--- spec on B (fallback), job on A, job seen on B"
curl -s "${H[@]}" -X POST 127.0.0.1:61902/v0/specs -d '{"name":"Linux","architecture":"x86_64","os":"linux","cpu":2,"memory":1024,"disk":1024,"fallback":true}' | cut -c1-100; echo
job=$(curl -s "${H[@]}" -X POST 127.0.0.1:61901/v0/jobs -d '{"registry":"http://127.0.0.1:5000","project":"8f2b1c8e-1111-4a4a-9b9b-123456789abc","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}' | python3 -c 'import sys,json; print(json.load(sys.stdin).get("uuid"))')
curl -s "${H[@]}" "127.0.0.1:61902/v0/jobs/$job" | cut -c1-100; echo
echo "--- a duplicate slug on B: 409"; curl -s -o /dev/null -w '%{http_code}\n' "${H[@]}" -X POST 127.0.0.1:61902/v0/runners -d '{"name":"x","slug":"bare-metal-1"}'
echo "--- no token: 401"; curl -s -o /dev/null -w '%{http_code}\n' 127.0.0.1:61902/v0/runners
kill -TERM $a $b; wait $a; echo "A exit $?"; wait $b; echo "B exit $?"
echo "--- stderr lines naming the database:"; grep -h "with database" "$work/a.err" "$work/b.err"
rm -rf "$work"
