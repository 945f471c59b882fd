#!/usr/bin/env bash
# Password-grant tokens per second with a directory user (LDAP store) against a built-in
# user (database store), in one run on one all-in-one release node (SQLite) with a local
# OpenLDAP (slapd, started here in a temporary directory) as the store CORP. (Not as the
# primary store: a read-only primary directory would refuse the built-in user's sign-up.)
#
# Each grant checks a password: the database store hashes it with argon2id (the cost
# Tollgate chose for stored passwords); the LDAP store searches the user as the service
# account, binds as the user on a connection of its own (slapd checks its {SSHA} hash)
# and searches the user's groups. "Cold" is the first grant after the node started (the
# store has no connection yet); the rounds after it are warm (service connections kept).
# The rounds alternate the two stores, CONCURRENCY clients each sending GRANTS grants.
#
# Needs: slapd and ldap-utils (apt-get install slapd ldap-utils), curl, jq, python3, free
# ports 9443, 8280, 9611 and 13389, and a release build (cargo build --release -p tollgate).
# Usage: [BENCH_BIN=path/to/tollgate] [ROUNDS=3] [GRANTS=200] [CONCURRENCY=4] bash bench/user-stores.sh
set -euo pipefail
BIN=${BENCH_BIN:-${CARGO_TARGET_DIR:-target}/release/tollgate}
ROUNDS=${ROUNDS:-3}
GRANTS=${GRANTS:-200}
CONCURRENCY=${CONCURRENCY:-4}
LDAP_PORT=13389
[ -x "$BIN" ] || { echo "no binary at $BIN; run cargo build --release -p tollgate (or set BENCH_BIN)" >&2; exit 64; }
[ -x /usr/sbin/slapd ] || { echo "install slapd: apt-get install slapd ldap-utils" >&2; exit 64; }
WORK=$(mktemp -d)
cleanup() {
  [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null || true
  [ -f "$WORK/slapd.pid" ] && kill "$(cat "$WORK/slapd.pid")" 2>/dev/null || true
}
trap cleanup EXIT
cd "$WORK"

# --- the directory: a service account, alice in apiSubscribers ---------------------------
mkdir db
cat > slapd.conf <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $WORK/slapd.pid
disallow bind_anon
require authc
database mdb
maxsize 10485760
suffix "dc=example,dc=com"
rootdn "cn=manager,dc=example,dc=com"
rootpw manager-password
directory $WORK/db
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
EOF
# Passwords stored as a directory stores them: salted SHA-1 ({SSHA}, slappasswd's default).
SERVICE_HASH=$(/usr/sbin/slappasswd -s service-password)
ALICE_HASH=$(/usr/sbin/slappasswd -s alice-password)
cat > seed.ldif <<EOF
dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: cn=tollgate,dc=example,dc=com
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: tollgate
userPassword: $SERVICE_HASH

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Liddell
userPassword: $ALICE_HASH

dn: cn=apiSubscribers,ou=people,dc=example,dc=com
objectClass: groupOfNames
cn: apiSubscribers
member: uid=alice,ou=people,dc=example,dc=com
EOF
/usr/sbin/slapadd -f slapd.conf -l seed.ldif
/usr/sbin/slapd -f slapd.conf -h "ldap://127.0.0.1:$LDAP_PORT/"
for _ in $(seq 1 100); do [ -f slapd.pid ] && break; sleep 0.1; done

# --- the node --------------------------------------------------------------------------
cat > tollgate.toml <<EOF
[[user_store]]
domain = "CORP"
urls = ["ldap://127.0.0.1:$LDAP_PORT"]
bind_dn = "cn=tollgate,dc=example,dc=com"
bind_password = "service-password"
user_search_base = "ou=people,dc=example,dc=com"
role_mapping = { apiSubscribers = ["subscriber"] }
EOF
TOLLGATE_ADMIN_PASSWORD=bench-admin-password TOLLGATE_NODE__DATA_DIR="$WORK/data" \
TOLLGATE_KEY_MANAGER__TOKEN_REQUESTS_PER_SECOND=1000000 TOLLGATE_LOG__LEVEL=warn \
  "$BIN" serve --config tollgate.toml > node.log 2>&1 &
PID=$!
for _ in $(seq 1 300); do curl -sf localhost:9443/health/ready >/dev/null && break; sleep 0.1; done
curl -sf localhost:9443/health/ready >/dev/null || { echo "the node did not become ready: $(tail -5 node.log)" >&2; exit 1; }

# The built-in user signs up (and gets an application); its keys take the password grant.
DP=localhost:9443/api/am/devportal/v3
curl -sf -X POST $DP/signup -H 'Content-Type: application/json' \
  -d '{"username":"dbuser","password":"dbuser-password"}' > /dev/null
APP=$(curl -sf -u dbuser:dbuser-password $DP/applications | jq -r '.list[0].applicationId')
curl -sf -u dbuser:dbuser-password -X POST "$DP/applications/$APP/generate-keys" -H 'Content-Type: application/json' \
  -d '{"keyType":"PRODUCTION","grantTypesToBeSupported":["password"]}' > keys.json
CK=$(jq -r .consumerKey keys.json); CS=$(jq -r .consumerSecret keys.json)

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r); $CONCURRENCY clients x $GRANTS grants, $ROUNDS rounds"
python3 - "$CK" "$CS" "$ROUNDS" "$GRANTS" "$CONCURRENCY" <<'PY'
import base64, http.client, json, statistics, sys, threading, time, urllib.parse
ck, cs, rounds, grants, concurrency = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
auth = "Basic " + base64.b64encode(f"{ck}:{cs}".encode()).decode()
users = {"database": ("dbuser", "dbuser-password"), "ldap": ("CORP/alice", "alice-password")}

def grant(conn, who):
    body = urllib.parse.urlencode({"grant_type": "password", "username": who[0], "password": who[1]})
    conn.request("POST", "/oauth2/token", body=body,
                 headers={"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"})
    r = conn.getresponse(); data = r.read()
    assert r.status == 200, (r.status, data)
    assert json.loads(data)["access_token"]

# Cold: the first grant of each store after the start.
for store, who in users.items():
    c = http.client.HTTPConnection("localhost", 9443)
    t = time.perf_counter(); grant(c, who)
    print(f"{store}\tcold: first grant {1000 * (time.perf_counter() - t):.1f} ms")

def measure(who):
    def client():
        c = http.client.HTTPConnection("localhost", 9443)
        for _ in range(grants):
            grant(c, who)
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    t = time.perf_counter()
    for th in threads: th.start()
    for th in threads: th.join()
    return concurrency * grants / (time.perf_counter() - t)

results = {s: [] for s in users}
for r in range(rounds):
    for store, who in users.items():
        rate = measure(who)
        results[store].append(rate)
        print(f"{store}\tround {r + 1}: {rate:.0f} grants/s")
db, ldap = statistics.mean(results["database"]), statistics.mean(results["ldap"])
print(f"warm mean: database {db:.0f} grants/s, ldap {ldap:.0f} grants/s, ldap/database {ldap / db:.2f}x")
PY
