//! The binary under a Lambda Runtime API: `scripts/bench_cold_start.py` (the cold-start
//! benchmark) starts it as Lambda would, hands it one API Gateway event and waits for the
//! response it posts back. This keeps the benchmark working and shows the function answers
//! its first invocation with the runtime it is deployed with.

use std::process::Command;

#[test]
fn answers_its_first_invocation_through_the_runtime_api() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = env!("CARGO_MANIFEST_DIR");
    let python = std::env::var("JIAZHENG_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .arg(format!("{manifest}/../../scripts/bench_cold_start.py"))
        .args(["--bootstrap", env!("CARGO_BIN_EXE_api")])
        .arg("--lake")
        .arg(dir.path().join("lake"))
        .arg("--event")
        .arg(format!("{manifest}/events/apigw-v2-health.json"))
        .args(["--runs", "2", "--binary-only"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("start → response (first answer)") && stdout.contains("status 200"),
        "{stdout}"
    );
}
