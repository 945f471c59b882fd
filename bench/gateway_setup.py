"""Sets up the gateway benchmark on a fresh all-in-one node: one published, deployed API
whose backend is the benchmark's nginx, a subscriber with keys, a token and an API key
(printed as shell assignments); or, with --many N, N more deployed APIs."""
import os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tollgate_rest import Rest  # noqa: E402

mgmt, backend = int(sys.argv[1]), int(sys.argv[2])
rest = Rest(mgmt)
call = rest.call
backend_url = f"http://127.0.0.1:{backend}"

if "--many" in sys.argv:
    rest.deploy_many(int(sys.argv[sys.argv.index("--many") + 1]), backend_url)
    sys.exit(0)

api = rest.deploy("Bench", "/bench", backend_url)
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
