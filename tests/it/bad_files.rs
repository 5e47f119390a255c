//! The corpus of bad files (`tests/fixtures/bad/expected.csv`): each is rejected whole with the
//! codes it must produce, none panics, none changes a table, every raw file is kept.

use crate::support;

use axum::http::StatusCode;
use jiazheng_core::datasets;
use jiazheng_core::lake::names;
use support::{Server, repo};

async fn versions(server: &Server) -> Vec<(String, Option<u64>)> {
    let mut tables: Vec<String> = datasets::ALL
        .iter()
        .map(|d| names::dataset(d.name))
        .collect();
    tables.extend([names::REGIONS, names::INDICATOR_VALUES].map(String::from));
    let mut out = Vec::new();
    for t in tables {
        let v = server.table_version(&t).await;
        out.push((t, v));
    }
    out
}

#[tokio::test]
async fn every_bad_file_is_rejected_whole_with_its_codes() {
    let server = Server::with_regions().await;
    for dataset in ["enterprises", "outlets"] {
        let ext = if dataset == "enterprises" {
            "xlsx"
        } else {
            "csv"
        };
        let good = std::fs::read(repo(&format!(
            "sample-data/submissions/2023H2/152201/{dataset}.{ext}"
        )))
        .unwrap();
        let (status, _) = server
            .put(&format!("/v1/submissions/{dataset}/2023H2/152201"), good)
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let before = versions(&server).await;

    let manifest = std::fs::read_to_string(repo("tests/fixtures/bad/expected.csv")).unwrap();
    let mut checked = 0;
    for line in manifest.lines().skip(1) {
        let [file, dataset, period, region, codes] = line.split(',').collect::<Vec<_>>()[..] else {
            panic!("bad manifest line {line}");
        };
        let body = std::fs::read(repo(&format!("tests/fixtures/bad/{file}"))).unwrap();
        let (status, json) = server
            .put(
                &format!("/v1/submissions/{dataset}/{period}/{region}?file_name={file}"),
                body,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{file}: {json}");
        let by_code = &json["report"]["summary"]["by_code"];
        for code in codes.split(';') {
            assert!(
                by_code[code].as_u64().unwrap_or(0) > 0,
                "{file}: expected {code}, got {by_code}"
            );
        }
        assert_eq!(json["submission"]["status"], "rejected");
        let first = &json["report"]["issues"][0];
        assert!(
            first["message_zh"].as_str().is_some_and(|m| !m.is_empty()),
            "{file}"
        );
        assert!(
            first["message_en"].as_str().is_some_and(|m| !m.is_empty()),
            "{file}"
        );
        let raw = json["submission"]["raw_key"].as_str().unwrap();
        assert!(
            server.lake.get_object(raw).await.unwrap().is_some(),
            "{file}: raw file kept"
        );
        assert_eq!(versions(&server).await, before, "{file} changed the lake");
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} bad files");
}

#[tokio::test]
async fn a_hundred_thousand_errors_get_a_bounded_report_with_the_true_total() {
    let server = Server::with_regions().await;
    let mut csv = String::from(
        "credit_code,name,county_code,employee_based,key_contact,industry_education,leading\n",
    );
    for i in 0..100_000 {
        csv.push_str(&format!(
            "91152201MA0000000{},公司{i},152201,是,否,否,否\n",
            i % 10
        ));
    }
    let (status, json) = server
        .put(
            "/v1/submissions/enterprises/2023H2/152201",
            csv.into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let summary = &json["report"]["summary"];
    assert_eq!(summary["rows"], 100_000);
    // The check character of 91152201MA0000000 is K: no digit after it is right.
    assert_eq!(summary["errors"], 100_000);
    assert_eq!(summary["by_code"]["credit_code_checksum"], 100_000);
    assert_eq!(summary["truncated"], true);
    assert_eq!(
        json["report"]["issues"].as_array().unwrap().len(),
        jiazheng_core::findings::MAX_LISTED
    );
    assert!(serde_json::to_vec(&json).unwrap().len() < 1 << 20);
}
