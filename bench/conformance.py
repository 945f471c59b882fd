"""Runs the reference's own REST API documents (and then Tollgate's own documents) with
schemathesis against a fresh all-in-one node, for every operation Tollgate implements,
and prints one summary line per document. Exit status 0 only when every run found no
server error and no response-schema violation.

    python3 bench/conformance.py --bin target/release/tollgate --reference DIR

Which operations Tollgate implements is read from the node's own documents
(`/api/am/{publisher,devportal,admin}/.../openapi.json`); the reference's document is cut
down to those operations (and its server replaced by the node) before it is run.
Operations of ours that the reference lacks (our extensions) are run only with our own
document. Each operation is run twice: once with the path parameters of a seeded API,
application and policy (so that real objects are answered and checked; DELETE left out
so that the seed stays), and once with generated ones (everything, DELETE included).
Needs schemathesis (PyPI) and PyYAML (which schemathesis brings).
"""
import argparse, base64, copy, json, os, re, shutil, socket, subprocess, sys, tempfile, time
import urllib.request

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tollgate_rest import Rest  # noqa: E402

ADMIN_PASSWORD = "conformance-admin-password"
APIS = [
    # (name, base path, reference file)
    ("publisher", "/api/am/publisher/v4", "publisher-api.yaml"),
    ("devportal", "/api/am/devportal/v3", "devportal-api.yaml"),
    ("admin", "/api/am/admin/v4", "admin-api.yaml"),
]
# Where the reference's document is wrong for what its own server sends, the operation and
# check are listed here with the reason, and that check is not run on that operation.
# Format: (api, METHOD, path) -> reason.
EXCEPTIONS = {
    ("publisher", "GET", "/apis/{apiId}/swagger"):
        "the schema says string, but the reference's server answers the definition itself, "
        "a JSON document (application/json), as Tollgate does",
    ("devportal", "GET", "/apis/{apiId}/swagger"):
        "the schema says string, but the reference's server answers the definition itself, "
        "a JSON document (application/json), as Tollgate does",
    **{("admin", m, path): "the schema says conditionValue is an object, but for API, APPLICATION "
       "and USER conditions the reference's server answers a string (its own search syntax "
       "is conditionValue:test/1.0.0), as Tollgate does"
       for m, path in (("GET", "/throttling/deny-policies"), ("POST", "/throttling/deny-policies"),
                       ("GET", "/throttling/deny-policy/{conditionId}"),
                       ("PATCH", "/throttling/deny-policy/{conditionId}"))},
    ("publisher", "POST", "/apis/{apiId}/generate-mock-scripts"):
        "the schema says string, but the reference's server answers the definition itself "
        "(with x-mediation-script per operation), a JSON document, as Tollgate does",
}
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


class PlainLoader(yaml.SafeLoader):
    """YAML as JSON sees it: dates in examples stay strings (some are not real dates)."""


PlainLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_node(binary, work):
    ports = {k: free_port() for k in ("mgmt", "gw", "tm")}
    env = dict(os.environ,
               TOLLGATE_ADMIN_PASSWORD=ADMIN_PASSWORD,
               TOLLGATE_MANAGEMENT__LISTEN=f"127.0.0.1:{ports['mgmt']}",
               TOLLGATE_GATEWAY__LISTEN=f"127.0.0.1:{ports['gw']}",
               TOLLGATE_TRAFFIC_MANAGER__LISTEN=f"127.0.0.1:{ports['tm']}",
               TOLLGATE_LOG__LEVEL="warn")
    log = open(os.path.join(work, "tollgate.log"), "wb")
    proc = subprocess.Popen([binary, "serve"], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{ports['mgmt']}"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/health/ready", timeout=1)
            return proc, ports
        except Exception:
            if proc.poll() is not None:
                sys.exit(f"the node exited: see {work}/tollgate.log")
            time.sleep(0.1)
    sys.exit("the node did not become ready in 60 s")


def seed(port):
    """An API with a document, a revision deployed to Default, an application subscribed to
    it with keys: the objects whose ids the first run uses."""
    rest = Rest(port, admin=("admin", ADMIN_PASSWORD))
    call = rest.call
    api_id, rev_id = rest.create("Conformance", "/conformance", "http://127.0.0.1:9",
                                 [{"target": "/items", "verb": "GET"}, {"target": "/items", "verb": "POST"}])
    rest.deploy_revision(api_id, rev_id)
    doc = call("POST", f"/api/am/publisher/v4/apis/{api_id}/documents",
               {"name": "Guide", "type": "HOWTO", "sourceType": "INLINE", "visibility": "API_LEVEL"})
    call("POST", f"/api/am/publisher/v4/apis/{api_id}/documents/{doc['documentId']}/content",
         None, expect=(200, 201, 400, 415))
    app = call("POST", "/api/am/devportal/v3/applications",
               {"name": "ConformanceApp", "throttlingPolicy": "Unlimited", "description": "seed"})
    app_id = app["applicationId"]
    sub = call("POST", "/api/am/devportal/v3/subscriptions",
               {"applicationId": app_id, "apiId": api_id, "throttlingPolicy": "Unlimited"})
    keys = call("POST", f"/api/am/devportal/v3/applications/{app_id}/generate-keys",
                {"keyType": "PRODUCTION", "grantTypesToBeSupported": ["client_credentials", "password"]})
    admin = "/api/am/admin/v4"
    limit = {"type": "REQUESTCOUNTLIMIT", "requestCount": {"timeUnit": "min", "unitTime": 1, "requestCount": 100}}
    env = call("POST", f"{admin}/environments",
               {"name": "conformance", "displayName": "Conformance", "type": "hybrid",
                "vhosts": [{"host": "conformance.example.com"}]})
    app_policy = call("POST", f"{admin}/throttling/policies/application", {"policyName": "ConfApp", "defaultLimit": limit})
    adv_policy = call("POST", f"{admin}/throttling/policies/advanced", {"policyName": "ConfAdv", "defaultLimit": limit})
    rule = call("POST", f"{admin}/throttling/policies/custom",
                {"policyName": "ConfRule", "keyTemplate": "$userId", "defaultLimit": limit})
    deny_user = call("POST", f"{admin}/throttling/deny-policies", {"conditionType": "USER", "conditionValue": "mallory"})
    call("POST", f"{admin}/throttling/deny-policies",
         {"conditionType": "IPRANGE", "conditionValue": {"startingIp": "10.0.0.1", "endingIp": "10.0.0.9"}})
    subs = call("GET", f"{admin}/throttling/policies/subscription")["list"]
    unlimited = next(p["policyId"] for p in subs if p["policyName"] == "Unlimited")
    # Admin paths name several different objects `policyId`: each family gets its own.
    per_path = {
        "^/throttling/policies/subscription/": {"path.policyId": unlimited},
        "^/throttling/policies/application/": {"path.policyId": app_policy["policyId"]},
        "^/throttling/policies/advanced/": {"path.policyId": adv_policy["policyId"]},
        "^/throttling/policies/custom/": {"path.ruleId": rule["policyId"]},
        "^/throttling/deny-policy/": {"path.conditionId": deny_user["conditionId"]},
        "^/environments/": {"path.environmentId": env["id"]},
    }
    return per_path, {
        "apiId": api_id,
        "revisionId": rev_id,
        "documentId": doc["documentId"],
        "applicationId": app_id,
        "subscriptionId": sub["subscriptionId"],
        "keyMappingId": keys.get("keyMappingId"),
        "keyType": "PRODUCTION",
        "policyLevel": "subscription",
        "policyName": "Unlimited",
        "tierLevel": "subscription",
        "tierName": "Unlimited",
    }


def our_operations(port, base):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{base}/openapi.json") as r:
        doc = json.load(r)
    ops = set()
    for path, item in doc.get("paths", {}).items():
        for method in item:
            if method in METHODS:
                ops.add((method, path))
    return doc, ops


def matches(ours, theirs):
    """Whether our path template serves the reference's: equal segments, or a parameter of
    ours where the reference has a parameter or a fixed word (our
    `/throttling/policies/{policyLevel}` serves its `/throttling/policies/subscription`)."""
    a, b = ours.strip("/").split("/"), theirs.strip("/").split("/")
    return len(a) == len(b) and all(x == y or x.startswith("{") for x, y in zip(a, b))


def cut_reference(ref, ours, base, url):
    """The reference's document with only the operations Tollgate implements, and ours that
    it lacks (our extensions)."""
    ref = copy.deepcopy(ref)
    kept, served = set(), set()
    paths = {}
    for path, item in ref.get("paths", {}).items():
        common = {k: v for k, v in item.items() if k not in METHODS}
        ops = {}
        for m, op in item.items():
            if m not in METHODS:
                continue
            hit = [(om, op_path) for om, op_path in ours if om == m and matches(op_path, path)]
            if hit:
                ops[m] = op
                served |= set(hit)
        if ops:
            paths[path] = {**common, **ops}
            kept |= {(m, path) for m in ops}
    ref["paths"] = paths
    ref["servers"] = [{"url": url + base}]
    return ref, kept, ours - served


def run_schemathesis(st, spec_path, url, config, label, extra, work):
    report = os.path.join(work, f"{label}.ndjson")
    cmd = [st, "--config-file", config, "run", spec_path, "--url", url,
           "--phases", "examples,coverage,fuzzing",
           "-a", f"admin:{ADMIN_PASSWORD}",
           "--workers", "1", "--continue-on-failure",
           "--suppress-health-check", "all",
           "--max-examples", str(extra.get("max_examples", 20)),
           "--seed", "1",
           "--report", "junit", "--report-dir", os.path.join(work, "reports", label),
           "--no-color"] + extra.get("args", [])
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
    text = out.stdout + out.stderr
    with open(os.path.join(work, f"{label}.log"), "w") as f:
        f.write(text)
    summary = [ln.strip("= ") for ln in text.splitlines() if re.match(r"^=+ .* in [0-9.]+s =+$", ln)]
    kinds = [ln.strip() for ln in text.splitlines() if re.match(r"^\s+❌ ST\d+ ", ln)]
    line = summary[-1] if summary else "(no summary line)"
    return out.returncode, text, line + (f" [{'; '.join(kinds)}]" if kinds else "")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", default=os.environ.get("TOLLGATE_BIN", "target/release/tollgate"))
    p.add_argument("--reference", required=True, help="directory of the reference's REST documents")
    p.add_argument("--schemathesis", default=shutil.which("schemathesis") or "schemathesis")
    p.add_argument("--only", choices=[a[0] for a in APIS])
    p.add_argument("--max-examples", type=int, default=20)
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--no-exceptions", action="store_true",
                   help="run every check everywhere (shows what the exceptions hide)")
    a = p.parse_args()
    if a.no_exceptions:
        EXCEPTIONS.clear()

    work = tempfile.mkdtemp(prefix="tollgate-conformance-")
    proc, ports = start_node(os.path.abspath(a.bin), work)
    failed = False
    lines = []
    try:
        per_path, ids = seed(ports["mgmt"])
        url = f"http://127.0.0.1:{ports['mgmt']}"
        for api, base, ref_file in APIS:
            if a.only and api != a.only:
                continue
            ours_doc, ours = our_operations(ports["mgmt"], base)
            with open(os.path.join(a.reference, ref_file)) as f:
                ref = yaml.load(f, Loader=PlainLoader)
            cut, kept, extensions = cut_reference(ref, ours, base, url)
            ref_path = os.path.join(work, f"{api}-reference.json")
            with open(ref_path, "w") as f:
                json.dump(cut, f)
            ours_doc["servers"] = [{"url": url + base}]
            ours_path = os.path.join(work, f"{api}-ours.json")
            with open(ours_path, "w") as f:
                json.dump(ours_doc, f)
            print(f"{api}: {len(ours)} operations of ours, {len(kept)} in the reference, "
                  f"{len(extensions)} ours only", file=sys.stderr)
            for spec, doc_label in ((ref_path, "reference"), (ours_path, "ours")):
                for seeded in (True, False):
                    label = f"{api}-{doc_label}-{'seeded' if seeded else 'generated'}"
                    config = os.path.join(work, f"{label}.toml")
                    with open(config, "w") as f:
                        # The two checks the issue names; per-operation exceptions below.
                        f.write("[checks]\nenabled = false\nnot_a_server_error.enabled = true\n"
                                "response_schema_conformance.enabled = true\n\n")
                        if doc_label == "reference":
                            for (ex_api, method, path) in EXCEPTIONS:
                                if ex_api == api:
                                    f.write(f'[[operations]]\ninclude-path = "{path}"\ninclude-method = "{method}"\n'
                                            "checks.response_schema_conformance.enabled = false\n\n")
                        if seeded:
                            for rx, params in per_path.items():
                                f.write(f'[[operations]]\ninclude-path-regex = "{rx}"\n[operations.parameters]\n')
                                for k, v in params.items():
                                    f.write(f'"{k}" = {json.dumps(v)}\n')
                                f.write("\n")
                            f.write("[parameters]\n")
                            for k, v in ids.items():
                                if v is not None:
                                    f.write(f'"path.{k}" = {json.dumps(v)}\n')
                    args = ["--exclude-method", "DELETE"] if seeded else []
                    rc, text, summary = run_schemathesis(a.schemathesis, spec, url + base, config, label,
                                                         {"max_examples": a.max_examples, "args": args}, work)
                    lines.append(f"{label}: {summary}")
                    print(f"{label}: {summary}", file=sys.stderr)
                    if rc != 0:
                        failed = True
                    if proc.poll() is not None:
                        sys.exit(f"the node died during {label}: see {work}/tollgate.log")
    finally:
        proc.terminate()
        proc.wait(10)
    print("\n".join(lines))
    if EXCEPTIONS:
        print("exceptions (the reference's schema is wrong for what its server sends):")
        for (api, m, path), why in EXCEPTIONS.items():
            print(f"  {api} {m} {path}: {why}")
    print(f"logs and reports: {work}" if (a.keep or failed) else "")
    if not (a.keep or failed):
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
