"""Sets up the gateway benchmark on a fresh all-in-one node: one published, deployed API
whose backend is the benchmark's nginx, a subscriber with keys, a token and an API key
(printed as shell assignments); or, with --many N, N more deployed APIs."""
import base64, http.client, json, sys

mgmt, backend = int(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", mgmt)


def call(method, path, body=None, user=("admin", "bench-admin-password"), form=None, expect=(200, 201)):
    headers = {"Authorization": "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()}
    data = None
    if body is not None:
        data = json.dumps(body)
        headers["Content-Type"] = "application/json"
    if form is not None:
        data = "&".join(f"{k}={v}" for k, v in form.items())
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    text = r.read()
    if r.status not in expect:
        sys.exit(f"{method} {path}: {r.status} {text[:300]!r}")
    return json.loads(text) if text else None


def deploy(name, context):
    api = call("POST", "/api/am/publisher/v4/apis", {
        "name": name, "context": context, "version": "1.0.0", "policies": ["Unlimited"],
        "securityScheme": ["oauth2", "api_key"],
        "endpointConfig": {"endpoint_type": "http", "production_endpoints": {"url": f"http://127.0.0.1:{backend}"}},
        "operations": [{"target": "/*", "verb": "GET"}],
    })
    call("POST", f"/api/am/publisher/v4/apis/change-lifecycle?apiId={api['id']}&action=Publish")
    rev = call("POST", f"/api/am/publisher/v4/apis/{api['id']}/revisions", {})
    call("POST", f"/api/am/publisher/v4/apis/{api['id']}/deploy-revision?revisionId={rev['id']}",
         [{"name": "Default", "displayOnDevportal": True}])
    return api["id"]


if "--many" in sys.argv:
    n = int(sys.argv[sys.argv.index("--many") + 1])
    for i in range(n):
        deploy(f"Bulk{i}", f"/bulk{i}")
        if i and i % 1000 == 0:
            print(f"  {i} APIs deployed", file=sys.stderr)
    sys.exit(0)

api = deploy("Bench", "/bench")
dev = ("bench", "bench-password")
call("POST", "/api/am/devportal/v3/signup", {"username": dev[0], "password": dev[1]}, user=dev)
app = call("GET", "/api/am/devportal/v3/applications", user=dev)["list"][0]["applicationId"]
call("POST", "/api/am/devportal/v3/subscriptions",
     {"applicationId": app, "apiId": api, "throttlingPolicy": "Unlimited"}, user=dev)
keys = call("POST", f"/api/am/devportal/v3/applications/{app}/generate-keys",
            {"keyType": "PRODUCTION", "grantTypesToBeSupported": ["client_credentials"]}, user=dev)
token = call("POST", "/oauth2/token", form={"grant_type": "client_credentials"},
             user=(keys["consumerKey"], keys["consumerSecret"]))["access_token"]
apikey = call("POST", f"/api/am/devportal/v3/applications/{app}/api-keys/PRODUCTION/generate", {}, user=dev)["apikey"]
print(f"TOKEN={token}")
print(f"APIKEY={apikey}")
