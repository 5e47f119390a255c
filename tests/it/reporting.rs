//! Not reported is not zero: reporting states on every value in every format, nil returns,
//! and disclosure control that no subtraction defeats.

use crate::support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use jiazheng_core::datasets;
use jiazheng_core::keys::{self, Role};
use jiazheng_core::samples::synth::{self, Datum, Sheet, Style};
use support::{LEAGUE, Server, one};

async fn send(server: &Server, sheet: &Sheet, period: &str, region: &str) -> serde_json::Value {
    let (status, json) = server.send_sheet(sheet, period, region).await;
    assert!(status.is_success(), "{json}");
    json
}

#[tokio::test]
async fn an_area_nobody_reported_for_is_null_in_every_format() {
    let server = Server::with_samples().await;
    let null = serde_json::Value::Null;
    // JSON: 呼和浩特市 has sent nothing.
    let (status, json) = server
        .get("/v1/indicators/outlet_coverage?period=2023H2&region=150000&level=city")
        .await;
    assert_eq!(status, StatusCode::OK);
    let hohhot = one(&json, "150100");
    assert_eq!(hohhot["status"], "not_reported");
    for field in ["value", "numerator", "denominator", "met", "gap", "change"] {
        assert_eq!(hohhot[field], null, "{field}: {hohhot}");
    }
    assert_eq!(hohhot["counties_reported"], 0);
    assert!(hohhot["counties_due"].as_u64().unwrap() > 0);
    let xingan = one(&json, "152200");
    assert_eq!(xingan["status"], "reported");
    assert_eq!(xingan["counties_reported"], 6);

    // CSV: the same row with empty cells, never a 0.
    let csv = server
        .get_bytes(
            "/v1/indicators/outlet_coverage?period=2023H2&region=150000&level=city&format=csv",
        )
        .await;
    let text = String::from_utf8(csv).unwrap();
    let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let row = reader
        .records()
        .map(Result::unwrap)
        .find(|r| &r[column("region")] == "150100")
        .unwrap();
    assert_eq!(&row[column("status")], "not_reported");
    for name in ["value", "numerator", "met", "gap"] {
        assert_eq!(&row[column(name)], "", "{name}");
    }

    // Parquet: null.
    let parquet = server
        .get_bytes(
            "/v1/indicators/outlet_coverage?period=2023H2&region=150000&level=city&format=parquet",
        )
        .await;
    let reader = deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(parquet),
    )
    .unwrap()
    .build()
    .unwrap();
    let mut found = false;
    for batch in reader {
        let batch = batch.unwrap();
        let region =
            jiazheng_core::lake::read::text(&batch, batch.schema().index_of("region").unwrap())
                .unwrap();
        let value = batch.column(batch.schema().index_of("value").unwrap());
        let status =
            jiazheng_core::lake::read::text(&batch, batch.schema().index_of("status").unwrap())
                .unwrap();
        for i in 0..batch.num_rows() {
            if region.value(i) == "150100" {
                found = true;
                assert!(value.is_null(i));
                assert_eq!(status.value(i), "not_reported");
            }
        }
    }
    assert!(found);

    // SQL: the view has the row, null.
    let tree = server.tree().await;
    let (analyst, _) = keys::issue(&server.lake, tree.get("15").unwrap(), Role::Analyst)
        .await
        .unwrap();
    let (status, _, body) = server
        .raw(
            Request::post("/v1/sql")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, format!("Bearer {analyst}"))
                .body(Body::from(
                    serde_json::json!({"sql": "SELECT region, status, value, met, counties_due FROM indicator_values WHERE indicator = 'outlet_coverage' AND period = '2023H2' AND level = 'city' ORDER BY region"})
                        .to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let rows = answer["rows"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        12,
        "every league and city of Inner Mongolia: {answer}"
    );
    let hohhot = rows.iter().find(|r| r["region"] == "150100").unwrap();
    assert_eq!(hohhot["status"], "not_reported");
    assert!(
        hohhot["value"].is_null() && hohhot["met"].is_null(),
        "{hohhot}"
    );
    let reported: Vec<_> = rows
        .iter()
        .filter(|r| r["status"] != "not_reported")
        .collect();
    assert_eq!(reported.len(), 1, "only 兴安盟 reported");
}

#[tokio::test]
async fn a_league_where_four_of_six_reported_is_partial_and_counts_only_them() {
    let server = Server::with_regions().await;
    let tree = server.tree().await;
    let period = "2023H2".parse().unwrap();
    let mut covered = 0;
    let mut communities = 0;
    for code in &LEAGUE[..4] {
        let county = tree.get(code).unwrap();
        let enterprises = synth::enterprises(county, period, "partial");
        send(&server, &enterprises, "2023H2", code).await;
        let outlets = synth::outlets(&tree, county, period, &enterprises, "partial");
        let mut seen: Vec<String> = outlets
            .rows
            .iter()
            .filter_map(|r| match &r[2] {
                Datum::Text(c) => Some(c.clone()),
                _ => None,
            })
            .collect();
        seen.sort();
        seen.dedup();
        covered += seen.len();
        communities += county.communities;
        send(&server, &outlets, "2023H2", code).await;
    }
    let (_, json) = server
        .get("/v1/indicators/outlet_coverage?period=2023H2&region=152200")
        .await;
    let league = one(&json, "152200");
    assert_eq!(league["status"], "partial");
    assert_eq!(league["counties_reported"], 4);
    assert_eq!(league["counties_due"], 6);
    // Coverage among the communities of the four, not of all six.
    assert_eq!(league["numerator"], covered as f64);
    assert_eq!(league["denominator"], f64::from(communities));
    assert_eq!(
        league["met"],
        serde_json::Value::Null,
        "a partial value is not judged"
    );
    assert_eq!(league["target"], 100.0);
    let (_, counties) = server
        .get("/v1/indicators/outlet_coverage?period=2023H2&region=152200&level=county")
        .await;
    assert_eq!(one(&counties, "152201")["status"], "reported");
    assert_eq!(one(&counties, "152224")["status"], "not_reported");
}

#[tokio::test]
async fn a_header_only_file_is_a_nil_return_that_counts_as_reported() {
    let server = Server::with_regions().await;
    let tree = server.tree().await;
    let county = tree.get("152201").unwrap();
    let period = "2023H2".parse().unwrap();
    // Real complaints first, then the corrected statement: none this half-year.
    let enterprises = synth::enterprises(county, period, "nil");
    send(&server, &enterprises, "2023H2", "152201").await;
    let complaints = synth::complaints(&tree, county, period, &enterprises, "nil");
    send(&server, &complaints, "2023H2", "152201").await;
    for dataset in datasets::ALL.iter().filter(|d| d.name != "enterprises") {
        let empty = Sheet {
            dataset,
            rows: Vec::new(),
        };
        for style in [Style::CsvUtf8, Style::Xlsx] {
            let (status, json) = server
                .put(
                    &format!("/v1/submissions/{}/2023H2/152201", dataset.name),
                    synth::write(&empty, style, "零报送").unwrap(),
                )
                .await;
            assert!(status.is_success(), "{}: {json}", dataset.name);
            assert_eq!(json["status"], "accepted");
            assert_eq!(json["report"]["summary"]["by_code"]["nil_return"], 1);
            assert_eq!(json["submission"]["rows"], 0);
        }
    }
    // It replaced the earlier complaints: no rows left, and a real zero.
    let (_, json) = server
        .get("/v1/indicators/complaint_resolution_rate?period=2023H2&region=152201")
        .await;
    let own = one(&json, "152201");
    assert_eq!(own["status"], "reported");
    assert_eq!(own["numerator"], 0.0);
    let (_, json) = server
        .get("/v1/indicators/trainings?period=2023H2&region=152201")
        .await;
    assert_eq!(one(&json, "152201")["value"], 0.0);
    // With every dataset in, the county has reported in full.
    let (_, json) = server
        .get("/v1/indicators/report_rate?period=2023H2&region=152200&level=county")
        .await;
    assert_eq!(one(&json, "152201")["value"], 100.0);
    assert_eq!(one(&json, "152202")["value"], 0.0);
    // The status page says 零报送.
    let (_, _, page) = server
        .raw(
            Request::get("/status?period=2023H2&region=152201")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(String::from_utf8(page).unwrap().contains("零报送"));
    // A zero-byte file is still no return at all.
    let (status, json) = server
        .put("/v1/submissions/outlets/2023H2/152201", Vec::new())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json["report"]["summary"]["by_code"]["empty_file"], 1);
}

/// Workers of every county of Inner Mongolia, few enough that many streets and some counties
/// fall under the threshold; then every parent and its children, as published, are tried.
#[tokio::test]
async fn no_withheld_worker_figure_can_be_recovered_by_subtraction() {
    let server = Server::with_regions().await;
    let tree = server.tree().await;
    let period = "2023H2".parse().unwrap();
    let country = tree.country().unwrap();
    for city in tree.within(country, jiazheng_core::regions::Level::City) {
        let counties: Vec<_> = tree
            .within(city, jiazheng_core::regions::Level::County)
            .into_iter()
            .filter(|c| !synth::communities(&tree, c).is_empty())
            .collect();
        let mut merged: Option<Sheet> = None;
        for (k, county) in counties.iter().enumerate() {
            let enterprises = synth::enterprises(county, period, "diff");
            let workers = synth::workers(&tree, county, &enterprises, 3 + k * 7 % 23, "diff");
            match &mut merged {
                Some(all) => all.rows.extend(workers.rows),
                None => merged = Some(workers),
            }
        }
        if let Some(workers) = merged {
            send(&server, &workers, "2023H2", &city.code()).await;
        }
    }
    let mut all = std::collections::HashMap::new();
    for id in [
        "credential_rate",
        "skill_certificate_rate",
        "resident_workers",
        "rural_workers",
    ] {
        let mut values = std::collections::HashMap::new();
        for level in ["country", "province", "city", "county", "street"] {
            let (_, json) = server
                .get(&format!(
                    "/v1/indicators/{id}?period=2023H2&region=000000&level={level}"
                ))
                .await;
            for row in json["data"].as_array().unwrap() {
                values.insert(row["region"].as_str().unwrap().to_string(), row.clone());
            }
        }
        all.insert(id, values);
    }
    // The workers of a region, where a rate publishes them: what a count's complement is of.
    let workers = |code: &str| {
        ["credential_rate", "skill_certificate_rate"]
            .iter()
            .find_map(|id| all[id].get(code)?["denominator"].as_f64())
    };
    let (mut withheld, mut published) = (0, 0);
    for (id, values) in &all {
        for (code, row) in values {
            if row["status"] == "not_reported" {
                continue;
            }
            if row["suppressed"] == true {
                withheld += 1;
                assert!(
                    row["value"].is_null() && row["numerator"].is_null(),
                    "{row}"
                );
                continue;
            }
            published += 1;
            // Primary: a published figure is about 5 or more, and 5 or more are without it.
            let about = row["numerator"].as_f64().unwrap();
            assert!(about >= 5.0, "{id} {code}: {row}");
            if let Some(among) = row["denominator"].as_f64().or_else(|| workers(code)) {
                assert!(among - about >= 5.0, "{id} {code}: {row}");
            }
        }
        // Secondary: for every published parent, the withheld children together are what a
        // subtraction gives, and that must be two or more of them and 5 or more on each side.
        for (code, parent) in values {
            if parent["suppressed"] == true || parent["status"] == "not_reported" {
                continue;
            }
            let region = tree.resolve(code).unwrap();
            let children: Vec<&serde_json::Value> = tree
                .children(region)
                .iter()
                .filter_map(|c| values.get(&c.code()))
                .filter(|c| c["status"] != "not_reported")
                .collect();
            let hidden = children.iter().filter(|c| c["suppressed"] == true).count();
            if hidden == 0 {
                continue;
            }
            assert!(hidden >= 2, "{id}: a lone withheld child of {code}");
            let shown = || children.iter().filter(|c| c["suppressed"] != true);
            let derived = parent["numerator"].as_f64().unwrap()
                - shown()
                    .map(|c| c["numerator"].as_f64().unwrap())
                    .sum::<f64>();
            assert!(derived >= 5.0, "{id}: {code} gives away {derived}");
            if let Some(total) = parent["denominator"].as_f64() {
                let rest = total
                    - shown()
                        .map(|c| c["denominator"].as_f64().unwrap())
                        .sum::<f64>();
                assert!(
                    rest - derived >= 5.0,
                    "{id}: {code} gives away the complement"
                );
            }
        }
    }
    assert!(
        withheld > 50 && published > 50,
        "{withheld} withheld, {published} published"
    );
}
