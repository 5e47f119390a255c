//! infra/template.yaml: cfn-lint (pinned in scripts/requirements.txt) and the project's own
//! checks of what cfn-lint does not look at (scripts/check_template.py).

use crate::support;

use std::path::PathBuf;
use std::process::Command;

use support::repo;

fn tool(name: &str) -> PathBuf {
    support::tool(name, name)
}

/// The binaries the workspace builds, as SAM's cargo-lambda build names them.
fn binaries() -> Vec<String> {
    ["functions/ingest/Cargo.toml", "functions/api/Cargo.toml"]
        .iter()
        .map(|manifest| {
            let text = std::fs::read_to_string(repo(manifest)).unwrap();
            let name = text
                .lines()
                .find_map(|l| l.strip_prefix("name = "))
                .unwrap()
                .trim_matches('"');
            name.to_string()
        })
        .collect()
}

fn check(template: &std::path::Path) -> (bool, String) {
    let out = Command::new(tool("python"))
        .arg(repo("scripts/check_template.py"))
        .arg(template)
        .args(binaries())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn cfn_lint_passes() {
    let out = Command::new(tool("cfn-lint"))
        .arg(repo("infra/template.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cfn-lint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_template_names_every_resource_with_the_settings_that_matter() {
    let (ok, problems) = check(&repo("infra/template.yaml"));
    assert!(ok, "{problems}");
}

#[test]
fn the_checks_catch_what_cfn_lint_does_not() {
    let template = std::fs::read_to_string(repo("infra/template.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (from, to, expected) in [
        (
            "Runtime: provided.al2023",
            "Runtime: provided.al2",
            "provided.al2023",
        ),
        ("Default: arm64", "Default: x86_64", "Architecture"),
        ("Binary: ingest", "Binary: injest", "binary 'injest'"),
        ("Method: ANY", "Method: FETCH", "HTTP method"),
        ("Path: /\n", "Path: /home\n", "must route / "),
        (
            "BuildMethod: rust-cargolambda",
            "BuildMethod: makefile",
            "BuildMethod",
        ),
        (
            "Status: Enabled\n      Public",
            "Status: Suspended\n      Public",
            "versioning",
        ),
        ("Name: shops\n", "Name: workers\n", "workers"),
        (
            "ThrottlingRateLimit: !Ref",
            "ThrottlingRateLimitX: !Ref",
            "throttled",
        ),
        // The ID-number key resolved into a plain environment variable.
        (
            "JIAZHENG_ID_HMAC_SECRET: !Ref IdHmacKey",
            "JIAZHENG_ID_HMAC_KEY: !Sub \"{{resolve:secretsmanager:${IdHmacKey}:SecretString}}\"",
            "plain environment variable",
        ),
        (
            "Action: [secretsmanager:GetSecretValue]",
            "Action: [secretsmanager:DescribeSecret]",
            "may not read the key's secret",
        ),
        // No per-client rate rule, or no web ACL on CloudFront at all.
        (
            "RateBasedStatement:",
            "ByteMatchStatement:",
            "rate-based rule per client",
        ),
        ("WebACLId: !If", "Comment2: !If", "CloudFront must carry"),
        (
            "CachePolicyId: !Ref ApiCachePolicy",
            "CachePolicyId: \"\"",
            "cache policy",
        ),
        // The dead-letter alarm watching the wrong queue; no alarm on ingest.
        (
            "Value: !GetAtt IngestDeadLetters.QueueName",
            "Value: !GetAtt IngestQueue.QueueName",
            "dead-letter queue needs an alarm",
        ),
        (
            "Value: !Ref IngestFunction",
            "Value: !Ref ApiFunction",
            "ingest function's errors",
        ),
        (
            "Input: '{\"repair\": true}'",
            "Input: '{}'",
            "must invoke the repair",
        ),
        // A lifecycle rule that would expire replaced versions of raw uploads.
        (
            "Prefix: !Sub \"${LakePrefix}/tables/\"",
            "Prefix: !Sub \"${LakePrefix}/\"",
            "the evidence",
        ),
    ] {
        assert!(
            template.contains(from),
            "the template no longer has {from:?}"
        );
        let broken = dir.path().join("template.yaml");
        std::fs::write(&broken, template.replacen(from, to, 1)).unwrap();
        let (ok, problems) = check(&broken);
        assert!(!ok, "{from:?} → {to:?} passed");
        assert!(problems.contains(expected), "{problems}");
    }
}
