#!/usr/bin/env bash
# Acceptance with Bencher's own runner agent: a job queued here is claimed
# by `runner up` (Bencher v0.6.12, built unmodified, outside this
# repository), run from a private image in a registry on 127.0.0.1 that
# trusts this server's tokens (distribution with `auth: token`, configured
# by `runners-server registry-config`), and ends `completed` with the line
# it printed.
#
# Needs: the agent binary (RUNNER=/path/to/runner), Debian's
# docker-registry, skopeo, busybox-static, jq and curl, and a built
# runners-server (SERVER, default target/release/runners-server).
# Usage: RUNNER=/tmp/bencher/target/release/runner [BENCHER=.../bencher (v0.6.12)]
#        [BENCHER_062=.../bencher (v0.6.2)] scripts/bencher-agent-acceptance.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runner=${RUNNER:?set RUNNER to the path of the runner binary of Bencher v0.6.12}
server_bin=${SERVER:-target/release/runners-server}
for tool in docker-registry skopeo jq curl; do
  command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install docker-registry skopeo jq curl)" >&2; exit 1; }
done
file -L /usr/bin/busybox | grep -q 'statically linked' \
  || { echo "missing: a static /usr/bin/busybox (apt-get install busybox-static)" >&2; exit 1; }

dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # The agent leaves an empty cgroup behind on cgroup v1 hosts.
  rmdir /sys/fs/cgroup/bencher 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# 1. This server, then a registry on 127.0.0.1 that trusts its tokens and
#    refuses anonymous pulls.
reg_port=$(free_port)
port=$(free_port)
url="http://127.0.0.1:$port"
"$server_bin" --bind "127.0.0.1:$port" --db "$dir/runners.db" \
  --registry-url "http://127.0.0.1:$reg_port" 2>"$dir/server.log" &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$dir/server.log" && break; sleep 0.1; done
token=$(grep -o 'eyJ[A-Za-z0-9._-]*' "$dir/server.log" | head -n 1)
{
  printf 'version: 0.1\nstorage: { filesystem: { rootdirectory: %s } }\n' "$dir/registry"
  printf 'http: { addr: "127.0.0.1:%s" }\n' "$reg_port"
  "$server_bin" registry-config --db "$dir/runners.db" --server-url "$url" --bundle "$dir/bundle.pem"
} > "$dir/registry.yml"
docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$reg_port/v2/")" = 401 ] && break; sleep 0.1
done

# 2. A one-layer image written by hand: busybox, running `cmd` (a JSON
#    array), pushed to `repository:tag`; prints its digest.
project=3f1c2d4e-1234-4abc-8def-000000000001
line='{"bench":{"latency":{"value":1.0}}}'
mkdir -p "$dir/rootfs/bin"
install -m 0755 /usr/bin/busybox "$dir/rootfs/bin/busybox"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='1970-01-01 00:00:00Z' \
  -C "$dir/rootfs" -cf "$dir/layer.tar" bin
diff_id="sha256:$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)"
gzip -n -9 -c "$dir/layer.tar" > "$dir/layer.tgz"
push_image() { # repository tag cmd-json creds (user:credential)
  local layout="$dir/layout-$RANDOM" blobs hex
  blobs="$layout/blobs/sha256"; mkdir -p "$blobs"
  blob() { hex=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" "$blobs/$hex"; echo "$hex"; }
  cp "$dir/layer.tgz" "$dir/l.tgz"
  local layer_size layer config_size config manifest_size manifest
  layer_size=$(stat -c %s "$dir/l.tgz"); layer=$(blob "$dir/l.tgz")
  jq -cn --argjson cmd "$3" --arg diff "$diff_id" '{architecture: "amd64", os: "linux",
    config: {Env: ["PATH=/bin"], Cmd: $cmd}, rootfs: {type: "layers", diff_ids: [$diff]}}' > "$dir/config.json"
  config_size=$(stat -c %s "$dir/config.json"); config=$(blob "$dir/config.json")
  jq -cn --arg c "sha256:$config" --argjson cs "$config_size" --arg l "sha256:$layer" --argjson ls "$layer_size" '{
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
    layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l, size: $ls}]}' > "$dir/manifest.json"
  manifest_size=$(stat -c %s "$dir/manifest.json"); manifest=$(blob "$dir/manifest.json")
  jq -cn --arg m "sha256:$manifest" --argjson ms "$manifest_size" '{schemaVersion: 2,
    manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $ms,
                 annotations: {"org.opencontainers.image.ref.name": "latest"}}]}' > "$layout/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
  skopeo copy --quiet --preserve-digests --dest-tls-verify=false --dest-creds "$4" \
    "oci:$layout:latest" "docker://127.0.0.1:$reg_port/$1:$2" || return 1
  echo "sha256:$manifest"
}
digest=$(push_image "$project" latest "$(jq -cn --arg line "$line" '["/bin/busybox", "echo", $line]')" "admin:$token")
anon=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$reg_port/v2/$project/manifests/$digest")
[ "$anon" = 401 ] && echo "PASS: the registry refuses an anonymous pull (HTTP $anon)" \
  || { echo "FAIL: an anonymous pull answered $anon" >&2; exit 1; }

# 3. A fallback spec, a runner that has it, and a job.
api() { curl -sf -X "$1" "$url$2" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' ${3:+-d "$3"}; }
api POST /v0/specs '{"name": "Linux small", "architecture": "x86_64", "os": "linux", "cpu": 1,
  "memory": 1073741824, "disk": 1073741824, "fallback": true}' >/dev/null
key=$(api POST /v0/runners '{"name": "Bencher agent"}' | jq -r .key)
api POST /v0/runners/bencher-agent/specs '{"spec": "linux-small"}' >/dev/null

# 4. Bencher's agent, waiting on its channel; then the job.
"$runner" up --host "$url" --key "$key" --runner bencher-agent --poll-timeout 30 \
  --danger-allow-no-sandbox --no-auto-update --no-tuning >"$dir/agent.log" 2>&1 &
pids+=($!)
sleep 2
job=$(api POST /v0/jobs "{\"registry\": \"http://127.0.0.1:$reg_port\", \"project\": \"$project\",
  \"digest\": \"$digest\"}" | jq -r .uuid)
echo "job $job queued; waiting for Bencher's agent"
for _ in $(seq 300); do
  status=$(api GET "/v0/jobs/$job" | jq -r .status)
  case $status in completed|failed|canceled) break ;; esac
  sleep 0.1
done
api GET "/v0/jobs/$job" | jq '{status, runner, claimed, started, completed, output}'
stdout=$(api GET "/v0/jobs/$job" | jq -r '.output.results[0].stdout')
if [ "$status" = completed ] && [ "$stdout" = "$line" ]; then
  echo "PASS: Bencher's agent pulled the private image with its job's oci_token and completed the job with the line it printed"
else
  echo "FAIL: status $status, stdout $stdout" >&2
  tail -20 "$dir/agent.log" >&2
  exit 1
fi

# 5. Bencher's CLI (BENCHER=/path/to/bencher, v0.6.12): a project, its key,
#    and `bencher run --image` with that key while the agent waits.
# 5a. Bencher's CLI v0.6.2 (BENCHER_062=...): every runner and spec command,
#     --strict, against the same server.
if [ -n "${BENCHER_062:-}" ]; then
  o() { "$BENCHER_062" "$@" --host "$url" --token "$token" --attempts 1 --strict </dev/null >/dev/null; }
  o spec create --name "Old CLI box" --slug old-cli-box --os linux --architecture x86_64 \
    --cpu 2 --memory 1073741824 --disk 1073741824
  o spec list && o spec view old-cli-box && o spec update old-cli-box --name "Old CLI box 2"
  o runner create --name "Old CLI" --slug old-cli && o runner list && o runner view old-cli
  o runner update old-cli --name "Old CLI 2" && o runner token old-cli
  o runner spec add old-cli --spec old-cli-box && o runner spec list old-cli
  o runner spec remove old-cli old-cli-box && o spec delete old-cli-box
  o runner update old-cli --archive
  echo "PASS: Bencher's CLI v0.6.2: spec create|list|view|update|delete, runner create|list|view|update|token, runner spec add|list|remove (--strict)"
fi

bencher=${BENCHER:-}
if [ -z "$bencher" ]; then
  echo "SKIPPED the CLI part: set BENCHER to Bencher v0.6.12's CLI to run it"
  exit 0
fi
b() { "$bencher" "$@" --host "$url" --attempts 1 --strict </dev/null; }
b project create default --name Bench --slug bench --token "$token" >/dev/null
uuid=$(b project view bench --token "$token" | jq -r .uuid)
pkey=$(b project key create bench --name ci --token "$token" | jq -r .key)
b project key list bench --token "$token" | jq -e 'length == 1' >/dev/null
ukey=$(b user key create admin --name laptop --token "$token" | jq -r .key)
b user key list admin --key "$ukey" | jq -e 'length == 1' >/dev/null
spare=$(b user key create admin --name spare --key "$ukey" | jq -r .uuid)
b user key revoke admin "$spare" --key "$ukey" >/dev/null
b user key list admin --key "$ukey" | jq -e 'length == 1' >/dev/null
b project list --key "$ukey" | jq -e '.[0].slug == "bench"' >/dev/null
echo "PASS: project create|view|list, project key create|list, user key create|list|revoke (--strict)"

push_image "$uuid" v1 "$(jq -cn --arg line "$line" '["/bin/busybox", "echo", $line]')" "ci:$pkey" >/dev/null
echo "PASS: skopeo pushed $uuid:v1 with the project key (--dest-creds ci:bencher_run_…)"
if push_image "$project" v1 '["/bin/busybox", "true"]' "ci:$pkey" >/dev/null 2>"$dir/denied.log"; then
  echo "FAIL: the project key pushed to another project's repository" >&2; exit 1
fi
echo "PASS: the project key cannot push to another repository: $(grep -o -m1 'denied[^\]*' "$dir/denied.log" | head -c 80)"
run() { "$bencher" run --host "$url" --key "$pkey" --project bench --adapter json \
  --job-poll-interval 1 --attempts 1 --strict --image "$@" </dev/null; }
if out=$(run "127.0.0.1:$reg_port/$uuid:v1" 2>&1); then
  echo "$out" | grep -q 'Job status: Processed' && echo "PASS: bencher run --image exited 0 with the report"
else
  echo "FAIL: bencher run --image exited non-zero:" >&2; echo "$out" >&2; tail -20 "$dir/agent.log" >&2; exit 1
fi
echo "$out" | grep -A12 '^Job status' 

push_image "$uuid" fails '["/bin/busybox", "false"]' "ci:$pkey" >/dev/null
if out=$(run "127.0.0.1:$reg_port/$uuid:fails" 2>&1); then
  echo "FAIL: a failing image's run exited 0" >&2; echo "$out" >&2; exit 1
fi
echo "PASS: a failing image's run exited non-zero: $(echo "$out" | grep -m1 'Job status')"

push_image "$uuid" sleeps '["/bin/busybox", "sleep", "60"]' "ci:$pkey" >/dev/null
run "127.0.0.1:$reg_port/$uuid:sleeps" >"$dir/cancel.log" 2>&1 &
cli=$!
for _ in $(seq 100); do
  job=$(api GET "/v0/projects/bench/jobs?status=running" | jq -r '.[0].uuid // empty')
  [ -n "$job" ] && break; sleep 0.2
done
api POST "/v0/jobs/$job/cancel" >/dev/null
if wait "$cli"; then echo "FAIL: a canceled run exited 0" >&2; cat "$dir/cancel.log" >&2; exit 1; fi
echo "PASS: a run whose job was canceled exited non-zero: $(grep -i -m1 cancel "$dir/cancel.log")"

code() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $pkey" "$url$1" "${@:2}"; }
[ "$(code /v0/runners)" = 403 ] && [ "$(code /v0/jobs -X POST -H 'Content-Type: application/json' -d '{}')" = 403 ] \
  && echo "PASS: the project key is 403 on GET /v0/runners and POST /v0/jobs"
key_uuid=$(b project key list bench --token "$token" | jq -r '.[0].uuid')
b project key revoke bench "$key_uuid" --token "$token" >/dev/null
sleep 1.2
[ "$(code /v0/projects/bench/jobs)" = 401 ] && echo "PASS: the project key is 401 once revoked"
b job list bench --key "$ukey" | jq -e 'length == 3' >/dev/null
b job view bench "$job" --key "$ukey" | jq -e '.status == "canceled"' >/dev/null \
  && echo "PASS: job list and view (--strict)"
