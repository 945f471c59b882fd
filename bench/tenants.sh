#!/usr/bin/env bash
# Gateway throughput with many tenants against one, in one run on one machine (issue 27's
# benchmark): two all-in-one nodes on SQLite, each serving 10 000 deployed APIs,
#   (s) one tenant (the super tenant) with 10 000 APIs; the call is /bench/1.0.0/1k.txt;
#   (m) 100 tenants (the super tenant and tenant001.com ... tenant099.com) with 100 APIs
#       each; the call is /t/tenant099.com/bench/1.0.0/1k.txt, with that tenant's token.
# Each call is authenticated (JWT), checked against its subscription and proxied to a
# static 1 KiB nginx backend with keep-alive. The rounds alternate (s) and (m) so that drift
# on the machine hits both alike; prints requests/s, p50/p99 latency and CPU-seconds per
# 10 000 requests of each gateway process, and the ratio m/s. The target is m/s >= 0.95.
#
# The measured API, its tenant, application, subscription and token are made through the
# REST APIs; the other APIs are copied into the stopped node's AM database
# (bench/tenants_setup.py seed), as 20 000 REST deployments would take most of an hour on
# 2 cores.
#
# INSTRUCTIONS=1 also counts, under callgrind, the user-space instructions per request of
# each node (warmed up, then DURATION seconds of wrk -c4): a figure that other work on the
# machine does not move, where wall-clock runs on a shared 2-core host differ by 10 %.
#
# Needs: nginx and wrk (apt-get install nginx-light wrk), python3, curl, and an optimised
# build (cargo build --release -p tollgate, or --profile production); valgrind for
# INSTRUCTIONS=1. Usage:
#   [BENCH_BIN=path/to/tollgate] [DURATION=10] [CONNECTIONS=50] [ROUNDS=3] [TENANTS=100] [APIS=10000] [INSTRUCTIONS=1] bash bench/tenants.sh
set -euo pipefail
BIN=${BENCH_BIN:-${CARGO_TARGET_DIR:-target}/release/tollgate}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-50}
ROUNDS=${ROUNDS:-3}
TENANTS=${TENANTS:-100}
APIS=${APIS:-10000}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
BACKEND_PORT=18091
declare -A PID MGMT GW TM
MGMT[s]=19453 GW[s]=18290 TM[s]=19621
MGMT[m]=19454 GW[m]=18291 TM[m]=19622
cleanup() {
  for k in s m; do [ -n "${PID[$k]:-}" ] && kill "${PID[$k]}" 2>/dev/null || true; done
  [ -f "$WORK/backend.pid" ] && kill "$(cat "$WORK/backend.pid")" 2>/dev/null || true
}
trap cleanup EXIT
command -v nginx >/dev/null && command -v wrk >/dev/null || { echo "install nginx and wrk: apt-get install nginx-light wrk" >&2; exit 64; }
[ -x "$BIN" ] || { echo "no binary at $BIN; run cargo build --release -p tollgate (or set BENCH_BIN)" >&2; exit 64; }
[ $((APIS % TENANTS)) -eq 0 ] || { echo "APIS ($APIS) must be a multiple of TENANTS ($TENANTS)" >&2; exit 64; }

BODY=$(python3 -c "print('x' * 1024, end='')")
cat > "$WORK/backend.conf" <<EOF
worker_processes 1; pid $WORK/backend.pid; error_log $WORK/backend.err warn; daemon on;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$BACKEND_PORT; default_type text/plain; location / { return 200 "$BODY"; } } }
EOF
nginx -c "$WORK/backend.conf" -p "$WORK"

start() { # case [wrapper...]: starts its node in a session of its own, waits until it is ready
  local k=$1
  shift
  mkdir -p "$WORK/$k"
  TOLLGATE_ADMIN_PASSWORD=bench-admin-password TOLLGATE_NODE__DATA_DIR="$WORK/$k" \
  TOLLGATE_MANAGEMENT__LISTEN=127.0.0.1:${MGMT[$k]} TOLLGATE_GATEWAY__LISTEN=127.0.0.1:${GW[$k]} \
  TOLLGATE_TRAFFIC_MANAGER__LISTEN=127.0.0.1:${TM[$k]} TOLLGATE_LOG__LEVEL=warn \
  TOLLGATE_KEY_MANAGER__ACCESS_TOKEN_VALIDITY=24h \
    setsid "$@" "$BIN" serve >> "$WORK/$k.log" 2>&1 &
  PID[$k]=$!
  for _ in $(seq 1 1200); do curl -sf "localhost:${MGMT[$k]}/health/ready" >/dev/null && return; sleep 0.1; done
  echo "node $k did not become ready: $(tail -5 "$WORK/$k.log")" >&2; exit 1
}
stop() { kill "${PID[$1]}"; wait "${PID[$1]}" 2>/dev/null || true; PID[$1]=; }

declare -A CALL TOKEN
for k in s m; do
  tenants=$([ "$k" = s ] && echo 1 || echo "$TENANTS")
  start "$k"
  echo "($k) $tenants tenant(s): creating them and the measured API through REST..." >&2
  eval "$(python3 "$HERE/tenants_setup.py" rest "${MGMT[$k]}" "$BACKEND_PORT" "$tenants")"
  CALL[$k]=$CALL_PATH TOKEN[$k]=$TOKEN
  stop "$k"
  python3 "$HERE/tenants_setup.py" seed "$WORK/$k/am.db" "$tenants" $((APIS / tenants))
  start "$k"
  url="http://127.0.0.1:${GW[$k]}${CALL[$k]}"
  for _ in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${TOKEN[$k]}" "$url")" = 200 ] && break
    sleep 0.1
  done
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${TOKEN[$k]}" "$url")" = 200 ] \
    || { echo "($k) $url does not answer 200" >&2; exit 1; }
  held=$(curl -s "localhost:${MGMT[$k]}/health/ready" | python3 -c "import json,sys; t=json.load(sys.stdin)['gateway']['tenants']['held']; print(len([x for x in t if x['apis']]), sum(x['apis'] for x in t))")
  echo "($k) the gateway holds $held (tenants with APIs, APIs)" >&2
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
run() { # case round
  local k=$1 round=$2 before after
  before=$(cpu_ticks "${PID[$k]}")
  wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "Authorization: Bearer ${TOKEN[$k]}" \
    "http://127.0.0.1:${GW[$k]}${CALL[$k]}" > "$WORK/$k-$round.wrk"
  after=$(cpu_ticks "${PID[$k]}")
  python3 - "$k" "$WORK/$k-$round.wrk" "$((after - before))" "$HZ" >> "$WORK/results.tsv" <<'PY'
import re, sys
name, path, ticks, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
text = open(path).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
total = int(re.search(r"(\d+) requests in", text).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
def pct(p):
    m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", text)
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
print(f"{name}\t{rps:.0f}\t{pct(50):.2f}\t{pct(99):.2f}\t{ticks / hz / total * 10000:.3f}\t{errors.group(1) if errors else 0}")
PY
}
: > "$WORK/results.tsv"
# A short warm-up of each, then the alternating rounds.
for k in s m; do wrk -t1 -c"$CONNECTIONS" -d2s -H "Authorization: Bearer ${TOKEN[$k]}" "http://127.0.0.1:${GW[$k]}${CALL[$k]}" > /dev/null; done
for round in $(seq 1 "$ROUNDS"); do
  run s "$round"
  run m "$round"
done

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); wrk -t1 -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds; $APIS APIs on each node"
printf "case\treq/s\tp50 ms\tp99 ms\tCPU s/10k req\tnon-2xx\n"
cat "$WORK/results.tsv"
python3 - "$WORK/results.tsv" "$TENANTS" "$APIS" <<'PY'
import sys, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
tenants, apis = int(sys.argv[2]), int(sys.argv[3])
by = collections.defaultdict(list)
for r in rows:
    by[r[0]].append(r)
def avg(case, col):
    v = [float(r[col]) for r in by[case]]
    return sum(v) / len(v)
print()
print(f"(s) 1 tenant x {apis} APIs:        {avg('s', 1):.0f} req/s, p99 {avg('s', 3):.2f} ms, {avg('s', 4):.3f} CPU s/10k req")
print(f"(m) {tenants} tenants x {apis // tenants} APIs:     {avg('m', 1):.0f} req/s, p99 {avg('m', 3):.2f} ms, {avg('m', 4):.3f} CPU s/10k req")
ratio = avg('m', 1) / avg('s', 1)
print(f"m/s throughput {ratio:.3f}x  p99 {avg('m', 3) / avg('s', 3):.2f}x  CPU/req {avg('m', 4) / avg('s', 4):.3f}x  "
      f"({'within' if ratio >= 0.95 else 'NOT within'} 5 %)")
PY

if [ -n "${INSTRUCTIONS:-}" ]; then
  # Each node again under callgrind, instrumented only while wrk runs.
  declare -A IPR CONN
  for k in s m; do
    stop "$k"
    start "$k" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/$k.callgrind"
    url="http://127.0.0.1:${GW[$k]}${CALL[$k]}"
    wrk -t1 -c4 -d3s -H "Authorization: Bearer ${TOKEN[$k]}" "$url" > /dev/null
    callgrind_control -i on "${PID[$k]}" > /dev/null
    callgrind_control -z "${PID[$k]}" > /dev/null 2>&1
    wrk -t1 -c4 -d"${DURATION}s" -H "Authorization: Bearer ${TOKEN[$k]}" "$url" > "$WORK/$k.instructions.wrk"
    callgrind_control -d "${PID[$k]}" > /dev/null 2>&1
    callgrind_control -i off "${PID[$k]}" > /dev/null
    total=$(awk '/requests in/{print $1}' "$WORK/$k.instructions.wrk")
    dump=$(ls -t "$WORK/$k".callgrind* | head -1)
    ir=$(awk '/^(summary|totals):/{print $2; exit}' "$dump")
    # Parking idle workers costs what the run's pace makes it cost: left out.
    parked=$(callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null \
      | awk '/scheduler::(current_thread|multi_thread::worker)::Context::park \[/{gsub(",", "", $1); s += $1} END{print s + 0}')
    # The connections' own work (reading, routing, checking, proxying, answering): what
    # the process does besides on timers (metrics upkeep, analytics, reports) is the same
    # per second on both nodes, so per request it weighs on the slower run.
    conn=$(callgrind_annotate --inclusive=yes --tree=none --auto=no --threshold=100 "$dump" 2>/dev/null \
      | awk '/server_http1::serve_connection::\{\{closure\}\} \[/ && !found{gsub(",", "", $1); print $1; found = 1}')
    IPR[$k]=$(((ir - parked) / total)) CONN[$k]=$((conn / total))
    echo "($k) under callgrind: $total requests, ${IPR[$k]} instructions per request (idle parking left out), ${CONN[$k]} in the connections' request path"
  done
  python3 -c "print(f'm/s instructions per request: {${IPR[m]} / ${IPR[s]}:.3f}x; in the request path: {${CONN[m]} / ${CONN[s]}:.3f}x')"
fi
