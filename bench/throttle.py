"""The throttling accuracy benchmark's driver (see throttle.sh): sets up one API and one
subscription per configuration on the cluster the script started, offers 3x each limit through
N gateways (round-robin or 80/10/10), and prints admitted/L per window. Standard library only.

  python3 throttle.py MGMT GATEWAYS_1TM GATEWAYS_2TM BACKEND_URL [WINDOWS]
"""
import asyncio, os, re, shutil, statistics, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tollgate_rest import Rest  # noqa: E402

mgmt = int(sys.argv[1])
one_tm = [int(p) for p in sys.argv[2].split(",")]   # gateways following one traffic manager
two_tm = [int(p) for p in sys.argv[3].split(",")]   # gateways spread over two (Redis-backed)
backend_url = sys.argv[4]
windows = int(sys.argv[5]) if len(sys.argv) > 5 else 3

rest = Rest(mgmt)
call = rest.call
DEV = ("tbench", "tbench-password")


def limit(n, unit, unit_time=1):
    return {"type": "REQUESTCOUNTLIMIT", "requestCount": {"timeUnit": unit, "unitTime": unit_time, "requestCount": n}}


PLANS = {"L10": (10, "min", 60_000), "L600": (600, "min", 60_000), "L1000ps": (1000, "sec", 1_000),
         # For the throughput cost: counted on every call, never reached.
         "Huge": (1_000_000_000, "min", 60_000)}
for name, (n, unit, _) in PLANS.items():
    call("POST", "/api/am/admin/v4/throttling/policies/subscription",
         {"policyName": name, "defaultLimit": limit(n, unit), "stopOnQuotaReach": True, "billingPlan": "FREE"})

api = call("POST", "/api/am/publisher/v4/apis", {
    "name": "Throttled", "context": "/throttled", "version": "1.0.0", "policies": list(PLANS) + ["Unlimited"],
    "endpointConfig": {"endpoint_type": "http", "production_endpoints": {"url": backend_url}},
    "operations": [{"target": "/*", "verb": "GET"}]})["id"]
call("POST", f"/api/am/publisher/v4/apis/change-lifecycle?apiId={api}&action=Publish")
rev = call("POST", f"/api/am/publisher/v4/apis/{api}/revisions", {})["id"]
call("POST", f"/api/am/publisher/v4/apis/{api}/deploy-revision?revisionId={rev}",
     [{"name": "Default", "displayOnDevportal": True}])
call("POST", "/api/am/devportal/v3/signup", {"username": DEV[0], "password": DEV[1]}, user=DEV)


def subscriber(label, plan):
    """A new application subscribed with `plan`; returns its access token."""
    app = call("POST", "/api/am/devportal/v3/applications",
               {"name": label, "throttlingPolicy": "Unlimited", "tokenType": "JWT"}, user=DEV)["applicationId"]
    call("POST", "/api/am/devportal/v3/subscriptions",
         {"applicationId": app, "apiId": api, "throttlingPolicy": plan}, user=DEV)
    keys = call("POST", f"/api/am/devportal/v3/applications/{app}/generate-keys",
                {"keyType": "PRODUCTION", "grantTypesToBeSupported": ["client_credentials"]}, user=DEV)
    return call("POST", "/oauth2/token", form={"grant_type": "client_credentials"},
                user=(keys["consumerKey"], keys["consumerSecret"]))["access_token"]


def configs(plan):
    """(label, gateway ports, skewed, token) for every N and split, with one traffic manager
    and with two (Redis-backed; their gateways alternate between them), each with its own
    subscription to `plan`."""
    out = []
    for tms, ports in (("1 TM", one_tm), ("2 TMs", two_tm)):
        spread = ports if tms == "1 TM" else [ports[0], ports[-1], ports[1]]
        # One gateway talks to one traffic manager: N=1 is measured with one only.
        for n in (1, 2, 3) if tms == "1 TM" else (2, 3):
            out.append((f"{tms}, N={n}, round-robin", spread[:n], False))
        out.append((f"{tms}, N=3, 80/10/10", spread[:3], True))
    return [(label, ports, skewed, subscriber(f"{plan} {label}", plan)) for label, ports, skewed in out]


class Stream:
    """One configuration's load: `rate` calls/s for whole windows of `window_ms`."""

    def __init__(self, label, ports, skewed, token, rate, window_ms):
        self.label, self.ports, self.skewed, self.token = label, ports, skewed, token
        self.rate, self.window_ms = rate, window_ms
        self.admitted, self.refused, self.other, self.sent = {}, 0, {}, 0
        self.idle = {p: [] for p in ports}

    def gateway(self, k):
        if self.skewed:
            slot = k % 10
            return self.ports[0 if slot < 8 else 1 if slot == 8 else 2]
        return self.ports[k % len(self.ports)]

    async def one(self, port):
        conns = self.idle[port]
        reader, writer = conns.pop() if conns else await asyncio.open_connection("127.0.0.1", port)
        sent = time.time()
        writer.write(f"GET /throttled/1.0.0/live HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {self.token}\r\n\r\n"
                     .encode())
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await reader.readexactly(length)
        done = time.time()
        conns.append((reader, writer))
        status = int(head[9:12])
        window = int((sent + done) / 2 * 1000) // self.window_ms
        if status == 200:
            self.admitted[window] = self.admitted.get(window, 0) + 1
        elif status == 429:
            self.refused += 1
        else:
            self.other[status] = self.other.get(status, 0) + 1

    async def run(self, start, end):
        tasks, k = [], 0
        while True:
            at = start + k / self.rate
            if at >= end:
                break
            delay = at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.one(self.gateway(k))))
            k += 1
        self.sent = k
        await asyncio.gather(*tasks, return_exceptions=True)


async def measure(streams, window_ms):
    now = time.time()
    start = (int(now * 1000) // window_ms + 1) * window_ms / 1000
    end = start + windows * window_ms / 1000
    await asyncio.gather(*(s.run(start, end) for s in streams))
    first = int(start * 1000) // window_ms
    return [[s.admitted.get(first + w, 0) for w in range(windows)] for s in streams]


def report(title, limit_per_window, streams, counts):
    print(f"\n{title}: limit L = {limit_per_window} per window, offered 3 x L, {windows} windows")
    print(f"{'configuration':34} {'admitted/L per window':32} {'offered':>8} {'other':>6}")
    for s, c in zip(streams, counts):
        ratios = " ".join(f"{a / limit_per_window:6.3f}" for a in c)
        extra = ",".join(f"{k}:{v}" for k, v in s.other.items()) or "-"
        print(f"{s.label:34} {ratios:32} {s.sent:8} {extra:>6}  (admitted {c})")


async def main():
    per_minute = []
    for plan in () if os.environ.get("ONLY_PER_SECOND") else ("L10", "L600"):
        n, _, window_ms = PLANS[plan]
        for label, ports, skewed, token in configs(plan):
            per_minute.append((plan, Stream(label, ports, skewed, token, 3 * n / 60, window_ms)))
    print(f"Per-minute limits: {len(per_minute)} configurations at once over {windows} minutes...", file=sys.stderr)
    counts = await measure([s for _, s in per_minute], 60_000) if per_minute else []
    for plan in () if not per_minute else ("L10", "L600"):
        chosen = [(s, c) for (p, s), c in zip(per_minute, counts) if p == plan]
        report(f"{PLANS[plan][0]} requests per minute", PLANS[plan][0], [s for s, _ in chosen], [c for _, c in chosen])
    # 60 000 per minute as 1 000 per second: one configuration at a time.
    streams, counts = [], []
    for label, ports, skewed, token in configs("L1000ps"):
        if os.environ.get("ONLY") and os.environ["ONLY"] not in label:
            continue
        s = Stream(label, ports, skewed, token, 3000, 1000)
        print(f"1000/s: {label}...", file=sys.stderr)
        counts += await measure([s], 1000)
        streams.append(s)
    report("1 000 requests per second (60 000 per minute)", 1000, streams, counts)


def wrk(token, seconds):
    out = subprocess.run(["wrk", "-t1", "-c32", f"-d{seconds}s", "-H", f"Authorization: Bearer {token}",
                          f"http://127.0.0.1:{one_tm[0]}/throttled/1.0.0/live"], capture_output=True, text=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def throughput_cost(rounds=3, seconds=8):
    """Requests/s through one gateway with a counted (never reached) limit against the same
    without any (Unlimited), alternating, with wrk."""
    if not shutil.which("wrk"):
        print("\nThroughput cost: skipped (wrk not installed: apt-get install wrk)")
        return
    unlimited, huge = subscriber("cost unlimited", "Unlimited"), subscriber("cost huge", "Huge")
    off, on = [], []
    for _ in range(rounds):
        off.append(wrk(unlimited, seconds))
        on.append(wrk(huge, seconds))
    print(f"\nThroughput cost of throttling (one gateway, wrk -c32, {rounds} x {seconds} s alternating):")
    print(f"  no limit (Unlimited):        {' '.join(f'{r:9.0f}' for r in off)} req/s, median {statistics.median(off):.0f}")
    print(f"  1e9/min limit, counted:      {' '.join(f'{r:9.0f}' for r in on)} req/s, median {statistics.median(on):.0f}")
    print(f"  ratio throttled/unthrottled: {statistics.median(on) / statistics.median(off):.3f}")


asyncio.run(main())
throughput_cost()
