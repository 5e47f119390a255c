//! No raw ID number anywhere the pipeline writes, outside the kept raw uploads: every object
//! of the lake is read — Parquet decoded column by column, everything else as text — and so
//! are the API's responses and the command line's logs.

use crate::support;

use std::collections::{BTreeSet, HashSet};

use axum::http::StatusCode;
use bytes::Bytes;
use deltalake::arrow::array::AsArray;
use deltalake::arrow::util::display::{ArrayFormatter, FormatOptions};
use deltalake::logstore::object_store::{ObjectStore, ObjectStoreExt};
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use futures::TryStreamExt;
use jiazheng_core::samples::synth::{self, Datum, Style};
use support::{Server, repo};

/// Every string a Parquet file holds, whatever the column type. Bytes (the pseudonyms) are
/// read as text too: formatted, they would be hex, and an ID number written there as its
/// characters would not show.
fn parquet_values(bytes: Bytes) -> Vec<String> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        for column in batch.columns() {
            if let Some(bytes) = column.as_binary_opt::<i32>() {
                out.extend(
                    bytes
                        .iter()
                        .flatten()
                        .map(|b| String::from_utf8_lossy(b).into_owned()),
                );
                continue;
            }
            let formatter =
                ArrayFormatter::try_new(column.as_ref(), &FormatOptions::default()).unwrap();
            for i in 0..column.len() {
                out.push(formatter.value(i).to_string());
            }
        }
    }
    out
}

/// Whether `text` holds any needle: every run of digits (and X) is cut into windows of the
/// needles' lengths and looked up, so the scan is linear in the text.
fn holds_any(text: &str, needles: &HashSet<String>, lengths: &BTreeSet<usize>) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'X') {
            i += 1;
        }
        // The run is ASCII, so any cut of it is a valid str.
        let run = &bytes[start..i];
        for &n in lengths.iter().filter(|&&n| n <= run.len()) {
            let hit = (0..=run.len() - n)
                .any(|at| std::str::from_utf8(&run[at..at + n]).is_ok_and(|w| needles.contains(w)));
            if hit {
                return true;
            }
        }
        i += 1;
    }
    false
}

/// (path, whether it holds any of `ids`) for every object under the lake root.
async fn scan(
    server: &Server,
    ids: &HashSet<String>,
    lengths: &BTreeSet<usize>,
) -> Vec<(String, bool)> {
    let store = server.lake.store();
    let objects: Vec<_> = store.list(None).try_collect().await.unwrap();
    let mut found = Vec::new();
    for meta in objects {
        let path = meta.location.to_string();
        let bytes = store
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let leaked = if path.ends_with(".parquet") {
            parquet_values(bytes)
                .iter()
                .any(|v| holds_any(v, ids, lengths))
        } else {
            holds_any(&String::from_utf8_lossy(&bytes), ids, lengths)
        };
        found.push((path, leaked));
    }
    found
}

#[tokio::test]
async fn no_raw_id_number_outside_uploads() {
    let server = Server::with_regions().await;
    let tree = server.tree().await;
    let county = tree.get("152201").unwrap();
    let period = "2023H2".parse().unwrap();
    let enterprises = synth::enterprises(county, period, "privacy");
    let workers = synth::workers(&tree, county, &enterprises, 500, "privacy");
    let ids: BTreeSet<String> = (0..workers.rows.len())
        .map(|i| match workers.get(i, "id_number") {
            Datum::Text(id) => id.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    // The same people with their birth dates only (a masked number must not keep them).
    let births: BTreeSet<String> = ids.iter().map(|id| id[6..17].to_string()).collect();

    let (status, _) = server
        .put(
            "/v1/submissions/enterprises/2023H2/152201",
            synth::write(&enterprises, Style::Xlsx, "").unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, accepted) = server
        .put(
            "/v1/submissions/workers/2023H2/152201",
            synth::write(&workers, Style::CsvGbk, "").unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{accepted}");
    // A rejected file whose report must point at ID numbers without repeating them.
    let mut bad = workers.clone();
    let first = bad.rows[0][0].clone();
    bad.rows[1][0] = first;
    if let Datum::Text(id) = &mut bad.rows[2][0] {
        id.replace_range(17..18, if id.ends_with('1') { "2" } else { "1" });
    }
    let (status, rejected) = server
        .put(
            "/v1/submissions/workers/2023H2/152201",
            synth::write(&bad, Style::Xlsx, "").unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let codes: Vec<&str> = rejected["report"]["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"duplicate_key") && codes.contains(&"id_number_checksum"),
        "{codes:?}"
    );

    let needles: HashSet<String> = ids.iter().cloned().chain(births).collect();
    let lengths: BTreeSet<usize> = needles.iter().map(String::len).collect();
    let scanned = scan(&server, &needles, &lengths).await;
    assert!(
        scanned
            .iter()
            .any(|(p, _)| p.ends_with(".parquet") && p.contains("workers"))
    );
    // The scanner does see raw numbers where they are allowed to be: the workers CSV upload.
    assert!(
        scanned
            .iter()
            .any(|(p, leaked)| p.starts_with("uploads/workers/") && p.ends_with(".csv") && *leaked)
    );
    for (path, leaked) in scanned.iter().filter(|(p, _)| !p.starts_with("uploads/")) {
        assert!(!leaked, "{path} holds a raw ID number");
    }

    for id in [
        &accepted["submission"]["submission_id"],
        &rejected["submission"]["submission_id"],
    ] {
        let id = id.as_str().unwrap();
        for path in [
            format!("/v1/submissions/{id}"),
            "/v1/submissions?period=2023H2&region=152201".to_string(),
        ] {
            let (_, json) = server.get(&path).await;
            let text = json.to_string();
            assert!(!holds_any(&text, &needles, &lengths), "{path}");
        }
    }
}

#[test]
fn the_command_line_logs_no_id_number() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap();
    let jiazheng = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_jiazheng"))
            .args(args)
            .env("RUST_LOG", "debug")
            .env(
                "JIAZHENG_ID_HMAC_KEY",
                "a-test-key-that-is-long-enough-for-hmac",
            )
            .output()
            .unwrap()
    };
    let regions = repo("sample-data/regions-inner-mongolia");
    assert!(
        jiazheng(&[
            "regions",
            "import",
            "--lake",
            lake,
            regions.to_str().unwrap()
        ])
        .status
        .success()
    );
    let file = repo("tests/fixtures/bad/workers-duplicate-id.csv");
    let out = jiazheng(&[
        "submit",
        "--lake",
        lake,
        "--dataset",
        "workers",
        "--period",
        "2023H2",
        "--region",
        "152201",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let raw = std::fs::read_to_string(&file).unwrap();
    let ids: Vec<&str> = raw
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .collect();
    assert!(!ids.is_empty());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("duplicate_key"));
    for id in ids {
        assert!(!said.contains(id), "the output shows {id}");
    }
}
