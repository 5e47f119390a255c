//! Open data as portals and data people take it: the DCAT catalogue (`/v1/catalog`) parsed by
//! rdflib, every open dataset and the indicator values present with their titles, licence,
//! publisher and coverage, and every distribution it names answering 200; and the release
//! package of a period validated by `frictionless` and read by DuckDB (both pinned in
//! scripts/requirements.txt).

use std::process::Command;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use jiazheng_core::datasets::{self, Openness};

use crate::support::{Server, repo, tool};

const HOST: &str = "data.jiazheng.test";

/// 兴安盟's enterprises and outlets, and 乌兰浩特市's shops and trainings: every open dataset
/// has rows.
async fn open_data() -> Server {
    let server = Server::with_samples().await;
    for dataset in ["shops", "trainings"] {
        let dir = repo("sample-data/submissions/2023H2/152201");
        let file = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_stem().is_some_and(|s| s == dataset))
            .unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let (status, json) = server
            .put(
                &format!("/v1/submissions/{dataset}/2023H2/152201?file_name={name}"),
                std::fs::read(&file).unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
    }
    server
}

#[tokio::test]
async fn a_portal_harvests_every_open_dataset_with_working_distributions() {
    let server = open_data().await;
    let (status, headers, body) = server
        .raw(
            Request::get("/v1/catalog")
                .header(header::HOST, HOST)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/ld+json");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog.jsonld");
    std::fs::write(&file, &body).unwrap();

    let mut expected: Vec<&str> = datasets::ALL
        .iter()
        .filter(|d| d.openness == Openness::Records)
        .map(|d| d.name)
        .collect();
    expected.push("indicator_values");
    let output = Command::new(tool("python", "rdflib"))
        .arg(repo("tests/catalog/check_catalog.py"))
        .arg(&file)
        .arg(expected.join(","))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.ends_with("catalog ok\n"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let urls: Vec<&str> = stdout.lines().filter(|l| l.starts_with("http")).collect();
    assert!(urls.len() >= 3 * expected.len(), "{urls:?}");
    for url in urls {
        let path = url
            .strip_prefix(&format!("http://{HOST}"))
            .unwrap_or_else(|| panic!("{url} is not on {HOST}"));
        let (status, _, _) = server
            .raw(Request::get(path).body(Body::empty()).unwrap())
            .await;
        assert_eq!(status, StatusCode::OK, "{url}");
    }
}

#[tokio::test]
async fn the_release_package_validates_and_duckdb_reads_its_parquet() {
    let server = open_data().await;
    let (status, headers, body) = server
        .raw(
            Request::get("/v1/packages/2023H2.zip")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers[header::CONTENT_TYPE], "application/zip");
    // A stable URL with an ETag: asked again unchanged, 304.
    let etag = headers[header::ETAG].clone();
    let (status, _, _) = server
        .raw(
            Request::get("/v1/packages/2023H2.zip")
                .header(header::IF_NONE_MATCH, etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jiazheng-2023H2.zip");
    std::fs::write(&file, &body).unwrap();
    let output = Command::new(tool("python", "frictionless and duckdb"))
        .arg(repo("tests/catalog/check_package.py"))
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.ends_with("package ok\n"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Every open dataset and the values, as CSV and Parquet, and the regions.
    let resources = stdout
        .lines()
        .filter(|l| l.contains("types as declared"))
        .count();
    let open = datasets::ALL
        .iter()
        .filter(|d| d.openness == Openness::Records)
        .count();
    assert_eq!(resources, open + 2, "{stdout}");
    let (status, _) = server.get("/v1/packages/2019H1.zip").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    println!("{stdout}");
}
