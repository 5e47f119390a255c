//! End to end, through the HTTP API on a temporary lake: files in, Delta tables written,
//! indicators out, checked against figures computed here from the generated rows alone.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use jiazheng_core::lake::names;
use jiazheng_core::samples::synth::{self, Datum, Sheet, Style};
use support::{Server, community_counts};

const COUNTIES: [&str; 6] = ["152201", "152202", "152221", "152222", "152223", "152224"];
const STYLES: [Style; 4] = [
    Style::CsvUtf8,
    Style::Xlsx,
    Style::CsvGbk,
    Style::CsvEnglish,
];

fn text(d: &Datum) -> &str {
    match d {
        Datum::Text(s) => s,
        Datum::Choice(c) => c,
        _ => panic!("not text: {d:?}"),
    }
}

/// What the indicators must say, computed from the rows without the library's help.
#[derive(Default)]
struct Expected {
    covered: BTreeMap<String, BTreeSet<String>>,
    outlets: BTreeMap<String, u64>,
    by_mode: BTreeMap<(String, String), u64>,
    industry_education: BTreeMap<String, BTreeSet<String>>,
    key_contact: BTreeMap<String, BTreeSet<String>>,
}

impl Expected {
    /// Adds rows to every prefix the row lies in (province, city, county, street).
    fn add(&mut self, enterprises: &Sheet, outlets: &Sheet) {
        for i in 0..outlets.rows.len() {
            let community = text(outlets.get(i, "community_code")).to_string();
            let mode = text(outlets.get(i, "mode")).to_string();
            for n in [2, 4, 6, 9] {
                let p = community[..n].to_string();
                self.covered
                    .entry(p.clone())
                    .or_default()
                    .insert(community.clone());
                *self.outlets.entry(p.clone()).or_default() += 1;
                *self.by_mode.entry((p, mode.clone())).or_default() += 1;
            }
        }
        for i in 0..enterprises.rows.len() {
            let code = text(enterprises.get(i, "credit_code")).to_string();
            let county = text(enterprises.get(i, "county_code")).to_string();
            for n in [2, 4, 6] {
                let p = county[..n].to_string();
                if matches!(
                    text(enterprises.get(i, "industry_education")),
                    "cultivation" | "certified"
                ) {
                    self.industry_education
                        .entry(p.clone())
                        .or_default()
                        .insert(code.clone());
                }
                if enterprises.get(i, "key_contact") == &Datum::Bool(true) {
                    self.key_contact.entry(p).or_default().insert(code.clone());
                }
            }
        }
    }
}

#[tokio::test]
async fn submitted_files_become_the_indicators_the_api_serves() {
    let server = Server::with_regions().await;
    let tree = server.tree().await;
    let period: jiazheng_core::periods::Period = "2023H2".parse().unwrap();
    let mut expected = Expected::default();
    for (i, code) in COUNTIES.iter().enumerate() {
        let county = tree.get(code).unwrap();
        let enterprises = synth::enterprises(county, period, "e2e");
        let outlets = synth::outlets(&tree, county, period, &enterprises, "e2e");
        expected.add(&enterprises, &outlets);
        for (sheet, style) in [
            (&enterprises, STYLES[i % 4]),
            (&outlets, STYLES[(i + 1) % 4]),
        ] {
            let body = synth::write(sheet, style, "兴安盟报表").unwrap();
            let (status, json) = server
                .put(
                    &format!("/v1/submissions/{}/2023H2/{code}", sheet.dataset.name),
                    body,
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{json}");
            assert_eq!(json["report"]["summary"]["rows"], sheet.rows.len() as u64);
        }
    }

    let communities = community_counts();
    // Regions no county reported for have no numbers at all (checked in tests/reporting.rs).
    let values = |json: &serde_json::Value| -> Vec<(String, f64, Option<f64>)> {
        json["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["status"] != "not_reported")
            .map(|d| {
                (
                    d["region"].as_str().unwrap().to_string(),
                    d["numerator"].as_f64().unwrap(),
                    d["denominator"].as_f64(),
                )
            })
            .collect()
    };
    // The communities of the reporting counties (all six of the league) inside a prefix.
    let reporting = |prefix: &str| -> u64 {
        COUNTIES
            .iter()
            .filter(|c| c.starts_with(prefix) || prefix.starts_with(*c))
            .map(|c| {
                if prefix.len() > 6 {
                    communities.get(prefix).copied().unwrap_or(0)
                } else {
                    communities.get(*c).copied().unwrap_or(0)
                }
            })
            .sum()
    };
    // Coverage at every level, down to each street of the league.
    for (region, level, width) in [
        ("150000", "province", 2),
        ("150000", "city", 4),
        ("152200", "county", 6),
        ("152200", "street", 9),
    ] {
        let (status, json) = server
            .get(&format!(
                "/v1/indicators/outlet_coverage?period=2023H2&region={region}&level={level}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        let got = values(&json);
        assert!(!got.is_empty());
        for (code, numerator, denominator) in got {
            let prefix = &format!("{code:0<6}")[..width];
            let covered = expected.covered.get(prefix).map_or(0, BTreeSet::len);
            assert_eq!(numerator, covered as f64, "{level} {code}");
            // Over the communities of the counties that reported, not the province's all.
            assert_eq!(
                denominator,
                Some(reporting(prefix) as f64),
                "{level} {code}"
            );
        }
    }
    // The league reported in full: its denominator is all its 220 communities; the province
    // is partial, so its own is those same 220, not its 2,793.
    assert_eq!(communities["1522"], 220);
    assert_eq!(reporting("15"), 220);
    assert_eq!(communities["15"], 2793);

    let (_, json) = server
        .get("/v1/indicators/outlets?period=2023H2&region=152200&level=county")
        .await;
    for (code, numerator, denominator) in values(&json) {
        assert_eq!(numerator, expected.outlets[&code] as f64);
        assert_eq!(denominator, None);
    }
    let (_, json) = server
        .get("/v1/indicators/outlets_by_mode?period=2023H2&region=152201001&level=street")
        .await;
    for d in json["data"].as_array().unwrap() {
        let key = (
            d["region"].as_str().unwrap().to_string(),
            d["breakdown"].as_str().unwrap().to_string(),
        );
        let want = expected.by_mode.get(&key).copied().unwrap_or(0);
        assert_eq!(d["value"].as_f64().unwrap(), want as f64, "{key:?}");
    }
    for (id, want) in [
        (
            "industry_education_enterprises",
            &expected.industry_education,
        ),
        ("key_contact_enterprises", &expected.key_contact),
    ] {
        for (region, level) in [
            ("150000", "province"),
            ("152200", "city"),
            ("152200", "county"),
        ] {
            let (_, json) = server
                .get(&format!(
                    "/v1/indicators/{id}?period=2023H2&region={region}&level={level}"
                ))
                .await;
            for (code, numerator, _) in values(&json) {
                let prefix = code.trim_end_matches("00").trim_end_matches("00");
                let prefix = if level == "county" {
                    code.as_str()
                } else {
                    prefix
                };
                let n = want.get(prefix).map_or(0, BTreeSet::len);
                assert_eq!(numerator, n as f64, "{id} {code}");
            }
        }
    }
}

#[tokio::test]
async fn a_wrong_check_character_rejects_the_file_whole_and_a_fix_replaces_it() {
    let server = Server::with_regions().await;
    let good = std::fs::read(support::repo(
        "sample-data/submissions/2023H2/152201/enterprises.xlsx",
    ))
    .unwrap();
    let (status, first) = server
        .put("/v1/submissions/enterprises/2023H2/152201", good)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let table = names::dataset("enterprises");
    let before = server.table_rows(&table).await;

    let bad = std::fs::read(support::repo(
        "tests/fixtures/bad/enterprises-credit-checksum.csv",
    ))
    .unwrap();
    let (status, json) = server
        .put("/v1/submissions/enterprises/2023H2/152201", bad)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    let issue = &json["report"]["issues"][0];
    assert_eq!(issue["code"], "credit_code_checksum");
    assert_eq!(
        issue["row"], 4,
        "header on row 1, the third enterprise on row 4"
    );
    assert_eq!(issue["column"], "统一社会信用代码");
    assert!(issue["message_zh"].as_str().unwrap().contains("校验位"));
    assert_eq!(json["submission"]["status"], "rejected");
    assert_eq!(json["submission"]["current"], false);
    assert_eq!(
        server.table_rows(&table).await,
        before,
        "a rejected file changes nothing"
    );

    // The office fixes the code and sends the corrected file: it replaces the first one.
    let tree = server.tree().await;
    let period = "2023H2".parse().unwrap();
    let mut fixed = synth::enterprises(tree.get("152201").unwrap(), period, "fixed");
    fixed.rows.truncate(3);
    let body = synth::write(&fixed, Style::CsvUtf8, "").unwrap();
    let (status, json) = server
        .put("/v1/submissions/enterprises/2023H2/152201", body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    let rows = server.table_rows(&table).await;
    assert_eq!(rows.len(), 3);
    let codes: BTreeSet<String> = (0..3)
        .map(|i| text(fixed.get(i, "credit_code")).to_string())
        .collect();
    assert_eq!(
        rows.iter().map(|r| r.0.clone()).collect::<BTreeSet<_>>(),
        codes
    );
    assert!(
        rows.iter()
            .all(|r| r.1 == json["submission"]["submission_id"].as_str().unwrap())
    );

    // The first submission is no longer current; its rows stay in the table history.
    let id = first["submission"]["submission_id"].as_str().unwrap();
    let (_, old) = server.get(&format!("/v1/submissions/{id}")).await;
    assert_eq!(old["submission"]["current"], false);
    assert_eq!(server.table_rows_at(&table, 1).await.len(), before.len());
}

#[tokio::test]
async fn the_same_bytes_twice_are_one_submission() {
    let server = Server::with_regions().await;
    let file = std::fs::read(support::repo(
        "sample-data/submissions/2023H1/152202/outlets.csv",
    ))
    .unwrap();
    let (status, first) = server
        .put("/v1/submissions/outlets/2023H1/152202", file.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let version = server.table_version(&names::dataset("outlets")).await;
    let (status, second) = server
        .put("/v1/submissions/outlets/2023H1/152202", file)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["duplicate"], true);
    assert_eq!(
        second["submission"]["submission_id"],
        first["submission"]["submission_id"]
    );
    assert_eq!(
        server.table_version(&names::dataset("outlets")).await,
        version
    );
}

#[tokio::test]
async fn templates_listing_and_readable_reports() {
    let server = Server::with_regions().await;
    let (status, _) = server.get("/v1/templates/workers.xlsx").await;
    assert_eq!(status, StatusCode::OK);
    let (status, json) = server.get("/v1/templates/nothing.xlsx").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{json}");
    let (status, _) = server.get("/v1/templates/outlets.pdf").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // An office fills the CSV template and sends it back.
    let template = server.get_bytes("/v1/templates/enterprises.csv").await;
    let tree = server.tree().await;
    let sheet = synth::enterprises(tree.get("152202").unwrap(), "2023H1".parse().unwrap(), "t");
    let rows = synth::write(&sheet, Style::CsvUtf8, "").unwrap();
    let body_rows: Vec<u8> = rows
        .split(|b| *b == b'\n')
        .skip(1)
        .collect::<Vec<_>>()
        .join(&b'\n');
    let filled = [template, body_rows].concat();
    let (status, accepted) = server
        .put("/v1/submissions/enterprises/2023H1/152202", filled)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{accepted}");

    let bad = std::fs::read(support::repo("tests/fixtures/bad/enterprises-bool.csv")).unwrap();
    let (_, rejected) = server
        .put("/v1/submissions/enterprises/2023H2/152201", bad)
        .await;
    let id = rejected["submission"]["submission_id"].as_str().unwrap();
    let csv = String::from_utf8(
        server
            .get_bytes(&format!("/v1/submissions/{id}/report.csv"))
            .await,
    )
    .unwrap();
    assert!(csv.starts_with('\u{feff}'));
    assert!(
        csv.contains("invalid_bool") && csv.contains("也许") && csv.contains("是否员工制"),
        "{csv}"
    );
    let html = String::from_utf8(
        server
            .get_bytes(&format!("/v1/submissions/{id}/report.html"))
            .await,
    )
    .unwrap();
    assert!(
        html.contains("<mark>也许</mark>") && html.contains("未通过"),
        "{html}"
    );

    let (_, list) = server
        .get("/v1/submissions?period=2023H2&region=152200")
        .await;
    let listed = list["submissions"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["status"], "rejected");
    let (_, list) = server.get("/v1/submissions?region=152202").await;
    assert_eq!(list["submissions"][0]["current"], true);
    let (status, _) = server.get("/v1/submissions?period=2023H3").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
