//! What the open data looks like when it leaves: CSV for spreadsheets, Parquet for tools
//! (with the declared types, checked by DuckDB), paged records, and the long form.

use crate::support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use jiazheng_core::datasets;
use support::{Server, repo};

#[tokio::test]
async fn csv_and_parquet_for_spreadsheets_and_tools() {
    let server = Server::with_samples().await;
    // An enterprise whose name is a formula must not run in Excel.
    let tree = server.tree().await;
    let period = "2023H1".parse().unwrap();
    let mut sheet =
        jiazheng_core::samples::synth::enterprises(tree.get("152201").unwrap(), period, "f");
    sheet.rows[0][1] =
        jiazheng_core::samples::synth::Datum::Text("=HYPERLINK(\"http://evil\",\"点我\")".into());
    let body = jiazheng_core::samples::synth::write(
        &sheet,
        jiazheng_core::samples::synth::Style::CsvUtf8,
        "",
    )
    .unwrap();
    assert_eq!(
        server
            .put("/v1/submissions/enterprises/2023H1/152201", body)
            .await
            .0,
        StatusCode::CREATED
    );

    let (status, headers, body) = server
        .raw(
            Request::get("/v1/datasets/enterprises/2023H1.csv")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(&body[..3], &[0xEF, 0xBB, 0xBF], "UTF-8 BOM for Excel");
    let text = String::from_utf8(body[3..].to_vec()).unwrap();
    assert!(text.contains("乌兰浩特市"), "Chinese intact");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let names: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[1].to_string())
        .collect();
    assert_eq!(names.len(), sheet.rows.len());
    assert!(
        names
            .iter()
            .any(|n| n == "'=HYPERLINK(\"http://evil\",\"点我\")")
    );
    assert!(names.iter().all(|n| !n.starts_with(['=', '+', '-', '@'])));

    // Accept: text/csv on the indicator endpoint; Parquet that a Parquet reader reads.
    let (_, headers, _) = server
        .raw(
            Request::get("/v1/indicators/outlets?period=2023H2&region=152200&level=county")
                .header(header::ACCEPT, "text/csv")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let (status, _, body) = server
        .raw(
            Request::get(
                "/v1/indicators/outlets?period=2023H2&region=152200&level=county&format=parquet",
            )
            .body(Body::empty())
            .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let reader = deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(body),
    )
    .unwrap()
    .build()
    .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 6);

    // gzip when asked.
    let (_, headers, _) = server
        .raw(
            Request::get("/v1/regions?within=152200&level=street")
                .header(header::ACCEPT_ENCODING, "gzip")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
}

#[tokio::test]
async fn records_page_by_cursor_and_closed_data_stays_closed() {
    let server = Server::with_samples().await;
    let mut seen = Vec::new();
    let mut url =
        "/v1/datasets/outlets?period=2023H2&region=152200&limit=25&sort=outlet_id".to_string();
    loop {
        let (status, json) = server.get(&url).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        for row in json["data"].as_array().unwrap() {
            seen.push(row["outlet_id"].as_str().unwrap().to_string());
            assert!(row.get("source_row").is_none());
        }
        match json["next_cursor"].as_str() {
            Some(cursor) => {
                url = format!(
                    "/v1/datasets/outlets?period=2023H2&region=152200&limit=25&sort=outlet_id&cursor={cursor}"
                )
            }
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "pages neither skip nor repeat");
    let (_, all) = server
        .get("/v1/indicators/outlets?period=2023H2&region=152200")
        .await;
    assert_eq!(
        seen.len() as f64,
        all["data"][0]["numerator"].as_f64().unwrap()
    );
    // One unit code in the catalogue and in the values.
    let (_, catalogue) = server.get("/v1/indicators").await;
    let entry = catalogue["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "outlets")
        .unwrap();
    assert_eq!(all["unit"], entry["unit"]);
    assert_eq!(all["unit"], "count");

    let (_, filtered) = server
        .get("/v1/datasets/outlets?period=2023H2&mode=online&region=152201")
        .await;
    let rows = filtered["data"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| r["mode"] == "online"
            && r["community_code"].as_str().unwrap().starts_with("152201"))
    );
    // The Chinese label filters like the code; a value the field never holds is refused.
    let (_, by_label) = server
        .get("/v1/datasets/outlets?period=2023H2&mode=%E7%BA%BF%E4%B8%8A&region=152201")
        .await;
    assert_eq!(by_label["data"], filtered["data"]);
    for bad in [
        "mode=onlin",
        "services=cooking",
        "chain=maybe",
        "sort=nothing",
        "area_m2=10",
    ] {
        let (status, json) = server
            .get(&format!("/v1/datasets/outlets?period=2023H2&{bad}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {json}");
    }
    // A cursor into a table version that never existed: start again.
    let (status, json) = server
        .get("/v1/datasets/outlets?period=2023H2&cursor=999999.0")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{json}");
    assert_eq!(json["type"], "/problems/stale-cursor");
    let (_, meals) = server
        .get("/v1/datasets/outlets?period=2023H2&services=meal&limit=1000")
        .await;
    assert!(
        meals["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["services"].as_array().unwrap().contains(&"meal".into()))
    );

    for closed in ["workers", "complaints"] {
        let (status, json) = server
            .get(&format!("/v1/datasets/{closed}?period=2023H2"))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{json}");
        let (status, _) = server
            .get(&format!("/v1/datasets/{closed}/2023H2.csv"))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, json) = server
        .get("/v1/datasets/outlets?period=2023H2&password=x")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
}

#[tokio::test]
async fn the_long_form_holds_exactly_the_wide_values_of_every_indicator() {
    let server = Server::with_samples().await;
    // The first half-year too, so that every value has a change to carry.
    for county in ["152201", "152202", "152221", "152222", "152223", "152224"] {
        let dir = repo(&format!("sample-data/submissions/2023H1/{county}"));
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let dataset = path.file_stem().unwrap().to_str().unwrap().to_string();
            let (status, json) = server
                .put(
                    &format!("/v1/submissions/{dataset}/2023H1/{county}"),
                    std::fs::read(&path).unwrap(),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{json}");
        }
    }
    for (region, level) in [("152200", "county"), ("152201", "street")] {
        let (status, long) = server
            .get(&format!(
                "/v1/values?period=2023H2&region={region}&level={level}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{long}");
        let mut expected = Vec::new();
        for indicator in jiazheng_core::indicators::CATALOGUE {
            let (status, wide) = server
                .get(&format!(
                    "/v1/indicators/{}?period=2023H2&region={region}&level={level}",
                    indicator.id
                ))
                .await;
            if status == StatusCode::NOT_FOUND {
                continue; // not published at this level
            }
            for row in wide["data"].as_array().unwrap() {
                let mut row = row.as_object().unwrap().clone();
                row.insert("indicator".into(), indicator.id.into());
                row.insert("period".into(), "2023H2".into());
                expected.push(serde_json::Value::Object(row));
            }
        }
        let got = long["data"].as_array().unwrap();
        assert!(got.iter().any(|r| r["change"].is_number()), "{region}");
        assert_eq!(got.len(), expected.len(), "{region} {level}");
        assert_eq!(got, &expected, "{region} {level}");
    }
}

/// The type DuckDB should read for a declared field.
fn duckdb_type(kind: &datasets::Kind) -> String {
    use datasets::Kind;
    match kind {
        Kind::Date => "DATE".into(),
        Kind::Count { .. } => "BIGINT".into(),
        Kind::Bool => "BOOLEAN".into(),
        Kind::Amount => format!(
            "DECIMAL({},{})",
            datasets::AMOUNT_PRECISION,
            datasets::AMOUNT_SCALE
        ),
        Kind::EnumList { .. } => "VARCHAR[]".into(),
        _ => "VARCHAR".into(),
    }
}

/// Parquet downloads keep the declared types: DuckDB reads every field of every open
/// dataset as its declaration says (dates as DATE, counts as BIGINT, flags as BOOLEAN), and
/// indicator values with integer counts, numbers, booleans and lists — never text.
#[tokio::test]
async fn parquet_downloads_keep_the_declared_types_in_duckdb() {
    let python = support::tool("python", "DuckDB");
    let server = Server::with_samples().await;
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let open: Vec<&datasets::Dataset> = datasets::ALL
        .into_iter()
        .filter(|d| d.openness == datasets::Openness::Records)
        .collect();
    for dataset in &open {
        let path = dir.path().join(format!("{}.parquet", dataset.name));
        let body = server
            .get_bytes(&format!("/v1/datasets/{}/2023H2.parquet", dataset.name))
            .await;
        std::fs::write(&path, body).unwrap();
        files.push(path);
    }
    let values = dir.path().join("values.parquet");
    let body = server
        .get_bytes("/v1/values?period=2023H2&region=152200&level=county&format=parquet")
        .await;
    std::fs::write(&values, body).unwrap();
    files.push(values);

    let script = "import duckdb, json, sys\n\
        print(json.dumps({p: {c[0]: c[1] for c in duckdb.sql(f\"DESCRIBE SELECT * FROM read_parquet('{p}')\").fetchall()} for p in sys.argv[1:]}))";
    let output = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let described: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let types = |path: &std::path::Path| described[path.display().to_string()].clone();
    for (dataset, path) in open.iter().zip(&files) {
        let read = types(path);
        for field in dataset.fields {
            assert_eq!(
                read[field.name],
                duckdb_type(&field.kind).as_str(),
                "{}.{}",
                dataset.name,
                field.name
            );
        }
    }
    let read = types(files.last().unwrap());
    for (column, expected) in [
        ("indicator", "VARCHAR"),
        ("period", "VARCHAR"),
        ("counties_reported", "BIGINT"),
        ("counties_due", "BIGINT"),
        ("value", "DOUBLE"),
        ("numerator", "DOUBLE"),
        ("met", "BOOLEAN"),
        ("suppressed", "BOOLEAN"),
        ("submissions", "VARCHAR[]"),
    ] {
        assert_eq!(read[column], expected, "values.{column}: {read}");
    }
}
