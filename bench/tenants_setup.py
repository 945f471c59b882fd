"""Sets up one node of the tenant benchmark (bench/tenants.sh). Two steps:

  rest MGMT BACKEND TENANTS      on the running node: creates tenants tenant001.com ...
                                 (TENANTS - 1 of them besides the super tenant) with the Admin
                                 REST API, and in the last one created (or in the super tenant
                                 when TENANTS is 1) publishes and deploys the measured API
                                 `Bench` at /bench, with a subscribed application, a token and
                                 an API key; prints the call's path, the token and the key as
                                 shell assignments.
  seed AM_DB TENANTS PER_TENANT  with the node stopped: copies that API into its AM database
                                 (SQLite) until every tenant has PER_TENANT deployed APIs
                                 (/bulk0, /bulk1, ... each a revision deployed to Default), so
                                 that 10 000 APIs take seconds, not the many minutes of as many
                                 REST calls. The gateway reads them from its snapshot at start.
"""
import json, os, sqlite3, sys, uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tollgate_rest import Rest  # noqa: E402

TENANT_PASSWORD = "Bench-tenant-2026"


def domain(i):
    return f"tenant{i:03d}.com"


def rest_step(mgmt, backend, tenants):
    rest = Rest(mgmt)
    for i in range(1, tenants):
        rest.call("POST", "/api/am/admin/v4/tenants", {
            "domain": domain(i), "adminUsername": "admin", "adminPassword": TENANT_PASSWORD,
            "email": f"admin@{domain(i)}"})
    if tenants > 1:
        who, prefix = (f"admin@{domain(tenants - 1)}", TENANT_PASSWORD), f"/t/{domain(tenants - 1)}"
    else:
        who, prefix = rest.admin, ""
    tenant_rest = Rest(mgmt, admin=who)
    api = tenant_rest.deploy("Bench", "/bench", f"http://127.0.0.1:{backend}")
    call = tenant_rest.call
    app = call("POST", "/api/am/devportal/v3/applications",
               {"name": "BenchApp", "throttlingPolicy": "Unlimited", "tokenType": "JWT"})["applicationId"]
    call("POST", "/api/am/devportal/v3/subscriptions",
         {"applicationId": app, "apiId": api, "throttlingPolicy": "Unlimited"})
    keys = call("POST", f"/api/am/devportal/v3/applications/{app}/generate-keys",
                {"keyType": "PRODUCTION", "grantTypesToBeSupported": ["client_credentials"]})
    token = call("POST", "/oauth2/token", form={"grant_type": "client_credentials"},
                 user=(keys["consumerKey"], keys["consumerSecret"]))["access_token"]
    apikey = call("POST", f"/api/am/devportal/v3/applications/{app}/api-keys/PRODUCTION/generate", {})["apikey"]
    print(f"CALL_PATH={prefix}/bench/1.0.0/1k.txt")
    print(f"TOKEN={token}")
    print(f"APIKEY={apikey}")


def seed_step(am_db, tenants, per_tenant):
    db = sqlite3.connect(am_db)
    db.row_factory = sqlite3.Row
    (template,) = db.execute("SELECT * FROM apis WHERE name = 'Bench'").fetchall()
    revision = db.execute("SELECT * FROM api_revisions WHERE api_id = ?", (template["id"],)).fetchone()
    deployment = db.execute("SELECT * FROM api_deployments WHERE api_id = ?", (template["id"],)).fetchone()
    ids = [r["tenant_id"] for r in db.execute("SELECT tenant_id FROM tenant_states ORDER BY domain")]
    assert len(ids) == tenants, f"{len(ids)} tenants in the AM database, {tenants} expected"
    body = json.loads(revision["body"])
    added = 0
    for tenant in ids:
        # The measured API counts as one of its tenant's.
        count = per_tenant - 1 if tenant == template["tenant_id"] else per_tenant
        for n in range(count):
            api_id, rev_id = str(uuid.uuid4()), str(uuid.uuid4())
            ctx = f"/bulk{n}"

            def moved(value):
                return ctx + value[len("/bench"):] if isinstance(value, str) and value.startswith("/bench") else value
            api = dict(template)
            api.update(id=api_id, tenant_id=tenant, name=f"Bulk{n}", context=moved(template["context"]),
                       resolved_context=moved(template["resolved_context"]),
                       base_context=moved(template["base_context"]))
            api_body = json.loads(template["body"])
            api_body.update(name=f"Bulk{n}", context=moved(api_body.get("context")))
            if "id" in api_body:
                api_body["id"] = api_id
            api["body"] = json.dumps(api_body)
            rev_body = dict(body, name=f"Bulk{n}", context=moved(body.get("context")))
            if "id" in rev_body:
                rev_body["id"] = api_id
            insert(db, "apis", api)
            insert(db, "api_revisions", dict(dict(revision), id=rev_id, api_id=api_id, body=json.dumps(rev_body)))
            insert(db, "api_deployments", dict(dict(deployment), api_id=api_id, revision_id=rev_id))
            added += 1
    db.commit()
    total = db.execute("SELECT COUNT(*) FROM api_deployments").fetchone()[0]
    print(f"seeded {added} APIs: {total} deployed in {tenants} tenant(s)", file=sys.stderr)


def insert(db, table, row):
    cols = list(row.keys())
    db.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
               [row[c] for c in cols])


if __name__ == "__main__":
    step = sys.argv[1]
    if step == "rest":
        rest_step(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    elif step == "seed":
        seed_step(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(f"unknown step {step}: rest or seed")
