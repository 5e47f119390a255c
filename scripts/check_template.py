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
            elif kind in ("Schedule", "ScheduleV2"):
                if '"repair": true' not in str(eprops.get("Input", "")):
                    problems.append(f"{name}.{event_name}: a schedule must invoke the repair")
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
        # Raw uploads are the evidence behind decisions: no version of them may expire.
        for rule in rules:
            if "NoncurrentVersionExpiration" not in rule and "ExpirationInDays" not in rule:
                continue
            prefix = rule.get("Prefix", rule.get("Filter", {}).get("Prefix", ""))
            prefix = prefix.get("Fn::Sub", "") if isinstance(prefix, dict) else str(prefix)
            if "${LakePrefix}/uploads/".startswith(prefix):
                problems.append(f"{name}: rule {rule.get('Id')} expires raw uploads, the evidence")
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
    problems += check_secrets(functions, globals_fn, by_type)
    problems += check_edge(resources, by_type, ref_target)
    problems += check_alarms(functions, by_type, ref_target)
    for output in ["ApiUrl", "LakeBucketName", "Lake", "GlueDatabase"]:
        if output not in template.get("Outputs", {}):
            problems.append(f"missing output {output}")
    return problems


def check_secrets(functions, globals_fn, by_type):
    """The ID-number key never sits in the environment: each function is told the secret's
    ARN and may read that secret."""
    problems = []
    secrets = by_type("AWS::SecretsManager::Secret")
    if not secrets:
        problems.append("missing a AWS::SecretsManager::Secret for the ID-number key")
    global_vars = globals_fn.get("Environment", {}).get("Variables", {})
    for name, fn in functions.items():
        variables = {**global_vars, **fn.get("Properties", {}).get("Environment", {}).get("Variables", {})}
        for var, value in variables.items():
            text = str(value)
            if "resolve:secretsmanager" in text or "resolve:ssm" in text or var.endswith("HMAC_KEY"):
                problems.append(f"{name}: {var} puts a secret in a plain environment variable")
        arn = variables.get("JIAZHENG_ID_HMAC_SECRET")
        if not (isinstance(arn, dict) and arn.get("Ref") in secrets):
            problems.append(f"{name}: JIAZHENG_ID_HMAC_SECRET must be the ARN (!Ref) of the key's secret")
            continue
        statements = (fn.get("Properties", {}).get("Policies") or [{}])[0].get("Statement", [])
        if not any("secretsmanager:GetSecretValue" in str(s.get("Action"))
                   and s.get("Resource") == arn for s in statements):
            problems.append(f"{name}: may not read the key's secret (secretsmanager:GetSecretValue on it)")
    return problems


def check_edge(resources, by_type, ref_target):
    """CloudFront in front of the HTTP API, with a WAF rate-based rule per client."""
    problems = []
    distributions = by_type("AWS::CloudFront::Distribution")
    if not distributions:
        return ["the HTTP API needs CloudFront in front of it (per-client limits, caching)"]
    config = next(iter(distributions.values()))["Properties"]["DistributionConfig"]
    origins = " ".join(str(o.get("DomainName")) for o in config.get("Origins", []))
    if "${HttpApi}" not in origins:
        problems.append("CloudFront's origin must be the HTTP API")
    if not config.get("DefaultCacheBehavior", {}).get("CachePolicyId"):
        problems.append("CloudFront needs a cache policy (public GETs by ETag and Cache-Control)")
    acl = config.get("WebACLId")
    acl_ids = {ref_target(v) for v in (acl.get("Fn::If", [None, None, None])[1:] if isinstance(acl, dict) and "Fn::If" in acl else [acl])}
    acls = {k: v for k, v in by_type("AWS::WAFv2::WebACL").items() if k in acl_ids}
    if not acls:
        problems.append("CloudFront must carry the template's WAF web ACL")
    for name, web_acl in acls.items():
        props = web_acl["Properties"]
        if props.get("Scope") != "CLOUDFRONT":
            problems.append(f"{name}: scope must be CLOUDFRONT")
        rate_rules = [
            r for r in props.get("Rules", [])
            if r.get("Statement", {}).get("RateBasedStatement", {}).get("AggregateKeyType") in ("IP", "FORWARDED_IP")
            and "Block" in r.get("Action", {})
        ]
        if not rate_rules:
            problems.append(f"{name}: needs a rate-based rule per client address that blocks")
    return problems


def check_alarms(functions, by_type, ref_target):
    """Someone hears of uploads parked in the dead-letter queue and of ingest errors."""
    problems = []
    alarms = [a["Properties"] for a in by_type("AWS::CloudWatch::Alarm").values()]

    def watched(dimension):
        return {ref_target(d.get("Value")) for a in alarms if a.get("AlarmActions")
                for d in a.get("Dimensions", []) if d.get("Name") == dimension}

    dead_letters = {
        ref_target(q["Properties"].get("RedrivePolicy", {}).get("deadLetterTargetArn"))
        for q in by_type("AWS::SQS::Queue").values()
    } - {None}
    if not dead_letters or not dead_letters <= watched("QueueName"):
        problems.append("the dead-letter queue needs an alarm with an action")
    ingest = [n for n, f in functions.items()
              if any(e["Type"] == "SQS" for e in f.get("Properties", {}).get("Events", {}).values())]
    if not set(ingest) <= watched("FunctionName"):
        problems.append("the ingest function's errors need an alarm with an action")
    return problems


if __name__ == "__main__":
    found = main(sys.argv[1], sys.argv[2:])
    for p in found:
        print(p)
    sys.exit(1 if found else 0)
