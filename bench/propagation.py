"""Propagation benchmark (see propagation.sh): how long from the REST call that deploys a
revision (or revokes a token) until every gateway serves (refuses) it. Prints p50/p99/max
over the trials, in milliseconds."""
import http.client, os, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tollgate_rest import Rest  # noqa: E402

mgmt = int(sys.argv[1])
gateways = [int(p) for p in sys.argv[2].split(",")]
trials = int(sys.argv[3])
rest = Rest(mgmt)


def wait_all(path, done, token=None, timeout=10.0):
    """Polls `path` on every gateway from now until `done(status)` holds on each; returns
    the seconds until the last one did."""
    start = time.perf_counter()
    finished = [None] * len(gateways)

    def poll(i, port):
        conn = http.client.HTTPConnection("127.0.0.1", port)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        while time.perf_counter() - start < timeout:
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            r.read()
            if done(r.status):
                finished[i] = time.perf_counter()
                return
            time.sleep(0.001)

    threads = [threading.Thread(target=poll, args=(i, p)) for i, p in enumerate(gateways)]
    return start, threads, finished


def measure(action, path, done, token=None):
    start, threads, finished = wait_all(path, done, token)
    for t in threads:
        t.start()
    action()
    for t in threads:
        t.join()
    if any(f is None for f in finished):
        sys.exit(f"a gateway never reached the expected answer for {path}")
    return (max(finished) - start) * 1000


def summary(name, samples):
    s = sorted(samples)
    rank = lambda q: s[min(len(s) - 1, max(0, int(round(q * len(s))) - 1))]
    print(f"{name}\ttrials {len(s)}\tp50 {rank(0.50):.1f} ms\tp99 {rank(0.99):.1f} ms\tmax {s[-1]:.1f} ms")


# Deploy: an API created and published beforehand; the clock starts at the deploy call.
deploy_ms = []
for i in range(trials):
    api, rev = rest.create(f"Prop{i}", f"/prop{i}", f"http://127.0.0.1:{mgmt}/health")
    deploy_ms.append(measure(lambda: rest.deploy_revision(api, rev), f"/prop{i}/1.0.0/live", lambda s: s != 404))
summary("deploy → served by all", deploy_ms)

# Revoke: a fresh token accepted by every gateway; the clock starts at the revoke call.
base = rest.deploy("PropBase", "/propbase", f"http://127.0.0.1:{mgmt}/health")
dev = ("propdev", "propdev-password")
rest.call("POST", "/api/am/devportal/v3/signup", {"username": dev[0], "password": dev[1]}, user=dev)
app = rest.call("GET", "/api/am/devportal/v3/applications", user=dev)["list"][0]["applicationId"]
rest.call("POST", "/api/am/devportal/v3/subscriptions",
          {"applicationId": app, "apiId": base, "throttlingPolicy": "Unlimited"}, user=dev)
keys = rest.call("POST", f"/api/am/devportal/v3/applications/{app}/generate-keys",
                 {"keyType": "PRODUCTION", "grantTypesToBeSupported": ["client_credentials"]}, user=dev)
client = (keys["consumerKey"], keys["consumerSecret"])
revoke_ms = []
for i in range(trials):
    token = rest.call("POST", "/oauth2/token", form={"grant_type": "client_credentials"}, user=client)["access_token"]
    measure(lambda: None, "/propbase/1.0.0/live", lambda s: s == 200, token)
    revoke_ms.append(measure(lambda: rest.call("POST", "/oauth2/revoke", form={"token": token}, user=client),
                             "/propbase/1.0.0/live", lambda s: s == 401, token))

summary("revoke → refused by all", revoke_ms)
