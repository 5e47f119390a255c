//! The binary outside Lambda: it ingests the upload keys given as arguments against
//! `JIAZHENG_LAKE`, so an operator can replay an upload by hand.

use std::process::Command;

#[test]
fn replays_an_upload_key_given_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let lake = jiazheng_core::lake::Lake::open(lake.to_str().unwrap()).unwrap();
        let samples = jiazheng_core::samples::checkout_dir();
        jiazheng_core::samples::import_regions(&lake, &jiazheng_core::samples::inner_mongolia())
            .await
            .unwrap();
        let file = std::fs::read(samples.join("submissions/2023H2/152202/outlets.csv")).unwrap();
        lake.put_object("uploads/outlets/2023H2/152202/by-hand.csv", file.into())
            .await
            .unwrap();
    });
    let out = Command::new(env!("CARGO_BIN_EXE_ingest"))
        .arg("uploads/outlets/2023H2/152202/by-hand.csv")
        .env("JIAZHENG_LAKE", &lake)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("JIAZHENG_ID_HMAC_KEY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["submission_id"], "by-hand");
    assert_eq!(report["status"], "accepted", "{report}");
}
