//! The indicator catalogue at work: targets, change, disclosure control, lineage, the report
//! rate and concurrent refreshes.

use crate::support;

use axum::http::StatusCode;
use jiazheng_core::datasets;
use jiazheng_core::indicators;
use jiazheng_core::ingest::{Ingestor, Upload};
use jiazheng_core::lake::{Lake, names};
use jiazheng_core::periods::Period;
use jiazheng_core::privacy::Pseudonymizer;
use jiazheng_core::regions::{Level, Region};
use jiazheng_core::samples::synth::{self, Datum, Sheet, Style};
use support::{LEAGUE, Server, one};

async fn send(server: &Server, sheet: &Sheet, period: &str, region: &str) -> serde_json::Value {
    let (status, json) = server.send_sheet(sheet, period, region).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    json
}

#[tokio::test]
async fn targets_change_lineage_and_the_province_denominator() {
    let server = Server::with_regions().await;
    let tree = server.tree().await;
    let county = tree.get("152201").unwrap();
    let mut ids = Vec::new();
    for period in ["2023H1", "2023H2"] {
        let p = period.parse().unwrap();
        let enterprises = synth::enterprises(county, p, "ind");
        send(&server, &enterprises, period, "152201").await;
        let outlets = synth::outlets(&tree, county, p, &enterprises, "ind");
        let json = send(&server, &outlets, period, "152201").await;
        ids.push(
            json["submission"]["submission_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // A county of 呼和浩特市, a key city of the pace-setter action.
    let hohhot = tree.get("150102").unwrap();
    let enterprises = synth::enterprises(hohhot, "2023H2".parse().unwrap(), "ind");
    send(&server, &enterprises, "2023H2", "150102").await;
    send(
        &server,
        &synth::outlets(
            &tree,
            hohhot,
            "2023H2".parse().unwrap(),
            &enterprises,
            "ind",
        ),
        "2023H2",
        "150102",
    )
    .await;

    let (_, h1) = server
        .get("/v1/indicators/outlet_coverage?period=2023H1&region=152201")
        .await;
    let (_, h2) = server
        .get("/v1/indicators/outlet_coverage?period=2023H2&region=152201")
        .await;
    let (before, now) = (one(&h1, "152201"), one(&h2, "152201"));
    let change = now["value"].as_f64().unwrap() - before["value"].as_f64().unwrap();
    assert!((now["change"].as_f64().unwrap() - change).abs() < 1e-9);
    assert_eq!(
        h1["data"][0]["change"],
        serde_json::Value::Null,
        "no 2022H2 to compare with"
    );
    // 兴安盟 is not a key city: it is held to full coverage by 2025.
    assert_eq!(now["target"], 100.0);
    assert_eq!(now["target_deadline"], "2025H2");
    assert_eq!(now["met"], false);
    let gap = 100.0 - now["value"].as_f64().unwrap();
    assert!((now["gap"].as_f64().unwrap() - gap).abs() < 1e-9);
    // Lineage: the value names the submission it was computed from, and the table versions.
    assert_eq!(now["submissions"], serde_json::json!([ids[1]]));
    assert!(h2["sources"]["tables/outlets"].as_i64().unwrap() >= 1);
    assert!(h2["snapshot_version"].as_i64().unwrap() >= 1);

    let (_, key_city) = server
        .get("/v1/indicators/outlet_coverage?period=2023H2&region=150102")
        .await;
    let key_city = one(&key_city, "150102");
    assert_eq!(key_city["target"], 90.0);
    assert_eq!(key_city["target_deadline"], "2023H2");
    assert_eq!(key_city["met"], key_city["value"].as_f64().unwrap() >= 90.0);

    // The province is partly reported: its denominator is the communities of the two counties
    // that reported, not all 2,793 of Inner Mongolia.
    let (_, province) = server
        .get("/v1/indicators/outlet_coverage?period=2023H2&region=150000")
        .await;
    let both = f64::from(county.communities + hohhot.communities);
    assert_eq!(one(&province, "150000")["denominator"], both);
    assert_eq!(one(&province, "150000")["status"], "partial");
    assert_eq!(one(&province, "150000")["counties_reported"], 2);
    assert_eq!(one(&province, "150000")["met"], serde_json::Value::Null);
    assert_eq!(
        one(&province, "150000")["submissions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Per-province targets hold only for provinces.
    let (_, key) = server
        .get("/v1/indicators/key_contact_enterprises?period=2023H2&region=150000&level=province")
        .await;
    assert_eq!(one(&key, "150000")["target"], 30.0);
    let (_, key) = server
        .get("/v1/indicators/key_contact_enterprises?period=2023H2&region=152200&level=city")
        .await;
    assert_eq!(one(&key, "152200")["target"], serde_json::Value::Null);
}

#[tokio::test]
async fn worker_values_about_fewer_than_five_people_are_withheld() {
    let server = Server::with_regions().await;
    let tree = server.tree().await;
    let county = tree.get("152201").unwrap();
    let enterprises = synth::enterprises(county, "2023H2".parse().unwrap(), "w");
    send(&server, &enterprises, "2023H2", "152201").await;
    let mut workers = synth::workers(&tree, county, &enterprises, 40, "w");
    // Exactly three workers serve 爱国街道's first community; the rest serve elsewhere.
    let street_community = "152201001001";
    let other = synth::communities(&tree, county)
        .into_iter()
        .find(|c| !c.prefix.starts_with("152201001"))
        .unwrap()
        .prefix
        .to_string();
    for (i, row) in workers.rows.iter_mut().enumerate() {
        row[2] = Datum::Text(if i < 3 {
            street_community.into()
        } else {
            other.clone()
        });
    }
    send(&server, &workers, "2023H2", "152201").await;

    let (_, streets) = server
        .get("/v1/indicators/credential_rate?period=2023H2&region=152201001&level=street")
        .await;
    let street = one(&streets, "152201001");
    assert_eq!(street["suppressed"], true);
    assert_eq!(street["value"], serde_json::Value::Null);
    assert_eq!(street["numerator"], serde_json::Value::Null);
    assert_eq!(street["denominator"], serde_json::Value::Null);
    let (_, county) = server
        .get("/v1/indicators/credential_rate?period=2023H2&region=152201")
        .await;
    let county = one(&county, "152201");
    assert_eq!(county["suppressed"], false);
    assert_eq!(county["denominator"], 40.0);
    assert_eq!(county["target"], 100.0);
}

/// People are distinct per region: a worker in two counties counts once in each and once in
/// the league above both (a file cannot list one twice: its key is the ID number).
#[tokio::test]
async fn a_worker_in_two_counties_counts_once_in_their_league() {
    let server = Server::with_regions().await;
    two_counties_sharing_three_workers(&server).await;
    assert_eq!(pseudonyms_stored_as(&server).await, "binary");
}

/// A lake whose workers table an older release created (pseudonyms as 64 hex characters)
/// goes on taking files, as hex, and counts people the same.
#[tokio::test]
async fn a_table_of_hex_pseudonyms_counts_people_the_same() {
    use std::sync::Arc;

    use deltalake::arrow::datatypes::{DataType, Field, Schema};

    let server = Server::with_regions().await;
    let dataset = datasets::by_name("workers").unwrap();
    let older: Vec<Field> = dataset
        .schema()
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Binary => f.as_ref().clone().with_data_type(DataType::Utf8),
            _ => f.as_ref().clone(),
        })
        .collect();
    let staged = server
        .lake
        .stage(
            &names::dataset("workers"),
            &Arc::new(Schema::new(older)),
            &datasets::Dataset::partition_columns(),
        )
        .unwrap();
    let nothing = [("county", vec!["000000".to_string()])];
    staged
        .commit_replacing(&nothing, Default::default())
        .await
        .unwrap();
    assert_eq!(pseudonyms_stored_as(&server).await, "string");
    two_counties_sharing_three_workers(&server).await;
    assert_eq!(pseudonyms_stored_as(&server).await, "string");
}

/// The Delta type of the workers table's ID-number column.
async fn pseudonyms_stored_as(server: &Server) -> String {
    let table = server
        .lake
        .load(&names::dataset("workers"))
        .await
        .unwrap()
        .unwrap();
    let schema = table.snapshot().unwrap().schema();
    let field = schema.field("id_number").unwrap();
    field.data_type().to_string()
}

/// Sends 60 workers for each of 152201 and 152202, three of them in both, and checks each
/// county counts 60 and their league 117.
async fn two_counties_sharing_three_workers(server: &Server) {
    let tree = server.tree().await;
    let period = "2023H2".parse().unwrap();
    let mut files = Vec::new();
    for (code, tag) in [("152201", "a"), ("152202", "b")] {
        let county = tree.get(code).unwrap();
        let enterprises = synth::enterprises(county, period, tag);
        send(server, &enterprises, "2023H2", code).await;
        // Enough workers, with and without a card, that no value is withheld.
        files.push(synth::workers(&tree, county, &enterprises, 60, tag));
    }
    // 152202's first three rows are workers of 152201.
    for row in 0..3 {
        files[1].rows[row][0] = files[0].rows[row][0].clone();
    }
    send(server, &files[0], "2023H2", "152201").await;
    send(server, &files[1], "2023H2", "152202").await;

    let workers = |code: &'static str| {
        let url = format!("/v1/indicators/credential_rate?period=2023H2&region={code}");
        async move {
            let (_, json) = server.get(&url).await;
            let row = one(&json, code);
            row["denominator"]
                .as_f64()
                .unwrap_or_else(|| panic!("{row}"))
        }
    };
    assert_eq!(workers("152201").await, 60.0);
    assert_eq!(workers("152202").await, 60.0);
    assert_eq!(workers("152200").await, 117.0, "60 + 60 - 3 shared");
}

#[tokio::test]
async fn report_status_names_who_is_missing() {
    let server = Server::with_regions().await;
    let tree = server.tree().await;
    let period = "2023H2".parse().unwrap();
    let county = tree.get("152201").unwrap();
    let enterprises = synth::enterprises(county, period, "r");
    let sheets = [
        enterprises.clone(),
        synth::outlets(&tree, county, period, &enterprises, "r"),
        synth::trainings(&tree, county, period, "r"),
        synth::workers(&tree, county, &enterprises, 10, "r"),
        synth::shops(&tree, county, period, &enterprises, "r"),
        synth::complaints(&tree, county, period, &enterprises, "r"),
    ];
    for sheet in &sheets {
        send(&server, sheet, "2023H2", "152201").await;
    }
    let other = tree.get("152202").unwrap();
    send(
        &server,
        &synth::enterprises(other, period, "r"),
        "2023H2",
        "152202",
    )
    .await;

    let (status, json) = server
        .get("/v1/reports/status?period=2023H2&region=152200")
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["counties"], 6);
    assert_eq!(json["complete"], 1);
    assert_eq!(json["reported"][0]["code"], "152201");
    let missing = json["missing"].as_array().unwrap();
    assert_eq!(missing.len(), 5);
    let aershan = missing.iter().find(|c| c["code"] == "152202").unwrap();
    assert_eq!(
        aershan["missing"].as_array().unwrap().len(),
        datasets::ALL.len() - 1
    );

    let (_, rate) = server
        .get("/v1/indicators/report_rate?period=2023H2&region=152200")
        .await;
    let league = one(&rate, "152200");
    assert_eq!(league["numerator"], 1.0);
    assert_eq!(league["denominator"], 6.0);
    assert_eq!(league["met"], false);
    let (_, counties) = server
        .get("/v1/indicators/report_rate?period=2023H2&region=152200&level=county")
        .await;
    assert_eq!(one(&counties, "152201")["value"], 100.0);
    assert_eq!(one(&counties, "152201")["met"], true);
    assert_eq!(
        one(&counties, "152201")["submissions"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_submissions_all_reach_the_snapshot() {
    let server = Server::with_regions().await;
    let tree = server.tree().await;
    let period = "2023H2".parse().unwrap();
    let ingestor = Ingestor::new(
        server.lake.clone(),
        Some(Pseudonymizer::new(&[42; 32]).unwrap()),
    );
    let mut expected = Vec::new();
    let mut tasks = Vec::new();
    for code in LEAGUE {
        let county = tree.get(code).unwrap();
        let enterprises = synth::enterprises(county, period, "c");
        let outlets = synth::outlets(&tree, county, period, &enterprises, "c");
        expected.push((code, outlets.rows.len()));
        let body = synth::write(&outlets, Style::CsvUtf8, "").unwrap();
        let ingestor = ingestor.clone();
        tasks.push(tokio::spawn(async move {
            let upload = Upload {
                dataset: &jiazheng_core::datasets::OUTLETS,
                period: "2023H2".parse().unwrap(),
                region: code.into(),
                file_name: format!("{code}.csv"),
            };
            ingestor.submit_bytes(&upload, body.into()).await
        }));
    }
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        assert!(outcome.accepted(), "{:?}", outcome.report.summary);
    }
    // Six commits on the outlets table, one per county (version 0 creates it).
    assert_eq!(
        server.table_version(&names::dataset("outlets")).await,
        Some(6)
    );
    let (_, json) = server
        .get("/v1/indicators/outlets?period=2023H2&region=152200&level=county")
        .await;
    for (code, rows) in expected {
        assert_eq!(one(&json, code)["numerator"], rows as f64, "{code}");
    }
    let (_, league) = server
        .get("/v1/indicators/outlets?period=2023H2&region=152200")
        .await;
    assert_eq!(
        one(&league, "152200")["submissions"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
}

/// The trend of an indicator: one row per published period, oldest first, equal to what each
/// period's read says, with the target held to; a period the region did not report is null
/// (not zero), in JSON, CSV and Parquet, and the trend page draws the line toward the target.
#[tokio::test]
async fn a_series_is_every_published_period_of_one_region() {
    let server = Server::with_regions().await;
    let tree = server.tree().await;
    for (period, county) in [
        ("2023H1", "152201"),
        ("2023H2", "152201"),
        ("2023H2", "152202"),
    ] {
        let region = tree.get(county).unwrap();
        let p = period.parse().unwrap();
        let enterprises = synth::enterprises(region, p, "series");
        send(&server, &enterprises, period, county).await;
        let outlets = synth::outlets(&tree, region, p, &enterprises, "series");
        send(&server, &outlets, period, county).await;
    }
    for county in ["152201", "152202"] {
        let (status, series) = server
            .get(&format!(
                "/v1/indicators/outlet_coverage/series?region={county}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{series}");
        let data = series["data"].as_array().unwrap();
        let periods: Vec<&str> = data.iter().map(|r| r["period"].as_str().unwrap()).collect();
        assert_eq!(periods, ["2023H1", "2023H2"], "{series}");
        for row in data {
            let period = row["period"].as_str().unwrap();
            let (_, read) = server
                .get(&format!(
                    "/v1/indicators/outlet_coverage?period={period}&region={county}"
                ))
                .await;
            let mut expected = one(&read, county).clone();
            // The series names the target held to also where nobody reported.
            for field in ["target", "target_deadline"] {
                expected[field] = row[field].clone();
            }
            assert_eq!(row, &expected, "{period}");
            assert!(row["target"].as_f64().is_some(), "{row}");
        }
    }
    let (_, series) = server
        .get("/v1/indicators/outlet_coverage/series?region=152202")
        .await;
    assert_eq!(series["data"][0]["status"], "not_reported");
    assert!(series["data"][0]["value"].is_null());

    let csv = server
        .get_bytes("/v1/indicators/outlet_coverage/series?region=152202&format=csv")
        .await;
    let mut reader = csv::Reader::from_reader(csv.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&csv));
    let headers = reader.headers().unwrap().clone();
    let at = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let cells: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| (&r[at("indicator")], &r[at("period")], &r[at("value")]))
        .collect();
    assert_eq!(cells[0], ("outlet_coverage", "2023H1", ""), "null, not 0");
    assert_eq!(cells.len(), 2);
    let parquet = server
        .get_bytes("/v1/indicators/outlet_coverage/series?region=152202&format=parquet")
        .await;
    let rows: usize =
        deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(parquet),
        )
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap().num_rows())
        .sum();
    assert_eq!(rows, 2);

    let page = String::from_utf8(
        server
            .get_bytes("/trend?indicator=outlet_coverage&region=152201")
            .await,
    )
    .unwrap();
    assert_eq!(
        page.matches("<circle").count(),
        2,
        "a point per reported half-year"
    );
    assert!(page.contains("<polyline"), "the line");
    assert!(page.contains("class=\"ref\""), "the target line");
    let (status, _) = server.get("/trend?indicator=no_such_thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A refresh after a county's file measures only that county again where the measures add up
/// across counties (and the whole period where they do not): what it computes equals a
/// computation from scratch, on a copy of the lake that no process has measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_after_a_county_equals_one_from_scratch() {
    let server = Server::with_regions().await;
    let tree = server.tree().await;
    let period: Period = "2023H2".parse().unwrap();
    let counties: Vec<&Region> = tree
        .within(tree.get("15").unwrap(), Level::County)
        .into_iter()
        .filter(|c| !synth::communities(&tree, c).is_empty())
        .take(6)
        .collect();
    let sheets = |county: &Region, tag: &str| {
        let enterprises = synth::enterprises(county, period, tag);
        vec![
            synth::outlets(&tree, county, period, &enterprises, tag),
            synth::trainings(&tree, county, period, tag),
            synth::shops(&tree, county, period, &enterprises, tag),
            synth::complaints(&tree, county, period, &enterprises, tag),
            synth::workers(&tree, county, &enterprises, 12, tag),
            enterprises,
        ]
    };
    let mut first: Vec<Vec<Sheet>> = counties.iter().map(|c| sheets(c, "first")).collect();
    // The second county shares three workers and two enterprises with the first: counted
    // once above both, so those measures do not add up across counties.
    for row in 0..3 {
        first[1][4].rows[row][0] = first[0][4].rows[row][0].clone();
    }
    for row in 0..2 {
        let mut shared = first[0][5].rows[row].clone();
        shared[2] = Datum::Text(counties[1].prefix.to_string());
        shared[3] = Datum::Bool(true);
        first[1][5].rows.push(shared);
    }
    // Each file is refreshed as it lands: after the first county, every refresh starts from
    // measures already held.
    let before = indicators::measured_by_county();
    for (county, sheets) in counties.iter().zip(&first) {
        for sheet in sheets {
            send(&server, sheet, "2023H2", &county.code()).await;
        }
    }
    // The first county sends its outlets and complaints again, with fewer rows: streets it
    // had outlets in before have none now.
    for mut sheet in sheets(counties[0], "again") {
        if matches!(sheet.dataset.name, "outlets" | "complaints") {
            sheet.rows.truncate(2);
            send(&server, &sheet, "2023H2", &counties[0].code()).await;
        }
    }
    assert!(
        indicators::measured_by_county() >= before + 20,
        "the additive datasets were measured county by county"
    );
    let refreshed = indicators::compute_period(&server.lake, period)
        .await
        .unwrap();

    let copy = tempfile::tempdir().unwrap();
    support::copy_dir(server.dir.path(), copy.path());
    let fresh = Lake::open(copy.path().to_str().unwrap()).unwrap();
    let scratch = indicators::compute_period(&fresh, period).await.unwrap();
    assert!(refreshed.values.len() > 500, "{}", refreshed.values.len());
    // Lineage: a county's values name its current file; the country's, the six counties'.
    let outlets = |region: &str| {
        let row = refreshed
            .values
            .iter()
            .find(|r| r.indicator.id == "outlets" && r.region == region && r.breakdown.is_none());
        row.unwrap().submissions.clone()
    };
    assert_eq!(outlets(&counties[0].code()).len(), 1);
    let mut every: Vec<String> = counties.iter().flat_map(|c| outlets(&c.code())).collect();
    every.sort();
    every.dedup();
    assert_eq!(every.len(), 6);
    assert_eq!(outlets("000000"), every);
    assert_eq!(refreshed.values.len(), scratch.values.len());
    for (a, b) in refreshed.values.iter().zip(&scratch.values) {
        assert_eq!(a, b);
    }
}
