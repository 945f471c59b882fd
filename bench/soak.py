"""The soak's driver (see soak.sh, which prepares the databases, Redis and the backend and
hands this their addresses in the environment). Standard library only, plus `hey` for load.

It starts the control plane, the traffic manager and two gateways as separate processes,
sets up the APIs, applications and tokens, measures the peak, drives `hey` at LOAD_SHARE of
it, and meanwhile runs a chaos loop (deploys, revocations, policy changes, each checked at
both gateways), kills -9 and restarts the traffic manager and the control plane at random
moments, and samples RSS and open descriptors of every node. It prints the report and exits
1 when an unexpected answer, a change that did not reach a gateway within the documented
bound, a crash or memory/descriptor growth over the bound was seen.
"""
import base64, csv, http.client, json, os, random, re, signal, statistics, subprocess, sys, threading, time

E = os.environ
BIN = E["SOAK_BIN"]
WORK = E["SOAK_WORK"]
OUT = E.get("SOAK_OUT") or WORK
os.makedirs(OUT, exist_ok=True)
DURATION = float(E.get("DURATION", "1800"))
SEED = int(E.get("SEED") or random.SystemRandom().randrange(1 << 30))
BASE = int(E["SOAK_PORT_BASE"])
BACKEND = int(E["SOAK_BACKEND_PORT"])
REDIS_PID = int(E["SOAK_REDIS_PID"])
LOAD_SHARE = float(E.get("LOAD_SHARE", "0.8"))
WORKERS = int(E.get("HEY_WORKERS", "32"))  # hey workers (keep-alive connections) per gateway
SHORT = DURATION < 600
# Samples every minute (every 10 s in a short run), in the middle of each load segment.
SAMPLE = float(E.get("SAMPLE_INTERVAL") or (10 if SHORT else 60))
# Within each interval every node is read every FINE seconds: RSS under mimalloc moves by
# 10-20 MB within seconds at a constant load (it purges freed pages in bursts), so each
# interval is reported as its floor and its peak, and growth is judged on the floors.
FINE = float(E.get("FINE_INTERVAL") or (2 if SHORT else 5))
SEGMENT = SAMPLE
# Growth: the level of the last samples against the first ones after WARMUP (see
# growth_check), judged when at least GROWTH_SPAN seconds of samples follow the warm-up.
WARMUP = float(E.get("WARMUP") or (30 if SHORT else 180))
GROWTH_BOUND = float(E.get("GROWTH_BOUND", "0.05"))
# Open descriptors may rise this many above GROWTH_BOUND (connections pooled to the backend
# come and go with the load's concurrency; a leak grows with the hundreds of changes and
# kills).
FDS_SLACK = int(E.get("FDS_SLACK", "8"))
# The live heap may rise this many kB above GROWTH_BOUND: a gateway holds 2-3 MB, and what it
# keeps by design until it expires (tokens cached for their lifetime, revocations until 5
# minutes after) grows with the few hundred tokens the chaos loop issues, ~0.5 MB in 30 min.
HEAP_SLACK_KB = int(E.get("HEAP_SLACK_KB", "1024"))
# A Tollgate node's RSS, judged beside its live heap (see growth_check).
RSS_BOUND = float(E.get("RSS_BOUND", "0.25"))
GROWTH_SPAN = float(E.get("GROWTH_SPAN", "600"))
SETTLE = 20.0  # a restarted node's samples count from this age on
# Which nodes are killed and restarted (a comma-separated list; empty: none).
KILL = [k for k in E.get("KILL", "traffic-manager,control-plane").split(",") if k]
PEAK_SECONDS = float(E.get("PEAK_SECONDS") or (5 if SHORT else 10))
# The documented bound on a change reaching a gateway once the hub is up (decision 008):
# a watch silent for 20 s is presumed dead, reconnect backoff is at most 5 s x 1.5, and a
# lost wake-up is caught by the hub's 2 s safety check: 20 + 7.5 + 2 = 29.5 s. The clock
# is restarted whenever the traffic manager (the hub) becomes ready again.
PROPAGATION_BOUND = 30.0
SECRET = "soak-cluster-secret-0123456789abcdef"
ADMIN = ("admin", "soak-admin-password")
DEV = ("soakdev", "soakdev-password")
CP_MGMT, TM_MGMT, GW_MGMT = BASE, BASE + 1, [BASE + 2, BASE + 3]
TM_PORT, GW_PORT = BASE + 10, [BASE + 20, BASE + 21]
LOOSE = 2_000_000_000  # per minute: counted, never reached
TIGHT = 1  # per day: refused once one call was admitted
rng = random.Random(SEED)
T0 = time.monotonic()
lock = threading.Lock()
failures = []  # what makes the run fail
timeline = []  # (seconds, text)
stop = threading.Event()


def now():
    return time.monotonic() - T0


def log(text):
    with lock:
        timeline.append((now(), text))
    print(f"[{now():7.1f}s] {text}", file=sys.stderr, flush=True)


def fail(text):
    with lock:
        failures.append((now(), text))
    log(f"FAILURE: {text}")


# --- Nodes ------------------------------------------------------------------------------

class Node:
    """One `tollgate serve` process that may be killed and started again on the same ports."""

    def __init__(self, name, profile, mgmt, env):
        self.name, self.profile, self.mgmt, self.env = name, profile, mgmt, env
        self.proc, self.incarnation, self.started = None, 0, 0.0
        self.expect_down = False
        self.ready = threading.Event()
        self.ready_at = 0.0
        self.lock = threading.Lock()  # a kill or restart against the crash watch

    def start(self):
        # Only the settings given here: a TOLLGATE_* variable of the caller's (TOLLGATE_BIN)
        # would be read as a configuration key.
        env = {k: v for k, v in E.items() if not k.startswith("TOLLGATE_")}
        env.update(TOLLGATE_CLUSTER__SECRET=SECRET, TOLLGATE_MANAGEMENT__LISTEN=f"127.0.0.1:{self.mgmt}",
                   TOLLGATE_NODE__DATA_DIR=f"{WORK}/{self.name}", TOLLGATE_LOG__LEVEL="warn", **self.env)
        out = open(f"{WORK}/{self.name}.log", "ab")
        # Its own session (as a service manager would run it): with autogroup scheduling the
        # nodes do not share one CPU group with the load generator.
        self.proc = subprocess.Popen([BIN, "serve", "--profile", self.profile], env=env, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        self.incarnation += 1
        self.started = now()
        self.expect_down = False
        with open(f"{WORK}/pids", "a") as f:
            f.write(f"{self.proc.pid}\n")

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.mgmt, timeout=2)
                c.request("GET", "/health/ready")
                if c.getresponse().status == 200:
                    self.ready_at = now()
                    self.ready.set()
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def kill9(self):
        with self.lock:
            self.expect_down = True
            self.ready.clear()
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def restart(self):
        with self.lock:
            self.start()

    def pid(self):
        return self.proc.pid if self.proc and self.proc.poll() is None else None


PG_AM, PG_SHARED = E["SOAK_DB_AM"], E["SOAK_DB_SHARED"]
DBS = dict(TOLLGATE_DATABASE__AM__URL=PG_AM, TOLLGATE_DATABASE__SHARED__URL=PG_SHARED)
cp = Node("control-plane", "control-plane", CP_MGMT, dict(
    DBS, TOLLGATE_NODE__COMPONENTS="publisher,devportal,admin,key-manager,analytics",
    TOLLGATE_ADMIN_PASSWORD=ADMIN[1], TOLLGATE_KEY_MANAGER__SECRET="soak-key-manager-secret-0123456789",
    TOLLGATE_KEY_MANAGER__ACCESS_TOKEN_VALIDITY="24h", TOLLGATE_KEY_MANAGER__TOKEN_REQUESTS_PER_SECOND="100000"))
tm = Node("traffic-manager", "traffic-manager", TM_MGMT, dict(
    DBS, TOLLGATE_TRAFFIC_MANAGER__LISTEN=f"127.0.0.1:{TM_PORT}", TOLLGATE_TRAFFIC_MANAGER__REDIS_URL=E["SOAK_REDIS_URL"]))
gws = [Node(f"gateway-{i}", "gateway", GW_MGMT[i], dict(
    TOLLGATE_GATEWAY__LISTEN=f"127.0.0.1:{GW_PORT[i]}", TOLLGATE_CLUSTER__EVENT_HUB_URL=f"http://127.0.0.1:{TM_PORT}",
    TOLLGATE_CLUSTER__ANALYTICS_URL=f"http://127.0.0.1:{CP_MGMT}",
    TOLLGATE_CLUSTER__KEY_MANAGER_URL=f"http://127.0.0.1:{CP_MGMT}")) for i in range(2)]
NODES = [cp, tm] + gws


def watch_nodes():
    """A node that exits without being killed by the soak crashed: record it, start it again."""
    while not stop.is_set():
        for n in NODES:
            with n.lock:
                crashed = n.proc and not n.expect_down and n.proc.poll() is not None
                if crashed:
                    fail(f"{n.name} (incarnation {n.incarnation}) exited by itself with code {n.proc.returncode}; "
                         f"see {WORK}/{n.name}.log")
                    n.ready.clear()
                    n.start()
            if crashed:
                if not n.wait_ready():
                    fail(f"{n.name} did not come back")
                    stop.set()
        time.sleep(0.2)


# --- REST on the control plane ----------------------------------------------------------

class CpDown(Exception):
    """The control plane did not answer (killed, or restarting)."""


rest_answers = {}  # status -> count, of the chaos loop's REST calls


class Rest:
    def __init__(self):
        self.conn = None
        self.bearer = None

    def call(self, method, path, body=None, user=None, form=None, expect=(200, 201)):
        headers = {}
        if user is None and self.bearer:
            headers["Authorization"] = f"Bearer {self.bearer}"
        else:
            user = user or ADMIN
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        if form is not None:
            data = "&".join(f"{k}={v}" for k, v in form.items())
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", CP_MGMT, timeout=30)
            self.conn.request(method, path, body=data, headers=headers)
            r = self.conn.getresponse()
            text = r.read()
        except (OSError, http.client.HTTPException) as e:
            if self.conn:
                self.conn.close()
            self.conn = None
            raise CpDown(str(e)) from None
        with lock:
            rest_answers[r.status] = rest_answers.get(r.status, 0) + 1
        if r.status not in expect:
            raise RuntimeError(f"{method} {path}: {r.status} {text[:300]!r}")
        return json.loads(text) if text else None

    def persist(self, fn):
        """Runs `fn` until the control plane answers it (waiting for each restart)."""
        while True:
            try:
                return fn()
            except CpDown:
                if not cp.ready.wait(120):
                    raise RuntimeError("the control plane did not come back within 120 s") from None


rest = Rest()
call = rest.call
PUB, DP, ADM = "/api/am/publisher/v4", "/api/am/devportal/v3", "/api/am/admin/v4"


def limit(n, unit):
    return {"type": "REQUESTCOUNTLIMIT", "requestCount": {"timeUnit": unit, "unitTime": 1, "requestCount": n}}


def policy(name, n, unit):
    return {"policyName": name, "defaultLimit": limit(n, unit), "stopOnQuotaReach": True, "billingPlan": "FREE"}


def create_api(name, context, path, plans):
    api = call("POST", f"{PUB}/apis", {
        "name": name, "context": context, "version": "1.0.0", "policies": plans,
        "endpointConfig": {"endpoint_type": "http", "production_endpoints": {"url": f"http://127.0.0.1:{BACKEND}{path}"}},
        "operations": [{"target": "/*", "verb": "GET"}]})["id"]
    call("POST", f"{PUB}/apis/change-lifecycle?apiId={api}&action=Publish")
    rev = call("POST", f"{PUB}/apis/{api}/revisions", {"description": "soak r0"})["id"]
    call("POST", f"{PUB}/apis/{api}/deploy-revision?revisionId={rev}", [{"name": "Default"}])
    return api, rev


def app_token(name, subscriptions, validity):
    """A new JWT application of DEV subscribed as given; (consumer key, secret, token)."""
    app = call("POST", f"{DP}/applications", {"name": name, "throttlingPolicy": "Unlimited", "tokenType": "JWT"},
               user=DEV)["applicationId"]
    for api, plan in subscriptions:
        call("POST", f"{DP}/subscriptions", {"applicationId": app, "apiId": api, "throttlingPolicy": plan}, user=DEV)
    keys = call("POST", f"{DP}/applications/{app}/generate-keys",
                {"keyType": "PRODUCTION", "grantTypesToBeSupported": ["client_credentials"],
                 "additionalProperties": {"validityTime": str(validity)}}, user=DEV)
    client = (keys["consumerKey"], keys["consumerSecret"])
    return client, token(client)


def token(client):
    return call("POST", "/oauth2/token", form={"grant_type": "client_credentials"}, user=client)["access_token"]


# --- Gateway probes ---------------------------------------------------------------------

probe_answers = {}  # (kind, gateway, status, code) -> count


class Probe:
    """Calls through one gateway on one keep-alive connection."""

    def __init__(self, i):
        self.i, self.conn = i, None

    def get(self, path, bearer):
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", GW_PORT[self.i], timeout=10)
                self.conn.request("GET", path, headers={"Authorization": f"Bearer {bearer}"})
                r = self.conn.getresponse()
                body = r.read()
                code = None
                if r.status >= 400:
                    try:
                        code = json.loads(body).get("code")
                    except ValueError:
                        pass
                return r.status, r.getheader("X-Path"), code
            except (OSError, http.client.HTTPException) as e:
                if self.conn:
                    self.conn.close()
                self.conn = None
                # A kept-alive connection the gateway closed: once more on a new one.
                if attempt == 2:
                    fail(f"gateway-{self.i}: probe {path} failed: {e}")
                    return None, None, None


probes = [Probe(0), Probe(1)]
checks = {}  # kind -> {"passed": n, "failed": n, "latency": [seconds of the slower gateway]}


def until_all(kind, path, bearer, done, streak_needed=1):
    """Polls `path` at both gateways until `done(status, x_path, code)` holds at each
    (`streak_needed` times in a row); fails the run if a gateway is not there within the
    documented bound, counted from the change or from the hub's latest restart."""
    start = now()
    pending, streak, took = {0, 1}, [0, 0], [0.0, 0.0]
    while pending:
        for g in sorted(pending):
            status, x_path, code = probes[g].get(path, bearer)
            with lock:
                key = (kind, g, status, code)
                probe_answers[key] = probe_answers.get(key, 0) + 1
            streak[g] = streak[g] + 1 if status is not None and done(status, x_path, code) else 0
            if streak[g] >= streak_needed:
                pending.discard(g)
                took[g] = now() - start
        if not pending or stop.is_set():
            break
        hub_up = tm.ready.is_set()
        if hub_up and now() > max(start, tm.ready_at) + PROPAGATION_BOUND:
            fail(f"{kind}: gateway(s) {sorted(pending)} did not reach the expected answer for {path} within "
                 f"{PROPAGATION_BOUND:.0f} s (last answers {[probes[g].get(path, bearer)[:3:2] for g in sorted(pending)]})")
            with lock:
                checks.setdefault(kind, {"passed": 0, "failed": 0, "latency": []})["failed"] += 1
            return False
        time.sleep(0.02)
    if pending:  # the soak is stopping
        return False
    with lock:
        c = checks.setdefault(kind, {"passed": 0, "failed": 0, "latency": []})
        c["passed"] += 1
        c["latency"].append(max(took))
    if max(took) > 1:
        log(f"{kind}: reached both gateways after {max(took):.1f} s (gateway-0 {took[0]:.1f} s, gateway-1 {took[1]:.1f} s)")
    return True


# --- Setup ------------------------------------------------------------------------------

def setup():
    log("setting up APIs, applications and tokens")
    call("POST", f"{ADM}/throttling/policies/subscription", policy("SoakLoad", LOOSE, "min"))
    call("POST", f"{ADM}/throttling/policies/subscription", policy("SoakProbe", LOOSE, "min"))
    s = {}
    s["api"], _ = create_api("Soak", "/soak", "/r0", ["SoakLoad", "SoakProbe", "Unlimited"])
    s["flip"], s["flip_rev"] = create_api("SoakFlip", "/soakflip", "/flip", ["Unlimited"])
    call("POST", f"{DP}/signup", {"username": DEV[0], "password": DEV[1]}, user=DEV)
    # The load's token: valid for the whole run, never revoked.
    _, s["load"] = app_token("load", [(s["api"], "SoakLoad"), (s["flip"], "Unlimited")], int(DURATION) + 7200)
    # Tokens issued and revoked by the chaos loop: short-lived, so revocations expire.
    s["revoke_client"], _ = app_token("revoke", [(s["api"], "Unlimited")], 600)
    _, s["throttle"] = app_token("throttle", [(s["api"], "SoakProbe")], int(DURATION) + 7200)
    # The chaos loop's REST calls carry an admin bearer token (no argon2 per call).
    admin_app = call("POST", f"{DP}/applications", {"name": "soakadmin", "throttlingPolicy": "Unlimited"})["applicationId"]
    keys = call("POST", f"{DP}/applications/{admin_app}/generate-keys",
                {"keyType": "PRODUCTION", "grantTypesToBeSupported": ["password"]})
    scopes = "apim:api_view apim:api_create apim:api_manage apim:api_publish apim:admin"
    rest.bearer = call("POST", "/oauth2/token", form={
        "grant_type": "password", "username": ADMIN[0], "password": ADMIN[1], "scope": scopes.replace(" ", "%20")},
        user=(keys["consumerKey"], keys["consumerSecret"]))["access_token"]
    for kind, path, tok in (("setup", "/soak/1.0.0/probe", s["load"]), ("setup", "/soakflip/1.0.0/x", s["load"]),
                            ("setup", "/soak/1.0.0/probe", s["throttle"])):
        if not until_all(kind, path, tok, lambda st, p, c: st == 200):
            raise RuntimeError("the gateways never served the soak's APIs")
    return s


# --- Load -------------------------------------------------------------------------------

def hey(i, seconds, rate=None, bearer=None):
    """Runs hey against gateway i; returns (seconds, {status: n}, {error: n})."""
    args = ["hey", "-z", f"{seconds:.3f}s", "-c", str(WORKERS), "-H", f"Authorization: Bearer {bearer}"]
    if rate:
        args += ["-q", f"{rate / WORKERS:.3f}"]
    out = subprocess.run(args + [f"http://127.0.0.1:{GW_PORT[i]}/soak/1.0.0/load"], capture_output=True, text=True,
                         start_new_session=True).stdout
    statuses = {int(s): int(n) for s, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    errors = {}
    if "Error distribution:" in out:
        for n, what in re.findall(r"\[(\d+)\]\s+(.+)", out.split("Error distribution:")[1]):
            what = re.sub(r"\d+\.\d+\.\d+\.\d+:\d+", "ADDR", what)
            errors[what] = errors.get(what, 0) + int(n)
    total = re.search(r"Total:\s+([\d.]+) secs", out)
    return (float(total.group(1)) if total else seconds), statuses, errors


def both(fn):
    res = [None, None]
    ts = [threading.Thread(target=lambda i=i: res.__setitem__(i, fn(i))) for i in (0, 1)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return res


segments = []  # (start s, gateway, seconds, statuses, errors)


def load_loop(rate_per_gw, bearer, end):
    while now() < end - 0.5:
        start = now()
        seconds = min(SEGMENT, end - start)
        for i, (secs, statuses, errors) in enumerate(both(lambda i: hey(i, seconds, rate_per_gw, bearer))):
            with lock:
                segments.append((start, i, secs, statuses, errors))
            bad = {s: n for s, n in statuses.items() if not 200 <= s < 300}
            if bad or errors:
                log(f"load at gateway-{i}, segment from {start:.0f}s: non-2xx {bad} errors {errors}")


# --- Chaos ------------------------------------------------------------------------------

actions_done = {}


class Chaos:
    def __init__(self, s):
        self.s = s
        self.k = 0
        self.tight = False

    def revisions(self, api):
        return rest.persist(lambda: call("GET", f"{PUB}/apis/{api}/revisions"))["list"]

    def flip(self):
        """Deploys or undeploys SoakFlip; both gateways must serve it (200) or not (404)."""
        api, rev = self.s["flip"], self.s["flip_rev"]
        deployed = any(r["deploymentInfo"] for r in self.revisions(api))
        if deployed:
            rest.persist(lambda: call("POST", f"{PUB}/apis/{api}/undeploy-revision?revisionId={rev}&allEnvironments=true", []))
        else:
            rest.persist(lambda: call("POST", f"{PUB}/apis/{api}/deploy-revision?revisionId={rev}", [{"name": "Default"}]))
        deployed = any(r["deploymentInfo"] for r in self.revisions(api))
        want = 200 if deployed else 404
        until_all("deploy" if deployed else "undeploy", "/soakflip/1.0.0/x", self.s["load"],
                  lambda st, p, c: st == want and (want == 200 or c == 900906))

    def redeploy(self):
        """A new revision of the loaded API (with a new backend path) replaces the served one
        under load; both gateways must route to the new path."""
        api = self.s["api"]
        self.k += 1
        label = f"soak r{self.k}"

        def step():
            current = call("GET", f"{PUB}/apis/{api}")
            current["endpointConfig"]["production_endpoints"]["url"] = f"http://127.0.0.1:{BACKEND}/r{self.k}"
            call("PUT", f"{PUB}/apis/{api}", current)
            revs = call("GET", f"{PUB}/apis/{api}/revisions")["list"]
            # At most 5 revisions per API: keep 3 before making the next one.
            extra = len(revs) - 3
            for r in revs:
                if extra > 0 and not r["deploymentInfo"] and r["description"] != label:
                    call("DELETE", f"{PUB}/apis/{api}/revisions/{r['id']}", expect=(200, 204, 404))
                    extra -= 1
            mine = [r for r in revs if r["description"] == label]
            rev = mine[0]["id"] if mine else call("POST", f"{PUB}/apis/{api}/revisions", {"description": label})["id"]
            call("POST", f"{PUB}/apis/{api}/deploy-revision?revisionId={rev}", [{"name": "Default"}])

        rest.persist(step)
        served = [r["description"] for r in self.revisions(api) if r["deploymentInfo"]]
        if served != [label]:
            fail(f"redeploy: the publisher says {served} is deployed, not {label}")
            return
        prefix = f"/r{self.k}/"
        until_all("redeploy", "/soak/1.0.0/probe", self.s["load"],
                  lambda st, p, c: st == 200 and (p or "").startswith(prefix))

    def revoke(self):
        """A new token is accepted at both gateways; once revoked, refused (401 900901) at both."""
        client = self.s["revoke_client"]
        t = rest.persist(lambda: token(client))
        if not until_all("new token", "/soak/1.0.0/probe", t, lambda st, p, c: st == 200):
            return
        rest.persist(lambda: call("POST", "/oauth2/revoke", form={"token": t}, user=client))
        until_all("revoke", "/soak/1.0.0/probe", t, lambda st, p, c: st == 401 and c == 900901)

    def policy(self):
        """Switches the probe's plan between 1 per day and 2e9 per minute: both gateways must
        refuse (429 900804) or admit 5 calls in a row."""
        self.tight = not self.tight
        n, unit = (TIGHT, "day") if self.tight else (LOOSE, "min")
        rest.persist(lambda: call("PUT", f"{ADM}/throttling/policies/subscription/SoakProbe", policy("SoakProbe", n, unit)))
        if self.tight:
            until_all("policy tight", "/soak/1.0.0/probe", self.s["throttle"], lambda st, p, c: st == 429 and c == 900804)
        else:
            until_all("policy loose", "/soak/1.0.0/probe", self.s["throttle"], lambda st, p, c: st == 200, 5)

    def run(self, end):
        kinds = [self.flip, self.redeploy, self.revoke, self.policy]
        while now() < end and not stop.is_set():
            action = rng.choice(kinds)
            try:
                action()
            except Exception as e:  # noqa: BLE001 - any failure of the loop is a finding
                fail(f"chaos {action.__name__}: {e}")
            actions_done[action.__name__] = actions_done.get(action.__name__, 0) + 1
            time.sleep(rng.uniform(1, 3))


# --- Faults -----------------------------------------------------------------------------

kills = []  # (at, node, seconds down until ready again)


def killer(end):
    """Kills -9 the traffic manager and the control plane at random moments, each on its own
    schedule (every 45-240 s; 20-60 s in a short run), and starts it again after 0-5 s;
    none in the last 20 s."""
    gap = (20, 60) if SHORT else (45, 240)
    first = (0.1 * DURATION, 0.4 * DURATION) if SHORT else gap
    due = {n.name: now() + rng.uniform(*first) for n in (tm, cp) if n.name in KILL}
    while due and not stop.is_set():
        name, at = min(due.items(), key=lambda x: x[1])
        if at > end - 20:
            return
        while now() < at and not stop.is_set():
            time.sleep(0.05)
        node = tm if name == tm.name else cp
        t = now()
        log(f"kill -9 {node.name} (pid {node.pid()}, incarnation {node.incarnation})")
        node.kill9()
        time.sleep(rng.uniform(0, 5))
        node.restart()
        if not node.wait_ready():
            fail(f"{node.name} did not become ready after a restart; see {WORK}/{node.name}.log")
            stop.set()
            return
        log(f"{node.name} ready again (incarnation {node.incarnation}) after {now() - t:.1f} s")
        kills.append((t, node.name, now() - t))
        due[name] = now() + rng.uniform(*gap)


# --- Resources --------------------------------------------------------------------------

samples = []  # dicts; "t" is seconds since the load started
LOAD_START = [0.0]


def proc_stats(pid):
    """RSS in kB, open descriptors and threads of a process (Nones once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
        rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
        threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
        return rss, len(os.listdir(f"/proc/{pid}/fd")), threads
    except (OSError, AttributeError):
        return None, None, None


def heap_kb(port):
    """The node's live heap (`tollgate_process_heap_bytes`, counted by its allocator), in kB."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/metrics")
        m = re.search(r"^tollgate_process_heap_bytes (\S+)$", c.getresponse().read().decode(), re.M)
        return int(float(m.group(1)) / 1024) if m else None
    except (OSError, ValueError, http.client.HTTPException):
        return None


def pg_backends():
    """PIDs of the PostgreSQL backends connected to the soak's databases."""
    names = ",".join(f"'{u.rsplit('/', 1)[1]}'" for u in (PG_AM, PG_SHARED))
    out = subprocess.run(["psql", PG_AM, "-Atc", f"select pid from pg_stat_activity where datname in ({names}) "
                          "and pid <> pg_backend_pid()"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def sample(with_postgres):
    t = round(now() - LOAD_START[0], 1)
    for n in NODES:
        pid = n.pid() if not n.expect_down else None
        rss, fds, threads = proc_stats(pid) if pid else (None, None, None)
        heap = heap_kb(n.mgmt) if rss is not None else None
        samples.append({"t": t, "node": n.name, "pid": pid, "incarnation": n.incarnation,
                        "age": round(now() - n.started, 1), "rss_kb": rss, "fds": fds, "heap_kb": heap,
                        "threads": threads})
    rss, fds, _ = proc_stats(REDIS_PID)
    samples.append({"t": t, "node": "redis", "pid": REDIS_PID, "incarnation": 1, "age": t, "rss_kb": rss, "fds": fds,
                    "heap_kb": None})
    if with_postgres:
        pids = pg_backends()
        stats = [proc_stats(p) for p in pids]
        samples.append({"t": t, "node": "postgres", "pid": len(pids), "incarnation": 1, "age": t,
                        "rss_kb": sum(s[0] or 0 for s in stats), "fds": sum(s[1] or 0 for s in stats),
                        "heap_kb": None})


def sampler(end):
    """Every FINE seconds (PostgreSQL once per interval, in its middle)."""
    k = 0
    per = int(round(SAMPLE / FINE))
    while True:
        at = LOAD_START[0] + k * FINE
        if at > end:
            return
        while now() < at:
            if stop.wait(0.1):
                return
        sample(k % per == per // 2)
        k += 1


def intervals():
    """Per sampling interval and node: (floor, peak) of RSS, of descriptors and of the live
    heap (None where the node does not report one), and the incarnation seen last; for restarted nodes `settled` has the same from samples of age
    >= SETTLE only (None when there is none)."""
    out = {}
    for sm in samples:
        if sm["rss_kb"] is None:
            continue
        i = int(sm["t"] // SAMPLE)
        d = out.setdefault((i, sm["node"]), {"all": [], "settled": [], "incarnation": 0})
        d["all"].append(sm)
        d["incarnation"] = max(d["incarnation"], sm["incarnation"])
        if sm["node"] not in (cp.name, tm.name) or sm["age"] >= SETTLE:
            d["settled"].append(sm)
    res = {}
    for key, d in out.items():
        def span(xs):
            if not xs:
                return None
            heaps = [x["heap_kb"] for x in xs if x.get("heap_kb") is not None]
            threads = [x["threads"] for x in xs if x.get("threads") is not None]
            return (min(x["rss_kb"] for x in xs), max(x["rss_kb"] for x in xs),
                    min(x["fds"] for x in xs), max(x["fds"] for x in xs),
                    min(heaps) if heaps else None, max(heaps) if heaps else None,
                    min(threads) if threads else None, max(threads) if threads else None)
        res[key] = {"all": span(d["all"]), "settled": span(d["settled"]), "incarnation": d["incarnation"]}
    return res


# --- Report -----------------------------------------------------------------------------

def hub_sequence():
    c = http.client.HTTPConnection("127.0.0.1", TM_PORT, timeout=5)
    c.request("GET", "/internal/v1/events/latest", headers={"Authorization": f"Bearer {SECRET}"})
    return json.loads(c.getresponse().read())["sequence"]


def gateway_ready(i):
    c = http.client.HTTPConnection("127.0.0.1", GW_MGMT[i], timeout=5)
    c.request("GET", "/health/ready")
    return json.loads(c.getresponse().read())


def final_convergence():
    """Every gateway holds the hub's newest event, within the bound."""
    tm.ready.wait(60)
    latest = hub_sequence()
    deadline = time.monotonic() + PROPAGATION_BOUND
    for i in (0, 1):
        while True:
            r = gateway_ready(i)
            if (r.get("gateway", {}).get("sequence") or 0) >= latest:
                log(f"gateway-{i} holds the hub's newest event {latest}: {r['gateway']}")
                break
            if time.monotonic() > deadline:
                fail(f"gateway-{i} holds sequence {r.get('gateway', {}).get('sequence')} < the hub's {latest}")
                break
            time.sleep(0.1)


GATEWAY_SERIES = ("tollgate_gateway_events_applied_total", "tollgate_gateway_snapshots_loaded_total",
                  "tollgate_gateway_gaps_detected_total", "tollgate_gateway_analytics_dropped_total",
                  "tollgate_gateway_throttle_fallback", "tollgate_gateway_hub_connected")


def gateway_metrics(i):
    """The gateway's own counters of how it followed the hub (from /metrics)."""
    c = http.client.HTTPConnection("127.0.0.1", GW_MGMT[i], timeout=5)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    out = {}
    for name in GATEWAY_SERIES:
        vals = [float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)]
        out[name.removeprefix("tollgate_gateway_")] = sum(vals) if vals else None
    return out


def pct(xs, q):
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] if s else 0


def growth_check():
    """Per node, the floor of each interval (its lowest RSS, fewest open descriptors, smallest
    live heap), after warm-up: the median of the last k floors against the median of the
    first k (k: a quarter of the intervals, 1-5). A leak raises the floor; what is held for a
    moment, and connections in flight, move the peaks. For a Tollgate node the live heap and
    the descriptors are judged (HEAP_SLACK_KB and FDS_SLACK above the bound): its RSS also
    holds what mimalloc caches for reuse, which moves by 10-15 % between minutes under the
    same load without the program holding more (docs/soak.md), so RSS is judged against a
    bound of its own (RSS_BOUND, 25 %) that catches what the heap count cannot see (thread
    stacks, mapped files). A binary built without heap-stats, and Redis, are judged on RSS
    and descriptors. The control plane and the traffic manager are killed and restarted, so
    their samples count from each incarnation's 20th second and are compared across
    incarnations: the same role under the same work should need the same memory at the end
    as at the start. Judged only when the intervals span GROWTH_SPAN (600 s) after warm-up:
    in a shorter run, warm-up cannot be told from a leak."""
    lines = []
    agg = intervals()
    first = int(WARMUP // SAMPLE)
    for name in [n.name for n in NODES] + ["redis"]:
        floors = [(i, agg[(i, name)]["settled"]) for i in sorted(i for i, n in agg if n == name)
                  if i >= first and agg[(i, name)]["settled"]]
        k = max(1, min(5, len(floors) // 4))
        span = (floors[-1][0] - floors[0][0] + 1) * SAMPLE if floors else 0

        def levels(j):
            if len(floors) < 2:
                return None
            head = [f[j] for _, f in floors[:k] if f[j] is not None]
            tail = [f[j] for _, f in floors[-k:] if f[j] is not None]
            return (statistics.median(head), statistics.median(tail)) if head and tail else None

        def rise(j):
            lv = levels(j)
            return None if lv is None else lv[1] / lv[0] - 1

        growth = {"rss": rise(0), "fds": rise(2), "heap": rise(4)}
        fds = levels(2)
        judged = len(floors) >= 2 and span >= GROWTH_SPAN
        bounds = {"fds": GROWTH_BOUND, "heap": GROWTH_BOUND, "rss": RSS_BOUND} if growth["heap"] is not None \
            else {"fds": GROWTH_BOUND, "rss": GROWTH_BOUND}
        heap = levels(4)
        over = [m for m, b in bounds.items() if growth[m] is not None and growth[m] > b
                and not (m == "fds" and fds[1] - fds[0] <= FDS_SLACK)
                and not (m == "heap" and heap[1] - heap[0] <= HEAP_SLACK_KB)]
        ok = not judged or not over
        lines.append((name, len(floors), k, span, growth, judged, ok))
        if not ok:
            fail(f"{name}: growth of the floor after warm-up: "
                 + ", ".join(f"{m} {growth[m] * 100:+.1f} % (bound {bounds[m] * 100:.0f} %)" for m in over))
    return lines


def report(peak, rate, metrics):
    print()
    print(f"machine: {os.cpu_count()} cores, {os.uname().release}; load average at the end "
          f"{open('/proc/loadavg').read().split()[:3]}")
    print(f"binary: {BIN}; seed {SEED}; duration {DURATION:.0f} s of load; samples every {SAMPLE:.0f} s; "
          f"warm-up {WARMUP:.0f} s")
    print(f"peak (hey, {WORKERS} connections per gateway, both gateways, {PEAK_SECONDS:.0f} s): {peak:.0f} req/s; "
          f"target {LOAD_SHARE * 100:.0f} %: {rate:.0f} req/s")
    print()
    print("Load through the gateways (the load's token is never revoked and its plan never reached:")
    print("every answer must be 2xx; see docs/soak.md):")
    print(f"{'gateway':10} {'requests':>10} {'req/s':>8} {'2xx':>10}  non-2xx by status / client errors")
    total_bad, achieved = 0, 0.0
    for i in (0, 1):
        seg = [s for s in segments if s[1] == i]
        st, er = {}, {}
        for _, _, _, statuses, errors in seg:
            for k, v in statuses.items():
                st[k] = st.get(k, 0) + v
            for k, v in errors.items():
                er[k] = er.get(k, 0) + v
        n = sum(st.values())
        ok = sum(v for k, v in st.items() if 200 <= k < 300)
        bad = {k: v for k, v in st.items() if not 200 <= k < 300}
        total_bad += sum(bad.values()) + sum(er.values())
        secs = sum(s[2] for s in seg) or 1
        achieved += n / secs
        print(f"gateway-{i:<2} {n:>10} {n / secs:>8.0f} {ok:>10}  {bad or '-'} {er or ''}")
    print(f"achieved {achieved:.0f} req/s: {achieved / peak * 100:.0f} % of the peak (hey falls behind its rate when"
          " the machine is busier than during the peak)")
    if total_bad:
        fail(f"{total_bad} load answers were not 2xx (or were client errors)")
    print()
    print("Non-2xx answers by status and code, per kind (probes; each is the expected answer of its check"
          " or the answer before the change arrived):")
    by = {}
    for (kind, g, status, code), n in probe_answers.items():
        if status is None or not 200 <= status < 300:
            by.setdefault((kind, status, code), 0)
            by[(kind, status, code)] += n
    for (kind, status, code), n in sorted(by.items(), key=lambda x: (x[0][0], x[0][1] or 0)):
        print(f"  {kind:14} {status} {code or '':8} {n}")
    print(f"  REST answers of the chaos loop by status: {dict(sorted(rest_answers.items()))}")
    print()
    print("Changes and whether they reached both gateways (latency: until the slower gateway answered as expected):")
    print(f"{'check':14} {'passed':>7} {'failed':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind, c in sorted(checks.items()):
        lat = c["latency"]
        print(f"{kind:14} {c['passed']:>7} {c['failed']:>7} {pct(lat, .5) * 1000:>8.0f} {pct(lat, .99) * 1000:>8.0f} "
              f"{max(lat or [0]) * 1000:>8.0f}")
    print(f"chaos actions: {actions_done}")
    for i, m in enumerate(metrics):
        print(f"gateway-{i} at the end: {m}")
    down = {}
    for _, name, secs in kills:
        down.setdefault(name, []).append(secs)
    for name, d in down.items():
        print(f"kill -9 {name}: {len(d)} times, down (kill to ready) median {statistics.median(d):.1f} s, "
              f"max {max(d):.1f} s")
    print()
    print(f"RSS in MB (floor-peak) / open fds (floor-peak) per node and {SAMPLE:.0f} s interval, read every "
          f"{FINE:.0f} s (postgres: the backends")
    print("serving the soak's databases, summed, once per interval; control plane and traffic manager: #n = the")
    print("incarnation seen last, n restarts so far; t: seconds of load at the interval's start):")
    names = [n.name for n in NODES] + ["redis", "postgres"]
    agg = intervals()
    print(f"{'t (s)':>6} " + " ".join(f"{n:>24}" for n in names))
    for i in sorted({i for i, _ in agg}):
        row = []
        for n in names:
            d = agg.get((i, n))
            if not d:
                row.append(f"{'down':>24}")
                continue
            r0, r1, f0, f1 = d["all"][:4]
            tag = f"#{d['incarnation'] - 1}" if n in (cp.name, tm.name) else ""
            cell = f"{r0 / 1024:.0f}-{r1 / 1024:.0f}/{f0}-{f1}" if r0 != r1 or f0 != f1 else f"{r0 / 1024:.0f}/{f0}"
            row.append(f"{cell:>20}{tag:>4}")
        print(f"{i * SAMPLE:>6.0f} " + " ".join(row))
    print()
    tollgate = [n.name for n in NODES]
    print(f"Live heap in MB (floor-peak; '-' when the binary was built without heap-stats) / threads (floor-peak)")
    print(f"per Tollgate node and {SAMPLE:.0f} s interval (tollgate_process_heap_bytes and /proc, read with RSS):")
    print(f"{'t (s)':>6} " + " ".join(f"{n:>24}" for n in tollgate))
    for i in sorted({i for i, _ in agg}):
        row = []
        for n in tollgate:
            d = agg.get((i, n))
            h0, h1, t0, t1 = d["all"][4:8] if d else (None, None, None, None)
            cell = "-" if h0 is None else (f"{h0 / 1024:.1f}-{h1 / 1024:.1f}" if h0 != h1 else f"{h0 / 1024:.1f}")
            if t0 is not None:
                cell += f"/{t0}-{t1}" if t0 != t1 else f"/{t0}"
            row.append(f"{cell:>24}")
        print(f"{i * SAMPLE:>6.0f} " + " ".join(row))
    print()
    print(f"Growth after warm-up ({WARMUP:.0f} s): median of the last k interval floors against the first k, judged "
          f"over at least {GROWTH_SPAN:.0f} s; bound {GROWTH_BOUND * 100:.0f} % on the live heap (and more than "
          f"{HEAP_SLACK_KB} kB) and descriptors (and more than {FDS_SLACK}) of Tollgate nodes, {RSS_BOUND * 100:.0f} % on "
          f"their RSS; {GROWTH_BOUND * 100:.0f} % on Redis's RSS and descriptors:")

    def fmt(x):
        return "     -" if x is None else f"{x * 100:+6.1f} %"

    for name, n, k, span, g, judged, ok in growth_check():
        verdict = ("ok" if ok else "OVER") if judged else f"reported, not judged (intervals span {span:.0f} s)"
        print(f"  {name:16} intervals {n:>3} (k={k})  heap {fmt(g['heap'])}  RSS {fmt(g['rss'])}  "
              f"fds {fmt(g['fds'])}  {verdict}")
    print()
    if failures:
        print(f"FAILED: {len(failures)} finding(s):")
        for t, text in failures:
            print(f"  [{t:7.1f}s] {text}")
    else:
        growth = "growth within bound" if DURATION - WARMUP >= GROWTH_SPAN else "growth reported, not judged"
        print(f"PASSED: every load answer 2xx, every change reached both gateways, no crash, {growth}.")


def main():
    log(f"seed {SEED}; work dir {WORK}")
    for n in (cp, tm):
        n.start()
    for n in (cp, tm):
        if not n.wait_ready():
            sys.exit(f"{n.name} did not start; see {WORK}/{n.name}.log")
    for n in gws:
        n.start()
    for n in gws:
        if not n.wait_ready():
            sys.exit(f"{n.name} did not start; see {WORK}/{n.name}.log")
    threading.Thread(target=watch_nodes, daemon=True).start()
    s = setup()
    # Peak: hey without a rate limit through both gateways at once.
    both(lambda i: hey(i, 1, None, s["load"]))  # warm the connections and caches
    res = both(lambda i: hey(i, PEAK_SECONDS, None, s["load"]))
    peak = sum(sum(r[1].values()) / r[0] for r in res)
    if any(r[2] or any(not 200 <= k < 300 for k in r[1]) for r in res):
        fail(f"non-2xx answers or errors while measuring the peak: {[(r[1], r[2]) for r in res]}")
    rate = LOAD_SHARE * peak
    log(f"peak {peak:.0f} req/s through both gateways; load {rate:.0f} req/s ({rate / 2:.0f} per gateway)")
    load_start = now()
    LOAD_START[0] = load_start
    log("load starts (resource samples count their time from here)")
    end = load_start + DURATION
    load = threading.Thread(target=load_loop, args=(rate / 2, s["load"], end))
    chaos = Chaos(s)
    threads = [load, threading.Thread(target=chaos.run, args=(end - 15,)), threading.Thread(target=killer, args=(end,)),
               threading.Thread(target=sampler, args=(end,))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final_convergence()
    for n in NODES:
        tail = open(f"{WORK}/{n.name}.log", errors="replace").read()
        panics = tail.count("panicked")
        if panics:
            fail(f"{n.name}: {panics} panic(s) in its log")
        errors = len(re.findall(r"\bERROR\b", tail))
        if errors:
            log(f"{n.name}: {errors} ERROR lines in its log (see {WORK}/{n.name}.log)")
    stop.set()
    with open(f"{OUT}/soak-resources.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["t", "node", "pid", "incarnation", "age", "rss_kb", "fds", "heap_kb", "threads"])
        w.writeheader()
        w.writerows(samples)
    with open(f"{OUT}/soak-timeline.txt", "w") as f:
        f.writelines(f"{t:8.1f} {text}\n" for t, text in timeline)
    report(peak, rate, [gateway_metrics(i) for i in (0, 1)])
    print(f"\nresources per sample: {OUT}/soak-resources.csv; timeline: {OUT}/soak-timeline.txt; logs: {WORK}")
    for n in NODES:
        with n.lock:
            n.expect_down = True
            if n.pid():
                n.proc.terminate()
    for n in NODES:
        try:
            n.proc.wait(10)
        except subprocess.TimeoutExpired:
            n.proc.kill()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
