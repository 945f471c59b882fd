#!/usr/bin/env bash
# `tollgate apply` of N API projects (default 1 000) into an empty all-in-one release node
# (SQLite), then the same tree again (nothing to change), then again with one project
# changed. Each project is an API with 5 resources, an OpenAPI definition, a document and
# a deployment to Default, as `tollgate export apis --unzip` writes them; `apply` first
# checks every project with a dry run, then imports what differs.
#
# Needs: curl, python3, free ports 9443, 8280 and 9611, and a release build
# (cargo build --release -p tollgate).
# Usage: [BENCH_BIN=path/to/tollgate] [PROJECTS=1000] bash bench/apply.sh
set -euo pipefail
BIN=${BENCH_BIN:-${CARGO_TARGET_DIR:-target}/release/tollgate}
PROJECTS=${PROJECTS:-1000}
[ -x "$BIN" ] || { echo "no binary at $BIN; run cargo build --release -p tollgate (or set BENCH_BIN)" >&2; exit 64; }
WORK=$(mktemp -d)
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
cd "$WORK"

python3 - "$PROJECTS" <<'PY'
import json, os, sys
n = int(sys.argv[1])
for i in range(n):
    name = f"Bench{i:04d}"
    d = f"tree/{name}-1.0.0"
    os.makedirs(f"{d}/Definitions", exist_ok=True)
    os.makedirs(f"{d}/Docs/Guide", exist_ok=True)
    ops = [{"target": t, "verb": v} for t, v in
           [("/items", "GET"), ("/items", "POST"), ("/items/{id}", "GET"), ("/items/{id}", "PUT"), ("/items/{id}", "DELETE")]]
    api = {"type": "api", "version": "v4.5.0", "data": {
        "name": name, "version": "1.0.0", "context": f"/bench{i}", "policies": ["Gold", "Unlimited"],
        "lifeCycleStatus": "PUBLISHED", "tags": ["bench"],
        "endpointConfig": {"endpoint_type": "http", "production_endpoints": {"url": f"http://127.0.0.1:9/{name}"}},
        "operations": ops}}
    json.dump(api, open(f"{d}/api.json", "w"), indent=1)
    paths = {}
    for o in ops:
        paths.setdefault(o["target"], {})[o["verb"].lower()] = {"responses": {"200": {"description": "ok"}}}
    json.dump({"openapi": "3.0.1", "info": {"title": name, "version": "1.0.0"}, "paths": paths},
              open(f"{d}/Definitions/swagger.json", "w"), indent=1)
    json.dump({"type": "deployment_environments", "version": "v4.5.0",
               "data": [{"deploymentEnvironment": "Default", "displayOnDevportal": True}]},
              open(f"{d}/deployment_environments.json", "w"))
    json.dump({"type": "document", "version": "v4.5.0",
               "data": {"name": "Guide", "type": "HOWTO", "sourceType": "MARKDOWN", "visibility": "API_LEVEL"}},
              open(f"{d}/Docs/Guide/document.json", "w"))
    open(f"{d}/Docs/Guide/Guide", "w").write(f"# {name}\n\nHow to call it.\n")
PY

export TOLLGATE_ADMIN_PASSWORD=bench-admin-password
"$BIN" serve --data-dir data > node.log 2>&1 &
PID=$!
for _ in $(seq 1 300); do curl -sf localhost:9443/health/ready >/dev/null && break; sleep 0.1; done
curl -sf localhost:9443/health/ready >/dev/null || { echo "the node did not become ready: $(tail -5 node.log)" >&2; exit 1; }
CONN=(--server http://127.0.0.1:9443 --user admin --password bench-admin-password)

run() { # log name, what it is; prints the seconds and apply's summary line
  local log=$1 what=$2 start end
  start=$(date +%s.%N)
  "$BIN" apply -f tree "${CONN[@]}" > "$log.log"
  end=$(date +%s.%N)
  printf '%-28s %7.1f s   %s\n' "$what" "$(python3 -c "print($end - $start)")" "$(tail -1 "$log.log")"
}

echo "tollgate apply of $PROJECTS API projects ($(nproc) cores, $(date -u +%F))"
run first "into an empty node"
run noop "again (nothing to change)"
sed -i 's/"tags": \[/"tags": ["changed", /' "tree/Bench0000-1.0.0/api.json"
run changed "again, one project changed"
grep -q "Nothing to change" noop.log || { echo "the second run changed something" >&2; exit 1; }
echo "node: $(grep -c 'API project imported' node.log) imports logged; peak RSS $(grep VmHWM /proc/$PID/status | awk '{print $2/1024 " MiB"}')"
