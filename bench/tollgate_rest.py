"""A small client of a Tollgate node's REST APIs for the benchmark scripts (standard
library only): calls with HTTP Basic, and publishing + deploying an API in one step."""
import base64, http.client, json, sys

ADMIN = ("admin", "bench-admin-password")


class Rest:
    def __init__(self, port, host="127.0.0.1", admin=ADMIN):
        self.conn = http.client.HTTPConnection(host, port)
        self.admin = admin

    def call(self, method, path, body=None, user=None, form=None, expect=(200, 201)):
        user = user or self.admin
        headers = {"Authorization": "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        if form is not None:
            data = "&".join(f"{k}={v}" for k, v in form.items())
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        text = r.read()
        if r.status not in expect:
            sys.exit(f"{method} {path}: {r.status} {text[:300]!r}")
        return json.loads(text) if text else None

    def create(self, name, context, backend_url, operations=None):
        """Creates and publishes an API and makes a revision; returns (api id, revision id)."""
        api = self.call("POST", "/api/am/publisher/v4/apis", {
            "name": name, "context": context, "version": "1.0.0", "policies": ["Unlimited"],
            "securityScheme": ["oauth2", "api_key"],
            "endpointConfig": {"endpoint_type": "http", "production_endpoints": {"url": backend_url}},
            "operations": operations or [{"target": "/*", "verb": "GET"}],
        })
        self.call("POST", f"/api/am/publisher/v4/apis/change-lifecycle?apiId={api['id']}&action=Publish")
        rev = self.call("POST", f"/api/am/publisher/v4/apis/{api['id']}/revisions", {})
        return api["id"], rev["id"]

    def deploy_revision(self, api_id, revision_id, environment="Default"):
        self.call("POST", f"/api/am/publisher/v4/apis/{api_id}/deploy-revision?revisionId={revision_id}",
                  [{"name": environment, "displayOnDevportal": True}])

    def deploy(self, name, context, backend_url, operations=None):
        """Creates, publishes and deploys an API to Default; returns its id."""
        api_id, rev_id = self.create(name, context, backend_url, operations)
        self.deploy_revision(api_id, rev_id)
        return api_id

    def deploy_many(self, n, backend_url, prefix="Bulk"):
        for i in range(n):
            self.deploy(f"{prefix}{i}", f"/{prefix.lower()}{i}", backend_url)
            if i and i % 1000 == 0:
                print(f"  {i} APIs deployed", file=sys.stderr)
