"""What cfn-lint does not check in infra/template.yaml: the SAM functions' runtime,
architecture, build method and binaries, their event sources and routes, and that every
resource the deployment needs is there with the settings that matter.

Usage: check_template.py TEMPLATE WORKSPACE_BINARIES...   (exit 1 with a list of problems)
"""

import sys

from cfnlint.decode import decode


def main(path, binaries):
    template, matches = decode(path)
    if matches:
        return [str(m) for m in matches]
    problems = []
    resources = template["Resources"]
    params = template.get("Parameters", {})
    globals_fn = template.get("Globals", {}).get("Function", {})

    def by_type(kind):
        return {k: v for k, v in resources.items() if v["Type"] == kind}

    def ref_target(value):
        """The logical id a !Ref or !GetAtt names."""
        if isinstance(value, dict):
            if "Ref" in value:
                return value["Ref"]
            if "Fn::GetAtt" in value:
                att = value["Fn::GetAtt"]
                return att[0] if isinstance(att, list) else att.split(".")[0]
        return None

    arch = params.get("Architecture", {})
    if arch.get("Default") != "arm64" or set(arch.get("AllowedValues", [])) != {"arm64", "x86_64"}:
        problems.append("Architecture must be a parameter: default arm64, arm64 or x86_64")

    functions = by_type("AWS::Serverless::Function")
    built = set()
    for name, fn in functions.items():
        props = {**globals_fn, **fn.get("Properties", {})}
        if props.get("Runtime") != "provided.al2023":
            problems.append(f"{name}: runtime must be provided.al2023")
        if props.get("Architectures") != [{"Ref": "Architecture"}]:
            problems.append(f"{name}: architecture must come from the Architecture parameter")
        if props.get("Handler") != "bootstrap":
            problems.append(f"{name}: handler must be bootstrap")
        meta = fn.get("Metadata", {})
        if meta.get("BuildMethod") != "rust-cargolambda":
            problems.append(f"{name}: BuildMethod must be rust-cargolambda")
        binary = meta.get("BuildProperties", {}).get("Binary")
        if binary not in binaries:
            problems.append(f"{name}: binary {binary!r} is not one of the workspace's {binaries}")
        built.add(binary)
        for event_name, event in props.get("Events", {}).items():
            kind, eprops = event["Type"], event.get("Properties", {})
            if kind == "HttpApi":
                if ref_target(eprops.get("ApiId")) not in by_type("AWS::Serverless::HttpApi"):
                    problems.append(f"{name}.{event_name}: ApiId must name the template's HttpApi")
                method = eprops.get("Method", "").upper()
                if method not in {"ANY", "GET", "PUT", "POST", "HEAD", "OPTIONS"}:
                    problems.append(f"{name}.{event_name}: HTTP method {method!r}")
                if not str(eprops.get("Path", "")).startswith("/"):
                    problems.append(f"{name}.{event_name}: path must start with /")
            elif kind == "SQS":
                if ref_target(eprops.get("Queue")) not in by_type("AWS::SQS::Queue"):
                    problems.append(f"{name}.{event_name}: Queue must name a queue of the template")
                if "ReportBatchItemFailures" not in eprops.get("FunctionResponseTypes", []):
                    problems.append(f"{name}.{event_name}: must report batch item failures")
            else:
                problems.append(f"{name}.{event_name}: unexpected event type {kind}")
        if not props.get("Policies"):
            problems.append(f"{name}: needs its own least-privilege policy")
        for statement in (props.get("Policies") or [{}])[0].get("Statement", []):
            actions = statement.get("Action", [])
            actions = actions if isinstance(actions, list) else [actions]
            if any(a.endswith("*") for a in actions):
                problems.append(f"{name}: wildcard action in {statement.get('Sid')}")
    if built != {"ingest", "api"}:
        problems.append(f"functions must build ingest and api, not {built}")
    api_events = [
        e for f in functions.values() for e in f.get("Properties", {}).get("Events", {}).values()
        if e["Type"] == "HttpApi"
    ]
    if not api_events:
        problems.append("no function serves the HTTP API")
    # The dashboard is "/": a greedy /{proxy+} alone leaves it unrouted.
    routed = {str(e.get("Properties", {}).get("Path")) for e in api_events}
    for path in ["/", "/{proxy+}"]:
        if path not in routed:
            problems.append(f"the HTTP API must route {path} to the API function")

    buckets = by_type("AWS::S3::Bucket")
    if len(buckets) != 1:
        problems.append("expected one lake bucket")
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        if not props.get("BucketEncryption"):
            problems.append(f"{name}: encryption")
        if props.get("VersioningConfiguration", {}).get("Status") != "Enabled":
            problems.append(f"{name}: versioning")
        block = props.get("PublicAccessBlockConfiguration", {})
        if not all(block.get(k) is True for k in
                   ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"]):
            problems.append(f"{name}: public access must be blocked")
        rules = props.get("LifecycleConfiguration", {}).get("Rules", [])
        if not any("uploads/" in str(r.get("Prefix", "")) for r in rules):
            problems.append(f"{name}: lifecycle rule for raw uploads")
        queues = props.get("NotificationConfiguration", {}).get("QueueConfigurations", [])
        if not any(ref_target(q.get("Queue")) in by_type("AWS::SQS::Queue")
                   and q.get("Event", "").startswith("s3:ObjectCreated") for q in queues):
            problems.append(f"{name}: ObjectCreated notifications must go to the ingest queue")

    for kind in ["AWS::SQS::QueuePolicy", "AWS::Serverless::HttpApi", "AWS::Glue::Database",
                 "AWS::SecretsManager::Secret", "AWS::S3::BucketPolicy"]:
        if not by_type(kind):
            problems.append(f"missing a {kind}")
    http = next(iter(by_type("AWS::Serverless::HttpApi").values()), {}).get("Properties", {})
    if "ThrottlingRateLimit" not in http.get("DefaultRouteSettings", {}):
        problems.append("the HTTP API must be throttled")
    glue_tables = {t["Properties"]["TableInput"]["Name"] for t in by_type("AWS::Glue::Table").values()}
    for table in ["indicator_values", "regions", "submissions", "enterprises", "outlets",
                  "trainings", "shops", "complaints"]:
        if table not in glue_tables:
            problems.append(f"no Glue table {table}")
    if "workers" in glue_tables:
        problems.append("workers (personal data) must not be in the Glue catalog")
    secret = str(globals_fn.get("Environment", {}).get("Variables", {}).get("JIAZHENG_ID_HMAC_KEY"))
    if "resolve:secretsmanager" not in secret and "resolve:ssm" not in secret:
        problems.append("JIAZHENG_ID_HMAC_KEY must come from Secrets Manager or SSM")
    for output in ["ApiUrl", "LakeBucketName", "Lake", "GlueDatabase"]:
        if output not in template.get("Outputs", {}):
            problems.append(f"missing output {output}")
    return problems


if __name__ == "__main__":
    found = main(sys.argv[1], sys.argv[2:])
    for p in found:
        print(p)
    sys.exit(1 if found else 0)
