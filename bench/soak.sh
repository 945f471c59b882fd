#!/usr/bin/env bash
# Soak with faults (issue 25): a distributed deployment on this machine -- a control plane
# (publisher, devportal, admin, key manager, analytics), a traffic manager (the event hub,
# throttle counters in Redis) and two gateway nodes, as separate `tollgate serve` processes on
# a dedicated pair of PostgreSQL databases (created here, dropped at the end) and a dedicated
# Redis -- carries load at LOAD_SHARE (80 %) of the peak measured just before, for DURATION
# seconds (1800), while bench/soak.py
#   - every 1-3 s deploys or undeploys an API, deploys a new revision of the loaded API (with a
#     new backend path), issues and revokes a token, or switches a plan between 1 per day and
#     2e9 per minute, and checks each change at both gateways (200/404, the new backend path,
#     401 900901, 429 900804 or 5 admissions in a row);
#   - kills -9 the traffic manager and the control plane at random moments (each every 45-240
#     s; 20-60 s in a short run) and starts them again after 0-5 s;
#   - reads RSS, open descriptors, threads and the live heap (decision 015) of every node
#     every 5 s (2 s in a short run) and reports each minute's floor and peak (10 s intervals
#     in a short run).
# It reports load answers by status per gateway (every one must be 2xx: the load's token is
# never revoked, its plan is counted but never reached, JWTs are checked offline and gateways
# serve their state through hub outages, so no documented fallback answer applies to it), the
# probes' answers by status and code, each kind of change with its propagation latency, and
# RSS/fds per node over time; it exits 1 when a load answer was not 2xx, a change did not reach
# a gateway within the bound decision 008 implies (30 s once the hub is up), a node crashed,
# or a node grew more than GROWTH_BOUND (5 %) after warm-up (Tollgate nodes: the live heap and
# descriptors; see growth_check). docs/soak.md has the reasoning.
#
# Choices: the load generator is `hey` (Debian; a rate limit per worker, status codes counted),
# run in SAMPLE-long segments per gateway so that answers are known per minute; the peak is
# measured with the same tool (it shares the 2 cores with the nodes, so the peak is this
# machine's with this generator). The backend is nginx (static 64-byte body, and the path it
# was called with in X-Path, so that a gateway's revision is visible). Each node runs in its own
# session, as a service manager would run it (kernel autogroup scheduling).
#
# Needs: python3, psql/createdb/dropdb (PostgreSQL at $PGURL), redis-server, nginx and hey
# (apt-get install nginx-light hey redis-server postgresql-client), and a tollgate binary:
# TOLLGATE_BIN, or else it is built (cargo build --release -p tollgate --features heap-stats:
# the feature counts the live heap the growth check judges). Usage:
#   [TOLLGATE_BIN=path] [DURATION=1800] [SEED=n] [SOAK_OUT=dir] bash bench/soak.sh
# CI runs the short version: DURATION=120.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export DURATION=${DURATION:-1800}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
BASE=${SOAK_PORT_BASE:-21000}
if [ -z "${TOLLGATE_BIN:-}" ]; then
  (cd "$HERE/.." && cargo build --release -p tollgate --features heap-stats)
  TOLLGATE_BIN=${CARGO_TARGET_DIR:-$HERE/../target}/release/tollgate
fi
[ -x "$TOLLGATE_BIN" ] || { echo "no tollgate binary at $TOLLGATE_BIN" >&2; exit 64; }
for tool in python3 psql createdb dropdb redis-server nginx hey; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install nginx-light hey redis-server postgresql-client" >&2; exit 64; }
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-soak.XXXXXX")
DB=tollgate_soak_$$
REDIS_PORT=$((BASE + 40)) BACKEND_PORT=$((BASE + 30))
REDIS_PID=
cleanup() {
  [ -n "${DRIVER_PID:-}" ] && kill "$DRIVER_PID" 2>/dev/null || true
  # The nodes the driver started (it stops them itself unless it was interrupted).
  [ -f "$WORK/pids" ] && while read -r p; do kill -9 "$p" 2>/dev/null || true; done < "$WORK/pids"
  [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null || true
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  for d in am shared; do dropdb -h 127.0.0.1 -U postgres --if-exists --force "${DB}_$d" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

createdb -h 127.0.0.1 -U postgres "${DB}_am"
createdb -h 127.0.0.1 -U postgres "${DB}_shared"
setsid redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --daemonize no \
  > "$WORK/redis.log" 2>&1 &
REDIS_PID=$!
cat > "$WORK/nginx.conf" <<EOF
worker_processes 1; pid $WORK/nginx.pid; error_log $WORK/nginx.err warn; daemon on;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$BACKEND_PORT; default_type text/plain;
    location / { add_header X-Path \$uri always; return 200 "soak backend: 64 bytes of body, the same for every path....\n"; } } }
EOF
nginx -c "$WORK/nginx.conf" -p "$WORK"
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

echo "soak: $DURATION s; binary $TOLLGATE_BIN; work dir $WORK" >&2
SOAK_BIN=$TOLLGATE_BIN SOAK_WORK=$WORK SOAK_PORT_BASE=$BASE SOAK_BACKEND_PORT=$BACKEND_PORT \
SOAK_REDIS_PID=$REDIS_PID SOAK_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0 \
SOAK_DB_AM=$PGURL/${DB}_am SOAK_DB_SHARED=$PGURL/${DB}_shared \
  python3 -u "$HERE/soak.py" &
DRIVER_PID=$!
wait "$DRIVER_PID"
