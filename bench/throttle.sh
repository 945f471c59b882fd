#!/usr/bin/env bash
# Throttling accuracy (the Throttling issue's benchmark), on one machine with real processes on
# PostgreSQL: a control plane, one traffic manager with in-process counters (gateways 0-2
# follow it) and two traffic managers sharing counters in Redis (gateways 3-4 follow the first,
# gateway 5 the second). For limits of 10/min, 600/min and 1000/s it offers 3x the limit through
# N = 1, 2, 3 gateways, round-robin and 80/10/10, and prints admitted/L per window; then the
# throughput cost of throttling on one gateway (wrk, when installed).
#
# Needs: python3, curl, createdb/dropdb (PostgreSQL at $PGURL), Redis at $REDIS_URL, a release
# build (cargo build --release -p tollgate). Usage:
#   [BENCH_BIN=path/to/tollgate] [WINDOWS=3] bash bench/throttle.sh
set -euo pipefail
BIN=${BENCH_BIN:-${CARGO_TARGET_DIR:-target}/release/tollgate}
WINDOWS=${WINDOWS:-3}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
SECRET=bench-cluster-secret-0123456789
MGMT=19643 TM0=19721 GW0=18480
DB=tollgate_bench_throttle_$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  dropdb -h 127.0.0.1 -U postgres --if-exists "${DB}_am" 2>/dev/null || true
  dropdb -h 127.0.0.1 -U postgres --if-exists "${DB}_shared" 2>/dev/null || true
}
trap cleanup EXIT
[ -x "$BIN" ] || { echo "no release binary at $BIN; run cargo build --release -p tollgate" >&2; exit 64; }
createdb -h 127.0.0.1 -U postgres "${DB}_am"
createdb -h 127.0.0.1 -U postgres "${DB}_shared"

wait_ready() { # mgmt-port
  for _ in $(seq 1 3000); do curl -sf "localhost:$1/health/ready" >/dev/null && return 0; sleep 0.01; done
  echo "node on $1 not ready (logs in $WORK)" >&2; exit 69
}
node() { # name mgmt-port profile [VAR=value...]
  local name=$1 port=$2 profile=$3; shift 3
  env TOLLGATE_CLUSTER__SECRET=$SECRET TOLLGATE_MANAGEMENT__LISTEN=127.0.0.1:$port \
    TOLLGATE_DATABASE__AM__URL="$PGURL/${DB}_am" TOLLGATE_DATABASE__SHARED__URL="$PGURL/${DB}_shared" \
    TOLLGATE_NODE__DATA_DIR="$WORK/$name" TOLLGATE_LOG__LEVEL=warn "$@" \
    "$BIN" serve --profile "$profile" > "$WORK/$name.log" 2>&1 &
  PIDS+=($!)
}

cd "$WORK"
echo "logs: $WORK" >&2
node control $MGMT control-plane TOLLGATE_NODE__COMPONENTS=publisher,devportal,admin,key-manager \
  TOLLGATE_ADMIN_PASSWORD=bench-admin-password TOLLGATE_KEY_MANAGER__TOKEN_REQUESTS_PER_SECOND=100000
wait_ready $MGMT
node tm0 19660 traffic-manager TOLLGATE_TRAFFIC_MANAGER__LISTEN=127.0.0.1:$TM0
for i in 1 2; do
  node tm$i $((19660 + i)) traffic-manager TOLLGATE_TRAFFIC_MANAGER__LISTEN=127.0.0.1:$((TM0 + i)) \
    TOLLGATE_TRAFFIC_MANAGER__REDIS_URL=$REDIS_URL
done
for i in 0 1 2; do wait_ready $((19660 + i)); done
for i in 0 1 2 3 4 5; do
  tm=$(( i < 3 ? 0 : (i < 5 ? 1 : 2) ))
  node gw$i $((19670 + i)) gateway TOLLGATE_GATEWAY__LISTEN=127.0.0.1:$((GW0 + i)) \
    TOLLGATE_CLUSTER__EVENT_HUB_URL=http://127.0.0.1:$((TM0 + tm)) TOLLGATE_LOG__LEVEL=${GATEWAY_LOG:-warn}
done
for i in 0 1 2 3 4 5; do wait_ready $((19670 + i)); done

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "gateway.throttle_sync_interval = 50ms (default); 2 TMs share counters in Redis ($REDIS_URL)"
python3 "$HERE/throttle.py" "$MGMT" "$GW0,$((GW0 + 1)),$((GW0 + 2))" "$((GW0 + 3)),$((GW0 + 4)),$((GW0 + 5))" \
  "http://127.0.0.1:$MGMT/health" "$WINDOWS"
