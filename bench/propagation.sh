#!/usr/bin/env bash
# Event-hub propagation (the Event hub issue's benchmark), on one machine with real processes:
# an all-in-one node (control plane + traffic manager, SQLite) and 3 gateway nodes that follow
# its event hub over HTTP. With APIS (1000) APIs deployed it measures, over TRIALS (200) trials,
# the time from the REST call that deploys a revision until all 3 gateways serve it, and from
# the call that revokes a token until all 3 refuse it (p50/p99/max). Then it deploys up to
# COLD_APIS (10000) APIs and times three cold starts of a new gateway from the hub's snapshot
# until /health/ready answers 200 (and its RSS).
#
# Needs: python3, curl, jq, and a release build (cargo build --release -p tollgate). Usage:
#   [BENCH_BIN=path/to/tollgate] [APIS=1000] [TRIALS=200] [COLD_APIS=10000] bash bench/propagation.sh
set -euo pipefail
BIN=${BENCH_BIN:-${CARGO_TARGET_DIR:-target}/release/tollgate}
APIS=${APIS:-1000}
TRIALS=${TRIALS:-200}
COLD_APIS=${COLD_APIS:-10000}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
SECRET=bench-cluster-secret-0123456789
MGMT=19543 TM=19711 GW0=18380
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
[ -x "$BIN" ] || { echo "no release binary at $BIN; run cargo build --release -p tollgate" >&2; exit 64; }

wait_ready() { # mgmt-port
  for _ in $(seq 1 3000); do curl -sf "localhost:$1/health/ready" >/dev/null && return 0; sleep 0.01; done
  echo "node on $1 not ready" >&2; exit 69
}
gateway() { # index data-dir -> starts a gateway node on ports 1838x/1955x
  TOLLGATE_MANAGEMENT__LISTEN=127.0.0.1:$((19550 + $1)) TOLLGATE_GATEWAY__LISTEN=127.0.0.1:$((GW0 + $1)) \
  TOLLGATE_CLUSTER__SECRET=$SECRET TOLLGATE_CLUSTER__EVENT_HUB_URL=http://127.0.0.1:$TM \
  TOLLGATE_NODE__DATA_DIR=$2 TOLLGATE_LOG__LEVEL=warn \
    "$BIN" serve --profile gateway > "$2.log" 2>&1 &
  PIDS+=($!)
}

cd "$WORK"
TOLLGATE_ADMIN_PASSWORD=bench-admin-password TOLLGATE_CLUSTER__SECRET=$SECRET \
TOLLGATE_MANAGEMENT__LISTEN=127.0.0.1:$MGMT TOLLGATE_GATEWAY__LISTEN=127.0.0.1:18379 \
TOLLGATE_TRAFFIC_MANAGER__LISTEN=127.0.0.1:$TM TOLLGATE_LOG__LEVEL=warn \
TOLLGATE_NODE__DATA_DIR=$WORK/control TOLLGATE_KEY_MANAGER__ACCESS_TOKEN_VALIDITY=24h \
TOLLGATE_KEY_MANAGER__TOKEN_REQUESTS_PER_SECOND=100000 \
  "$BIN" serve > control.log 2>&1 &
PIDS+=($!)
wait_ready $MGMT
for i in 0 1 2; do gateway $i "$WORK/gw$i"; done
for i in 0 1 2; do wait_ready $((19550 + i)); done

echo "Deploying $APIS APIs..." >&2
python3 -c "
import sys; sys.path.insert(0, '$HERE')
from tollgate_rest import Rest
Rest($MGMT).deploy_many($APIS, 'http://127.0.0.1:$MGMT/health')"
echo "Measuring $TRIALS trials..." >&2
echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); 3 gateways, $APIS APIs deployed"
python3 "$HERE/propagation.py" "$MGMT" "$GW0,$((GW0 + 1)),$((GW0 + 2))" "$TRIALS"

MORE=$((COLD_APIS - APIS - TRIALS - 1))
if [ "$MORE" -gt 0 ]; then
  echo "Deploying $MORE more APIs (total $COLD_APIS)..." >&2
  python3 -c "
import sys; sys.path.insert(0, '$HERE')
from tollgate_rest import Rest
Rest($MGMT).deploy_many($MORE, 'http://127.0.0.1:$MGMT/health', prefix='Cold')"
fi
total=$(curl -sf -u admin:bench-admin-password "localhost:$MGMT/api/am/publisher/v4/apis?limit=1" | jq .pagination.total)
# Let the running gateways settle (they apply, journal and persist the deployments above:
# wait until each holds the hub's newest sequence, then a few seconds more), then three cold
# starts, each with an empty data directory (the first also warms the hub's database cache).
latest=$(curl -sf -H "Authorization: Bearer $SECRET" "localhost:$TM/internal/v1/events/latest" | jq .sequence)
for i in 0 1 2; do
  for _ in $(seq 1 600); do
    [ "$(curl -sf "localhost:$((19550 + i))/health/ready" | jq .gateway.sequence)" -ge "$latest" ] && break
    sleep 0.1
  done
done
sleep 5
for run in 1 2 3; do
  start=$(date +%s%N)
  gateway 3 "$WORK/cold$run"
  wait_ready 19553
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  rss=$(awk '/VmRSS/{printf "%.0f", $2/1024}' "/proc/${PIDS[-1]}/status")
  echo "cold start $run of a gateway from the hub's snapshot ($total APIs): ready in $ms ms (process start to /health/ready 200), RSS $rss MB"
  kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
done
