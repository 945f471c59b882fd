#!/usr/bin/env bash
# Key manager throughput and memory on an all-in-one release node (SQLite): sequential
# client-credentials token requests and JWT introspections over one keep-alive
# connection. Build first: cargo build --release -p tollgate. Needs curl, jq, python3 and
# a free port 9443. Usage: [BENCH_BIN=path/to/tollgate] bash bench/key-manager.sh
set -euo pipefail
WORK=$(mktemp -d); cd "$WORK"
export TOLLGATE_ADMIN_PASSWORD=admin-pass-123 TOLLGATE_KEY_MANAGER__TOKEN_REQUESTS_PER_SECOND=100000
BIN=${BENCH_BIN:-${CARGO_TARGET_DIR:-target}/release/tollgate}
$BIN serve > log.txt 2>&1 &
PID=$!
for i in $(seq 1 100); do curl -sf localhost:9443/health/ready >/dev/null && break; sleep 0.1; done
curl -s localhost:9443/health/ready; echo
echo "idle RSS kB: $(ps -o rss= -p $PID)"
H=localhost:9443; DP=$H/api/am/devportal/v3
curl -s -X POST $DP/signup -H 'Content-Type: application/json' -d '{"username":"alice","password":"alice-password"}' >/dev/null
APP=$(curl -s -u alice:alice-password $DP/applications | jq -r '.list[0].applicationId')
curl -s -u alice:alice-password -X POST $DP/applications/$APP/generate-keys -H 'Content-Type: application/json' -d '{"keyType":"PRODUCTION","grantTypesToBeSupported":["client_credentials"]}' > keys.json
CK=$(jq -r .consumerKey keys.json); CS=$(jq -r .consumerSecret keys.json)
python3 - "$CK" "$CS" <<'PY'
import sys, time, http.client, base64, urllib.parse, json
ck, cs = sys.argv[1], sys.argv[2]
auth = "Basic " + base64.b64encode(f"{ck}:{cs}".encode()).decode()
c = http.client.HTTPConnection("localhost", 9443)
def post(path, body):
    c.request("POST", path, body=urllib.parse.urlencode(body), headers={"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse(); data = r.read(); assert r.status == 200, data; return json.loads(data)
for _ in range(20): post("/oauth2/token", {"grant_type": "client_credentials"})
N = 1000
t = time.perf_counter()
for _ in range(N): tok = post("/oauth2/token", {"grant_type": "client_credentials"})["access_token"]
dt = time.perf_counter() - t
print(f"token (client_credentials, JWT ES256): {N} sequential requests on one keep-alive connection, {dt/N*1000:.2f} ms each, {N/dt:.0f}/s")
t = time.perf_counter()
for _ in range(N): assert post("/oauth2/introspect", {"token": tok})["active"]
dt = time.perf_counter() - t
print(f"introspect (JWT): {N} requests, {dt/N*1000:.2f} ms each, {N/dt:.0f}/s")
PY
echo "RSS after 2000+ token calls kB: $(ps -o rss= -p $PID)"
kill $PID; wait $PID || true
tail -1 log.txt
