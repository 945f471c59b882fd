# Shared by the example scripts: start `tollgate` nodes as plain processes on this
# machine, wait for them, check that every gateway serves a freshly deployed API, stop them.
# Needs: a tollgate binary (TG_BIN, default: on PATH or the release build), python3,
# curl; for the PostgreSQL patterns a PostgreSQL server (PG_URL, default
# postgres://postgres@127.0.0.1:5432) and psql.
set -euo pipefail
EXAMPLES=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${TG_BIN:-$(command -v tollgate || echo "${CARGO_TARGET_DIR:-$EXAMPLES/../target}/release/tollgate")}
[ -x "$BIN" ] || { echo "no tollgate binary at $BIN: cargo build --release -p tollgate, or set TG_BIN" >&2; exit 64; }
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
RUN=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-example.XXXXXX")
export TOLLGATE_CLUSTER__SECRET=${TOLLGATE_CLUSTER__SECRET:-example-cluster-secret-$(date +%s)-0123456789}
export TOLLGATE_ADMIN_PASSWORD=${TOLLGATE_ADMIN_PASSWORD:-example-admin-password}
export TOLLGATE_KEY_MANAGER__SECRET=${TOLLGATE_KEY_MANAGER__SECRET:-example-key-manager-secret-0123456789abcdef}
export TOLLGATE_LOG__LEVEL=${TOLLGATE_LOG__LEVEL:-warn}
PIDS=()
GATEWAYS=()

DATABASES=()
stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for db in "${DATABASES[@]}"; do psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
}
trap stop_all EXIT

# Two fresh PostgreSQL databases (AM and shared) for this run, dropped when it ends;
# exports their URLs.
fresh_databases() {
  local name="tollgate_example_$$"
  psql "$PG_URL/postgres" -qc "CREATE DATABASE ${name}_am" -c "CREATE DATABASE ${name}_shared" >/dev/null
  DATABASES+=("${name}_am" "${name}_shared")
  export TOLLGATE_DATABASE__AM__URL="$PG_URL/${name}_am"
  export TOLLGATE_DATABASE__SHARED__URL="$PG_URL/${name}_shared"
  echo "databases: $TOLLGATE_DATABASE__AM__URL, $TOLLGATE_DATABASE__SHARED__URL"
}

# start NAME CONFIG MGMT_PORT [ENV=VALUE...]: a node from examples/config/CONFIG with its
# own data directory and management port; logs in $RUN/NAME.log.
start() {
  local name=$1 config=$2 mgmt=$3
  shift 3
  env TOLLGATE_NODE__DATA_DIR="$RUN/$name" TOLLGATE_MANAGEMENT__LISTEN="127.0.0.1:$mgmt" "$@" \
    "$BIN" serve --config "$EXAMPLES/config/$config" > "$RUN/$name.log" 2>&1 &
  PIDS+=($!)
  echo "started $name (config/$config, management 127.0.0.1:$mgmt, log $RUN/$name.log)"
}

# ready MGMT_PORT...: waits until each node answers /health/ready with 200.
ready() {
  for port in "$@"; do
    for _ in $(seq 1 600); do
      curl -sf "127.0.0.1:$port/health/ready" > /dev/null && continue 2
      sleep 0.1
    done
    echo "the node on management port $port is not ready; its log:" >&2
    grep -l "127.0.0.1:$port" "$RUN"/*.log | xargs tail -n 20 >&2 || true
    exit 69
  done
}

# check MGMT_PORT ENVIRONMENT GATEWAY_PORT...: deploys a new API to ENVIRONMENT through the
# control plane and waits until every listed gateway serves it (401: routed, wants a token).
check() {
  local mgmt=$1 environment=$2
  shift 2
  python3 - "$mgmt" "$environment" "$@" <<'PY'
import http.client, os, sys, time
sys.path.insert(0, os.path.join(os.environ["EXAMPLES"], "..", "bench"))
from tollgate_rest import Rest
mgmt, environment, gateways = int(sys.argv[1]), sys.argv[2], [int(p) for p in sys.argv[3:]]
rest = Rest(mgmt, admin=("admin", os.environ["TOLLGATE_ADMIN_PASSWORD"]))
rest.call("POST", "/api/am/admin/v4/environments", {"name": environment, "displayName": environment, "type": "hybrid",
          "vhosts": [{"host": "localhost", "httpPort": 8280}]}, expect=(201, 409)) if environment != "Default" else None
suffix = time.time_ns()
api, rev = rest.create(f"Example{suffix}", f"/example{suffix}", f"http://127.0.0.1:{mgmt}/health")
context = rest.call("GET", f"/api/am/publisher/v4/apis/{api}")["context"]
rest.deploy_revision(api, rev, environment)
for port in gateways:
    deadline = time.time() + 10
    while True:
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request("GET", f"{context}/1.0.0/live")
        status = c.getresponse().status
        if status == 401:
            print(f"  gateway 127.0.0.1:{port} ({environment}) serves {context}")
            break
        if time.time() > deadline:
            sys.exit(f"gateway 127.0.0.1:{port} still answers {status} for {context}")
        time.sleep(0.05)
PY
}

# finish: keeps the nodes running with KEEP=1 (Ctrl-C stops them), else stops them.
finish() {
  echo "ok: every gateway serves what the control plane deployed"
  if [ "${KEEP:-0}" = 1 ]; then
    echo "nodes keep running (Ctrl-C stops them); admin password: $TOLLGATE_ADMIN_PASSWORD"
    wait
  fi
}
export EXAMPLES
