//! Plausibility: each declared rule against its fixture (`tests/fixtures/plausibility/<rule>/`):
//! the county's previous file, another county's file of the league where the rule needs one,
//! an implausible current file whose report must list exactly the expected findings, and a
//! plausible one that must draw none.

use axum::http::StatusCode;
use jiazheng_core::plausibility::RULES;
use serde_json::Value;

use crate::support::{Server, repo};

const COUNTY: &str = "152201";
const PEER: &str = "152202";

async fn send(
    server: &Server,
    dataset: &str,
    period: &str,
    county: &str,
    file: &std::path::Path,
) -> Value {
    let (status, json) = server
        .put(
            &format!("/v1/submissions/{dataset}/{period}/{county}?file_name=plausibility.csv"),
            std::fs::read(file).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{}: {json}", file.display());
    json["report"].clone()
}

/// The plausibility findings of a report, as (row, value, comparison) of one rule, sorted.
fn found(report: &Value, code: &str) -> Vec<(Value, Value, Value)> {
    let mut found: Vec<_> = report["issues"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["code"] == code)
        .map(|i| {
            assert_eq!(i["severity"], "warning", "{i}");
            assert!(i["message_zh"].as_str().unwrap().contains("核实"), "{i}");
            (
                i["row"].clone(),
                i["value"].clone(),
                i["comparison"].clone(),
            )
        })
        .collect();
    found.sort_by_key(|f| f.0.to_string());
    found
}

async fn rule_against_its_fixture(code: &str) {
    let dir = repo(&format!("tests/fixtures/plausibility/{code}"));
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let dataset = expected["dataset"].as_str().unwrap();
    let server = Server::with_regions().await;
    if dir.join("before.csv").exists() {
        let report = send(&server, dataset, "2023H1", COUNTY, &dir.join("before.csv")).await;
        assert_eq!(found(&report, code), []);
    }
    if dir.join("peer.csv").exists() {
        send(&server, dataset, "2023H2", PEER, &dir.join("peer.csv")).await;
    }
    let report = send(&server, dataset, "2023H2", COUNTY, &dir.join("now.csv")).await;
    assert_eq!(report["status"], "accepted", "{report}");
    let mut want: Vec<_> = expected["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["row"].clone(),
                f["value"].clone(),
                f["comparison"].clone(),
            )
        })
        .collect();
    want.sort_by_key(|f| f.0.to_string());
    assert_eq!(found(&report, code), want, "{code}: {report}");
    assert_eq!(
        report["summary"]["by_code"][code],
        want.len(),
        "{code}: counted in the summary"
    );

    // The CSV report (and so the page, from the same issues) carries the comparison.
    let csv = server
        .get_bytes(&format!(
            "/v1/submissions/{}/report.csv",
            report["submission_id"].as_str().unwrap()
        ))
        .await;
    let text = String::from_utf8(csv).unwrap();
    let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let headers = reader.headers().unwrap().clone();
    let (code_at, compared_at) = (
        headers.iter().position(|h| h == "代码 Code").unwrap(),
        headers
            .iter()
            .position(|h| h == "对照 Compared with")
            .unwrap(),
    );
    let mut compared: Vec<String> = reader
        .records()
        .map(Result::unwrap)
        .filter(|r| &r[code_at] == code)
        .map(|r| r[compared_at].to_string())
        .collect();
    compared.sort();
    let mut want_compared: Vec<String> = want
        .iter()
        .map(|w| w.2.as_str().unwrap().to_string())
        .collect();
    want_compared.sort();
    assert_eq!(compared, want_compared);

    // The plausible file replaces it and draws no finding of any rule.
    let report = send(
        &server,
        dataset,
        "2023H2",
        COUNTY,
        &dir.join("plausible.csv"),
    )
    .await;
    for rule in RULES {
        assert_eq!(
            found(&report, rule.code),
            [],
            "{code}: plausible file: {report}"
        );
    }
}

macro_rules! rules {
    ($($code:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $code() {
                rule_against_its_fixture(stringify!($code)).await;
            }
        )*

        #[test]
        fn every_declared_rule_has_a_fixture_and_a_test() {
            let tested = [$(stringify!($code)),*];
            for rule in RULES {
                assert!(tested.contains(&rule.code), "{} has no test", rule.code);
                let dir = repo(&format!("tests/fixtures/plausibility/{}", rule.code));
                for file in ["now.csv", "plausible.csv", "expected.json"] {
                    assert!(dir.join(file).exists(), "{}: {file}", rule.code);
                }
            }
            assert_eq!(tested.len(), RULES.len());
        }
    };
}

mod each_rule {
    use super::*;

    rules!(
        outlets_count_change,
        enterprises_count_change,
        workers_count_change,
        trainings_count_change,
        outlets_nil_after_rows,
        enterprises_nil_after_rows,
        workers_nil_after_rows,
        shops_nil_after_rows,
        complaints_nil_after_rows,
        community_lost_outlets,
        enterprise_missing,
        outlet_fixed_changed,
        shop_fixed_changed,
        training_fixed_changed,
        worker_in_two_counties,
        outlet_in_two_counties,
        outlet_subsidy_outlier,
        outlet_area_outlier,
        training_hours_outlier,
        training_subsidy_outlier,
    );
}

/// What a planted league's reports must show: the rule, and the county whose report has it.
type Planted = std::collections::BTreeSet<(&'static str, String)>;

/// A league of ten counties (呼伦贝尔市) over two periods, generated as the samples are, with
/// implausibilities planted in 2023H2: every planted one is found, in the county it was
/// planted in, and nothing is found anywhere else (precision and recall both 1).
#[tokio::test]
async fn a_generated_league_with_planted_implausibilities() {
    use jiazheng_core::datasets::Dataset;
    use jiazheng_core::ingest::Upload;
    use jiazheng_core::regions::Level;
    use jiazheng_core::samples::synth::{self, Datum, Sheet, Style};

    let server = Server::with_regions().await;
    let tree = server.tree().await;
    // Bulk load: the checks run as on any ingest; the indicators are not the point here.
    let ingestor = server.bulk_ingestor();
    let league = tree.get("1507").unwrap();
    let sheets = |county: &jiazheng_core::regions::Region, period: &str| {
        let period = period.parse().unwrap();
        let enterprises = synth::enterprises(county, period, "league");
        vec![
            synth::outlets(&tree, county, period, &enterprises, "league"),
            synth::trainings(&tree, county, period, "league"),
            synth::workers(&tree, county, &enterprises, 30, "league"),
            synth::shops(&tree, county, period, &enterprises, "league"),
            synth::complaints(&tree, county, period, &enterprises, "league"),
            enterprises,
        ]
    };
    // The ten counties with the most outlets, so that every count rule has rows to judge.
    let mut counties = tree.within(league, Level::County);
    counties.sort_by_key(|c| std::cmp::Reverse(sheets(c, "2023H1")[0].rows.len()));
    counties.truncate(10);
    let code = |i: usize| counties[i].prefix.to_string();

    let mut planted = Planted::new();
    let mut found = Planted::new();
    for period in ["2023H1", "2023H2"] {
        let mut shared_worker = None;
        for (i, county) in counties.iter().enumerate() {
            let mut files = sheets(county, period);
            files.rotate_right(1); // enterprises first, as offices send them
            if period == "2023H2" {
                plant(i, &mut files, &mut shared_worker);
            }
            for sheet in &files {
                let upload = Upload {
                    dataset: sheet.dataset,
                    period: period.parse().unwrap(),
                    region: county.prefix.to_string(),
                    file_name: format!("{}.csv", sheet.dataset.name),
                };
                let body = synth::write(sheet, Style::CsvUtf8, "").unwrap();
                let outcome = ingestor.submit_bytes(&upload, body.into()).await.unwrap();
                assert!(outcome.accepted(), "{:?}", outcome.report.issues);
                for issue in &outcome.report.issues {
                    if let Some(rule) = RULES.iter().find(|r| r.code == issue.code) {
                        found.insert((rule.code, county.prefix.to_string()));
                    }
                }
            }
        }
    }
    for (i, rules) in PLANTS {
        for rule in *rules {
            planted.insert((rule, code(*i)));
        }
    }
    let hits = found.intersection(&planted).count();
    let (precision, recall) = (
        hits as f64 / found.len().max(1) as f64,
        hits as f64 / planted.len() as f64,
    );
    println!(
        "planted league: {} planted, {} found, precision {precision}, recall {recall}",
        planted.len(),
        found.len()
    );
    assert_eq!(found, planted, "precision {precision}, recall {recall}");

    /// County index → the rules its 2023H2 files are planted to break. County 3 sends a
    /// worker that county 4 sends again: the finding is in the later file's report.
    const PLANTS: &[(usize, &[&str])] = &[
        (0, &["outlets_count_change", "community_lost_outlets"]),
        (1, &["outlet_fixed_changed"]),
        (2, &["enterprise_missing"]),
        (4, &["worker_in_two_counties"]),
        (6, &["outlets_nil_after_rows"]),
        (8, &["training_subsidy_outlier"]),
        (9, &["outlet_area_outlier"]),
    ];

    fn plant(i: usize, files: &mut [Sheet], shared_worker: &mut Option<Datum>) {
        let of = |files: &mut [Sheet], d: &Dataset| -> usize {
            files.iter().position(|s| s.dataset.name == d.name).unwrap()
        };
        let outlets = of(files, &jiazheng_core::datasets::OUTLETS);
        let field = |sheet: &Sheet, name: &str| {
            sheet
                .dataset
                .fields
                .iter()
                .position(|f| f.name == name)
                .unwrap()
        };
        match i {
            0 => {
                let keep = files[outlets].rows.len() / 2;
                files[outlets].rows.truncate(keep);
            }
            1 => {
                // An outlet open in 2023H1 too, so that there is a row to compare with.
                let opened = field(&files[outlets], "opened_on");
                let h1_end = chrono::NaiveDate::from_ymd_opt(2023, 6, 30).unwrap();
                let row = files[outlets]
                    .rows
                    .iter()
                    .position(|r| matches!(r[opened], Datum::Date(d) if d <= h1_end))
                    .unwrap();
                files[outlets].rows[row][opened] =
                    Datum::Date(chrono::NaiveDate::from_ymd_opt(2019, 1, 1).unwrap());
            }
            2 => {
                let e = of(files, &jiazheng_core::datasets::ENTERPRISES);
                files[e].rows.remove(0);
            }
            3 | 4 => {
                let w = of(files, &jiazheng_core::datasets::WORKERS);
                let id = field(&files[w], "id_number");
                match shared_worker.take() {
                    None => *shared_worker = Some(files[w].rows[0][id].clone()),
                    Some(theirs) => files[w].rows[0][id] = theirs,
                }
            }
            6 => files[outlets].rows.clear(),
            8 => {
                let t = of(files, &jiazheng_core::datasets::TRAININGS);
                let subsidy = field(&files[t], "subsidy_yuan");
                files[t].rows[0][subsidy] = Datum::Cents(100 * 2_000_000);
            }
            9 => {
                let area = field(&files[outlets], "area_m2");
                let row = files[outlets]
                    .rows
                    .iter()
                    .position(|r| r[area] != Datum::Blank)
                    .unwrap();
                files[outlets].rows[row][area] = Datum::Cents(100 * 100 * 1_000);
            }
            _ => {}
        }
    }
}

/// The rules are published with the datasets they read, thresholds included, from the same
/// declarations the checks run.
#[tokio::test]
async fn the_dataset_listing_publishes_each_rule_with_its_thresholds() {
    let server = Server::with_regions().await;
    let (status, json) = server.get("/v1/datasets").await;
    assert_eq!(status, StatusCode::OK);
    let mut published = 0;
    for dataset in json["datasets"].as_array().unwrap() {
        for rule in dataset["plausibility"].as_array().unwrap() {
            let declared = jiazheng_core::plausibility::by_code(rule["code"].as_str().unwrap())
                .unwrap_or_else(|| panic!("undeclared {rule}"));
            assert_eq!(declared.dataset.name, dataset["name"]);
            assert_eq!(rule["check"], serde_json::to_value(declared.check).unwrap());
            published += 1;
        }
    }
    assert_eq!(published, RULES.len());
    let outlets = json["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "outlets")
        .unwrap();
    let count = outlets["plausibility"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "outlets_count_change")
        .unwrap();
    assert_eq!(count["check"]["kind"], "row_count");
    assert_eq!(count["check"]["fall"], 0.3);
    assert_eq!(count["check"]["rise"], 2.0);
}
