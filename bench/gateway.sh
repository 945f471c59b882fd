#!/usr/bin/env bash
# Gateway overhead against nginx, in one run on one machine (issue 5's benchmark):
#   (a) wrk -> backend directly
#   (b) wrk -> nginx proxy_pass (keep-alive upstream) -> backend
#   (c) wrk -> Tollgate gateway (published API, JWT auth, subscription check, metrics, analytics) -> backend
#   (d) wrk -> Tollgate gateway with API-key auth -> backend
#   (e) as (c), with 10 000 more APIs deployed; (n) nginx again beside each (e) run, so that
#       e/c can also be read against nginx as the machine runs then
#   (f) as (c), with the subscription's plan counted (throttling on, limit never reached):
#       the Unlimited plan is set to 1e9 requests per minute for (f) and back after it
# The backend is nginx serving a static 1 KiB body with keep-alive. Prints requests/s,
# p50/p99 latency, CPU-seconds per 10 000 requests (and their user and system parts), peak
# RSS and context switches per request of the proxy process(es),
# and the ratios c/b, d/b and e/c.
#
# Needs: nginx and wrk (apt-get install nginx-light wrk), python3, curl, jq, and the build
# that is deployed (cargo build --profile production -p tollgate). Usage:
#   [BENCH_BIN=path/to/tollgate] [DURATION=10] [CONNECTIONS=50] [APIS=10000] [ROUNDS=2] bash bench/gateway.sh
# ROUNDS: how many alternating rounds of the cases are averaged (more on a noisy host).
# PROFILE=/tmp/gw.perf records a perf profile of the gateway during case (c) instead
# (PROFILE_CASE=b: of nginx during case (b)).
# PERF_EVENT=syscalls:sys_enter_futex (with PROFILE) records every such event instead of sampling.
# PERF_CALL_GRAPH=dwarf (with PROFILE) unwinds user-space stacks too (release builds keep no frame pointers).
# INSTRUCTIONS=1 runs the gateway under callgrind and prints the user-space instructions per
# request of case (c) (INSTRUCTIONS_OUT=path keeps the profile), for A/B of two builds, then
# counts nginx's instructions per request of case (b) the same way (INSTRUCTIONS_CASE=d or f:
# of that case instead of (c)). CACHE_SIM=1 (with INSTRUCTIONS) also simulates the caches and
# branch predictor and prints I1/D1 misses and mispredicted branches per request of both.
# SYSCALLS=1 counts system calls (strace -c) and context switches per request of (b) and (c).
set -euo pipefail
CG_OPTS=(--tool=callgrind --instr-atstart=no)
[ -n "${CACHE_SIM:-}" ] && CG_OPTS+=(--cache-sim=yes --branch-sim=yes)
BIN=${BENCH_BIN:-${CARGO_TARGET_DIR:-target}/production/tollgate}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-50}
APIS=${APIS:-10000}
ROUNDS=${ROUNDS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
BACKEND_PORT=18081 NGINX_PORT=18082 NGINX_CG_PORT=18083 GW_PORT=18280 MGMT_PORT=19443 TM_PORT=19611
cleanup() {
  [ -n "${TG_PID:-}" ] && kill "$TG_PID" 2>/dev/null || true
  for conf in backend proxy; do
    [ -f "$WORK/$conf.pid" ] && kill "$(cat "$WORK/$conf.pid")" 2>/dev/null || true
  done
}
trap cleanup EXIT
command -v nginx >/dev/null && command -v wrk >/dev/null || { echo "install nginx and wrk: apt-get install nginx-light wrk" >&2; exit 64; }
[ -x "$BIN" ] || { echo "no binary at $BIN; run cargo build --profile production -p tollgate (or set BENCH_BIN)" >&2; exit 64; }

BODY=$(python3 -c "print('x' * 1024, end='')")
cat > "$WORK/backend.conf" <<EOF
worker_processes 1; pid $WORK/backend.pid; error_log $WORK/backend.err warn; daemon on;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$BACKEND_PORT; default_type text/plain; location / { return 200 "$BODY"; } } }
EOF
cat > "$WORK/proxy.conf" <<EOF
worker_processes 2; pid $WORK/proxy.pid; error_log $WORK/proxy.err warn; daemon on;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 256; keepalive_requests 1000000; }
  server { listen 127.0.0.1:$NGINX_PORT;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
EOF
nginx -c "$WORK/backend.conf" -p "$WORK"
nginx -c "$WORK/proxy.conf" -p "$WORK"

cd "$WORK"
# Every call's analytics event is shipped to the node's analytics component and counted per
# minute; ANALYTICS_LOG=path also writes each event as a JSON line (the optional log sink).
[ -n "${ANALYTICS_LOG:-}" ] && export TOLLGATE_GATEWAY__ANALYTICS_LOG=$ANALYTICS_LOG
# In its own session, as each nginx is once it daemonizes (and as a service manager runs
# either): with the kernel's autogroup scheduling, a process left in this script's session
# would share one group's CPU share with wrk, where nginx has a group of its own.
TOLLGATE_ADMIN_PASSWORD=bench-admin-password \
TOLLGATE_MANAGEMENT__LISTEN=127.0.0.1:$MGMT_PORT TOLLGATE_GATEWAY__LISTEN=127.0.0.1:$GW_PORT \
TOLLGATE_TRAFFIC_MANAGER__LISTEN=127.0.0.1:$TM_PORT TOLLGATE_LOG__LEVEL=warn \
TOLLGATE_KEY_MANAGER__ACCESS_TOKEN_VALIDITY=24h \
  setsid ${INSTRUCTIONS:+valgrind "${CG_OPTS[@]}" --callgrind-out-file="$WORK/callgrind.out"} \
  "$BIN" serve > tollgate.log 2>&1 &
TG_PID=$!
for _ in $(seq 1 600); do curl -sf "localhost:$MGMT_PORT/health/ready" >/dev/null && break; sleep 0.1; done

# Publish and deploy the API, sign up, subscribe, get a token and an API key.
eval "$(python3 "$HERE/gateway_setup.py" "$MGMT_PORT" "$BACKEND_PORT")"
for _ in $(seq 1 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "localhost:$GW_PORT/bench/1.0.0/1k.txt")" = 200 ] && break
  sleep 0.1
done

# Sets the Unlimited plan's per-minute limit (2147483647: not counted at all).
plan_limit() {
  curl -sf -u admin:bench-admin-password -X PUT -H 'Content-Type: application/json' \
    "localhost:$MGMT_PORT/api/am/admin/v4/throttling/policies/subscription/Unlimited" \
    -d "{\"policyName\":\"Unlimited\",\"defaultLimit\":{\"type\":\"REQUESTCOUNTLIMIT\",\"requestCount\":{\"timeUnit\":\"min\",\"unitTime\":1,\"requestCount\":$1}}}" > /dev/null
  sleep 0.5
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
user_ticks() { awk '{print $14}' "/proc/$1/stat"; }
nginx_pids() { echo "$(cat "$WORK/proxy.pid") $(pgrep -P "$(cat "$WORK/proxy.pid")" | tr '\n' ' ')"; }
ticks_of() { local t=0; for p in $1; do t=$((t + $(cpu_ticks "$p"))); done; echo "$t"; }
user_ticks_of() { local t=0; for p in $1; do t=$((t + $(user_ticks "$p"))); done; echo "$t"; }
rss_of() { local r=0; for p in $1; do r=$((r + $(awk '/VmHWM/{print $2}' "/proc/$p/status"))); done; echo "$r"; }
switches_of() { local t=0 p f; for p in $1; do for f in /proc/$p/task/*/status; do t=$((t + $(awk '/ctxt_switches/{s+=$2} END{print s}' "$f"))); done; done; echo "$t"; }
HZ=$(getconf CLK_TCK)

run() { # name url pids [header]
  local name=$1 url=$2 pids=$3 header=${4:-}
  local before after user_before user_after sw_before sw_after
  sw_before=$(switches_of "$pids")
  before=$(ticks_of "$pids")
  user_before=$(user_ticks_of "$pids")
  if [ -n "$header" ]; then
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "$header" "$url" > "$WORK/$name.wrk"
  else
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url" > "$WORK/$name.wrk"
  fi
  after=$(ticks_of "$pids")
  user_after=$(user_ticks_of "$pids")
  sw_after=$(switches_of "$pids")
  python3 - "$name" "$WORK/$name.wrk" "$((after - before))" "$HZ" "$(rss_of "$pids")" "$((sw_after - sw_before))" "$((user_after - user_before))" >> "$WORK/results.tsv" <<'PY'
import re, sys
name, path, ticks, hz, rss, switches = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
user_ticks = int(sys.argv[7])
text = open(path).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
total = int(re.search(r"(\d+) requests in", text).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
def pct(p):
    m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", text)
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
cpu = ticks / hz / total * 10000 if total else 0
user = user_ticks / hz / total * 10000 if total else 0
print(f"{name}\t{rps:.0f}\t{pct(50):.2f}\t{pct(99):.2f}\t{cpu:.3f}\t{rss/1024:.1f}\t{errors.group(1) if errors else 0}\t{switches/total if total else 0:.2f}\t{user:.3f}\t{cpu - user:.3f}")
PY
}

TG="$TG_PID"
if [ -n "${INSTRUCTIONS:-}" ]; then
  # User-space instructions per request of case (c), counted by callgrind: repeatable for a
  # given binary whatever else the machine does, so two builds compare to a fraction of a
  # percent where wall-clock runs differ by several.
  URL="http://127.0.0.1:$GW_PORT/bench/1.0.0/1k.txt"
  # INSTRUCTIONS_CASE=f counts case (f) instead (the plan's limit counted), =d case (d).
  CASE=${INSTRUCTIONS_CASE:-c}
  [ "$CASE" = f ] && plan_limit 1000000000
  CREDENTIAL="Authorization: Bearer $TOKEN"
  [ "$CASE" = d ] && CREDENTIAL="apikey: $APIKEY"
  wrk -t1 -c4 -d3s -H "$CREDENTIAL" "$URL" > /dev/null
  callgrind_control -i on "$TG" > /dev/null
  callgrind_control -z "$TG" > /dev/null 2>&1
  wrk -t1 -c4 -d"${DURATION}s" -H "$CREDENTIAL" "$URL" > "$WORK/instructions.wrk"
  callgrind_control -d "$TG" > /dev/null 2>&1
  callgrind_control -i off "$TG" > /dev/null
  total=$(awk '/requests in/{print $1}' "$WORK/instructions.wrk")
  dump=$(ls -t "$WORK"/callgrind.out* | head -1)
  ir=$(awk '/^(summary|totals):/{print $2; exit}' "$dump")
  echo "case ($CASE) under callgrind: $total requests, $ir instructions, $((ir / total)) instructions per request"
  # How often the workers go idle depends on how fast the run went, so the instructions
  # spent parking them vary between runs of one build; without them, the request path's.
  parked=$(callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null \
    | awk '/scheduler::(current_thread|multi_thread::worker)::Context::park \[/{gsub(",", "", $1); s += $1} END{print s + 0}')
  echo "  of which parking idle workers: $((parked / total)) per request; the rest: $(((ir - parked) / total)) per request"
  [ -n "${INSTRUCTIONS_OUT:-}" ] && cp "$dump" "$INSTRUCTIONS_OUT" && echo "callgrind_annotate --inclusive=yes $INSTRUCTIONS_OUT"
  # The same count of nginx proxying (b): one worker process under callgrind (its master
  # folded in), so that the two builds' figures have a baseline measured in the same run.
  sed -e "s/worker_processes 2;/worker_processes 1; master_process off;/" -e "s/daemon on;/daemon off;/" \
    -e "s/$NGINX_PORT/$NGINX_CG_PORT/" -e "s#$WORK/proxy.pid#$WORK/proxy-cg.pid#" "$WORK/proxy.conf" > "$WORK/proxy-cg.conf"
  valgrind "${CG_OPTS[@]}" --callgrind-out-file="$WORK/nginx.callgrind" \
    nginx -c "$WORK/proxy-cg.conf" -p "$WORK" > "$WORK/nginx-callgrind.log" 2>&1 &
  NGINX_CG=$!
  NGINX_URL="http://127.0.0.1:$NGINX_CG_PORT/1k.txt"
  for _ in $(seq 1 100); do curl -sf -o /dev/null "$NGINX_URL" && break; sleep 0.1; done
  wrk -t1 -c4 -d3s "$NGINX_URL" > /dev/null
  callgrind_control -i on "$NGINX_CG" > /dev/null
  callgrind_control -z "$NGINX_CG" > /dev/null 2>&1
  wrk -t1 -c4 -d"${DURATION}s" "$NGINX_URL" > "$WORK/nginx-instructions.wrk"
  callgrind_control -d "$NGINX_CG" > /dev/null 2>&1
  ngx_total=$(awk '/requests in/{print $1}' "$WORK/nginx-instructions.wrk")
  ngx_dump=$(ls -t "$WORK"/nginx.callgrind* | head -1)
  ngx_ir=$(awk '/^(summary|totals):/{print $2; exit}' "$ngx_dump")
  kill "$NGINX_CG" 2>/dev/null || true
  wait "$NGINX_CG" 2>/dev/null || true
  echo "case (b) nginx under callgrind: $ngx_total requests, $ngx_ir instructions, $((ngx_ir / ngx_total)) instructions per request (its idle waits included)"
  if [ -n "${CACHE_SIM:-}" ]; then
    # Per request: the events callgrind's summary line holds, by the names its events line gives.
    misses() { # dump requests
      awk -v n="$2" '/^events:/{for (i = 2; i <= NF; i++) name[i] = $i}
        /^(summary|totals):/{for (i = 2; i <= NF; i++) v[name[i]] = $i
          printf "I1 misses %.0f, D1 read misses %.0f, D1 write misses %.0f, mispredicted branches %.0f (indirect %.0f)", v["I1mr"] / n, v["D1mr"] / n, v["D1mw"] / n, (v["Bcm"] + v["Bim"]) / n, v["Bim"] / n; exit}' "$1"
    }
    echo "  per request, case ($CASE): $(misses "$dump" "$total")"
    echo "  per request, nginx (b): $(misses "$ngx_dump" "$ngx_total")"
  fi
  python3 -c "import sys; print(f'$CASE/b instructions per request: {($ir / $total) / ($ngx_ir / $ngx_total):.2f}x ($CASE without parking: {(($ir - $parked) / $total) / ($ngx_ir / $ngx_total):.2f}x)')"
  exit 0
fi
if [ -n "${PROFILE:-}" ]; then
  # perf's software clock works where hardware counters do not (VMs).
  if [ -n "${PERF_EVENT:-}" ]; then RATE=(-c 1); else RATE=(-F 2000); fi
  if [ "${PROFILE_CASE:-c}" = b ]; then
    TARGET=$(nginx_pids | tr ' ' ',' | sed 's/,*$//') URL="http://127.0.0.1:$NGINX_PORT/1k.txt" HEADER="X-Case: b"
  else
    TARGET=$TG URL="http://127.0.0.1:$GW_PORT/bench/1.0.0/1k.txt" HEADER="Authorization: Bearer $TOKEN"
  fi
  perf record -e "${PERF_EVENT:-cpu-clock}" "${RATE[@]}" --call-graph "${PERF_CALL_GRAPH:-fp}" -p "$TARGET" -o "$PROFILE" -- sleep "$DURATION" > /dev/null 2>&1 &
  PERF=$!
  wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -H "$HEADER" "$URL" > /dev/null
  wait "$PERF" || true
  echo "profile of case (${PROFILE_CASE:-c}) written to $PROFILE (perf report -i $PROFILE)" >&2
  exit 0
fi
if [ -n "${SYSCALLS:-}" ]; then
  # Counts the system calls and context switches per request of nginx (b) and Tollgate (c).
  count() { # name url pids [header]
    local name=$1 url=$2 pids=$3 header=${4:-} args=() p sw0=0 sw1=0
    for p in $pids; do args+=(-p "$p"); done
    for p in $pids; do for t in /proc/$p/task/*/status; do sw0=$((sw0 + $(awk '/ctxt_switches/{s+=$2} END{print s}' "$t"))); done; done
    strace -c -f "${args[@]}" -o "$WORK/$name.strace" &
    local st=$!
    sleep 0.5
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" ${header:+-H "$header"} "$url" > "$WORK/$name.wrk"
    kill -INT "$st"; wait "$st" || true
    for p in $pids; do for t in /proc/$p/task/*/status; do sw1=$((sw1 + $(awk '/ctxt_switches/{s+=$2} END{print s}' "$t"))); done; done
    local total
    total=$(awk '/requests in/{print $1}' "$WORK/$name.wrk")
    echo "== $name: $total requests (under strace), $(( (sw1 - sw0) * 1000 / total )) context switches per 1000 requests"
    awk -v n="$total" 'NR>2 && $NF!="total" && $4+0>0 {printf "  %-16s %6.2f per request\n", $NF, $4/n}' "$WORK/$name.strace"
  }
  count b-nginx "http://127.0.0.1:$NGINX_PORT/1k.txt" "$(nginx_pids)"
  count c-tollgate "http://127.0.0.1:$GW_PORT/bench/1.0.0/1k.txt" "$TG" "Authorization: Bearer $TOKEN"
  exit 0
fi
: > "$WORK/results.tsv"
# Alternate, so that drift on the machine hits every case alike.
for round in $(seq 1 "$ROUNDS"); do
  run "a-direct-$round" "http://127.0.0.1:$BACKEND_PORT/1k.txt" "$(cat "$WORK/backend.pid")"
  run "b-nginx-$round" "http://127.0.0.1:$NGINX_PORT/1k.txt" "$(nginx_pids)"
  run "c-tollgate-jwt-$round" "http://127.0.0.1:$GW_PORT/bench/1.0.0/1k.txt" "$TG" "Authorization: Bearer $TOKEN"
  run "d-tollgate-apikey-$round" "http://127.0.0.1:$GW_PORT/bench/1.0.0/1k.txt" "$TG" "apikey: $APIKEY"
  plan_limit 1000000000
  run "f-tollgate-jwt-throttled-$round" "http://127.0.0.1:$GW_PORT/bench/1.0.0/1k.txt" "$TG" "Authorization: Bearer $TOKEN"
  plan_limit 2147483647
done

if [ "$APIS" -gt 0 ]; then
  echo "Deploying $APIS more APIs..." >&2
  python3 "$HERE/gateway_setup.py" "$MGMT_PORT" "$BACKEND_PORT" --many "$APIS" >&2
  sleep 2
  for round in $(seq 1 "$ROUNDS"); do
    # nginx again beside (e), so that e/c can also be read against the machine as it is
    # now: (c) cannot be run again without the 10 000 APIs.
    run "n-nginx-beside-e-$round" "http://127.0.0.1:$NGINX_PORT/1k.txt" "$(nginx_pids)"
    run "e-tollgate-jwt-${APIS}apis-$round" "http://127.0.0.1:$GW_PORT/bench/1.0.0/1k.txt" "$TG" "Authorization: Bearer $TOKEN"
  done
fi

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); wrk -t1 -c$CONNECTIONS -d${DURATION}s"
printf "case\treq/s\tp50 ms\tp99 ms\tCPU s/10k req\tpeak RSS MB\tnon-2xx\tswitches/req\tuser s/10k\tsys s/10k\n"
cat "$WORK/results.tsv"
python3 - "$WORK/results.tsv" <<'PY'
import sys, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
by = collections.defaultdict(list)
for r in rows:
    by[r[0].rsplit("-", 1)[0].split("-")[0]].append(r)
def avg(case, col):
    v = [float(r[col]) for r in by[case]]
    return sum(v) / len(v) if v else float("nan")
b, c, d, e, f, n = "b", "c", "d", "e", "f", "n"
print()
print(f"c/b throughput {avg(c,1)/avg(b,1):.2f}x  p99 {avg(c,3)/avg(b,3):.2f}x  CPU/req {avg(c,4)/avg(b,4):.2f}x  (user {avg(c,8)/avg(b,8):.2f}x, system {avg(c,9)/avg(b,9):.2f}x)")
print(f"d/b throughput {avg(d,1)/avg(b,1):.2f}x  p99 {avg(d,3)/avg(b,3):.2f}x  CPU/req {avg(d,4)/avg(b,4):.2f}x")
if by[f]:
    print(f"f/c throughput {avg(f,1)/avg(c,1):.3f}x  p99 {avg(f,3)/avg(c,3):.2f}x  CPU/req {avg(f,4)/avg(c,4):.3f}x  (throttling on vs off)")
if by[e]:
    print(f"e/c throughput {avg(e,1)/avg(c,1):.2f}x  p99 {avg(e,3)/avg(c,3):.2f}x  CPU/req {avg(e,4)/avg(c,4):.2f}x")
if by[e] and by[n]:
    # Each against the nginx runs beside it: what drift on the machine between the two
    # parts of the run does to (e) it does to nginx too.
    print(f"e/c against nginx beside each: throughput {(avg(e,1)/avg(n,1))/(avg(c,1)/avg(b,1)):.2f}x  "
          f"p99 {(avg(e,3)/avg(n,3))/(avg(c,3)/avg(b,3)):.2f}x  CPU/req {(avg(e,4)/avg(n,4))/(avg(c,4)/avg(b,4)):.2f}x")
PY
