//! Open data as portals and data people take it: the DCAT catalogue (`/v1/catalog`) parsed by
//! rdflib, every open dataset and the indicator values present with their titles, licence,
//! publisher and coverage, and every distribution it names answering 200; and the release
//! package of a period validated by `frictionless` and read by DuckDB; and the indicator values
//! as SDMX-CSV read by pysdmx with their SDMX-ML structure (all pinned in
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

/// Must-show 2 of #17: the package of each sample period (every file of `sample-data`: both
/// half-years, all six offices) passes `frictionless validate`, and DuckDB reads its Parquet
/// with the declared types. The zip is streamed (no length known up front).
#[tokio::test]
async fn every_periods_package_validates_and_duckdb_reads_its_parquet() {
    let server = Server::with_regions().await;
    jiazheng_core::samples::submit_all(&server.bulk_ingestor(), &repo("sample-data/submissions"))
        .await
        .unwrap();
    let (_, periods) = server.get("/v1/periods").await;
    let periods: Vec<String> = periods["periods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["period"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(periods, ["2023H1", "2023H2"]);
    let open = datasets::ALL
        .iter()
        .filter(|d| d.openness == Openness::Records)
        .count();
    for period in periods {
        let path = format!("/v1/packages/{period}.zip");
        let (status, headers, body) = server
            .raw(Request::get(&path).body(Body::empty()).unwrap())
            .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert_eq!(headers[header::CONTENT_TYPE], "application/zip");
        assert!(
            !headers.contains_key(header::CONTENT_LENGTH),
            "streamed, not assembled first"
        );
        // Compressed on the way (as browsers and schemathesis ask), the same bytes arrive whole.
        let (status, headers_gz, gzipped) = server
            .raw(
                Request::get(&path)
                    .header(header::ACCEPT_ENCODING, "gzip")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers_gz[header::CONTENT_ENCODING], "gzip");
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(gzipped.as_slice()),
            &mut unzipped,
        )
        .unwrap();
        assert!(unzipped == body, "{period}: the compressed package differs");
        // A stable URL with an ETag: asked again unchanged, 304.
        let etag = headers[header::ETAG].clone();
        let (status, _, _) = server
            .raw(
                Request::get(&path)
                    .header(header::IF_NONE_MATCH, etag)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(format!("jiazheng-{period}.zip"));
        std::fs::write(&file, &body).unwrap();
        let output = Command::new(tool("python", "frictionless and duckdb"))
            .arg(repo("tests/catalog/check_package.py"))
            .arg(&file)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.ends_with("package ok\n"),
            "{period}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Every open dataset and the values, as CSV and Parquet, and the regions.
        let resources = stdout
            .lines()
            .filter(|l| l.contains("types as declared"))
            .count();
        assert_eq!(resources, open + 2, "{period}: {stdout}");
        println!("{period}:\n{stdout}");
    }
    let (status, _) = server.get("/v1/packages/2019H1.zip").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Must-show 3 of #17: pysdmx reads the SDMX-CSV with the structure message (validated against
/// the SDMX-ML 3.0 schemas) and every observation equals `/v1/values` for the same query: the
/// counties of 兴安盟 (reported, partly and not reported), and every indicator of the country.
#[tokio::test]
async fn statistical_tools_read_the_sdmx_values_equal_to_the_api() {
    let server = open_data().await;
    let (status, structure_headers, structure) = server
        .raw(
            Request::get("/v1/sdmx/structure")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        structure_headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/vnd.sdmx.structure+xml")
    );
    let dir = tempfile::tempdir().unwrap();
    let structure_file = dir.path().join("structure.xml");
    std::fs::write(&structure_file, &structure).unwrap();
    for query in [
        "region=152200&level=county",
        "level=country",
        "level=province",
    ] {
        let (status, headers, csv) = server
            .raw(
                Request::get(format!("/v1/values?{query}&format=sdmx-csv"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/vnd.sdmx.data+csv")
        );
        // Asked by `Accept` instead of `format=`: the same bytes.
        let (_, _, accepted) = server
            .raw(
                Request::get(format!("/v1/values?{query}"))
                    .header(
                        header::ACCEPT,
                        "application/vnd.sdmx.data+csv; version=2.0.0",
                    )
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(accepted, csv, "{query}");
        let (_, _, json) = server
            .raw(
                Request::get(format!("/v1/values?{query}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        let csv_file = dir.path().join("values.csv");
        let json_file = dir.path().join("values.json");
        std::fs::write(&csv_file, &csv).unwrap();
        std::fs::write(&json_file, &json).unwrap();
        let output = Command::new(tool("python", "pysdmx"))
            .arg(repo("tests/catalog/check_sdmx.py"))
            .args([&structure_file, &csv_file, &json_file])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.ends_with("sdmx ok\n"),
            "{query}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        println!("{query}: {stdout}");
    }
    // The structure is the regions' and the declarations': unchanged, 304.
    let etag = structure_headers[header::ETAG].clone();
    let (status, _, _) = server
        .raw(
            Request::get("/v1/sdmx/structure")
                .header(header::IF_NONE_MATCH, etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
}
