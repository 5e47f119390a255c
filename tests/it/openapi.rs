//! The OpenAPI document: generated from the code, exact, and held to account by schemathesis
//! against the real `jiazheng serve`.

use crate::support;

use std::process::Command;

use axum::http::StatusCode;
use jiazheng_core::datasets::{self, Openness};
use support::{Server, repo};

#[tokio::test]
async fn the_document_is_openapi_3_1_and_names_every_route_and_problem() {
    let server = Server::with_regions().await;
    let (status, doc) = server.get("/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/v1/health",
        "/v1/regions",
        "/v1/regions/{code}",
        "/v1/periods",
        "/v1/indicators",
        "/v1/indicators/{id}",
        "/v1/values",
        "/v1/datasets",
        "/v1/reports/status",
        "/v1/sql",
        "/v1/submissions",
        "/v1/submissions/{id}",
        "/v1/submissions/{id}/{file}",
        "/v1/submissions/{dataset}/{period}/{region}",
        "/v1/templates/{file}",
    ] {
        assert!(paths.contains_key(path), "{path} is missing");
    }
    // One path per open dataset with its own fields; none for personal or aggregate-only data.
    for dataset in datasets::ALL {
        let page = format!("/v1/datasets/{}", dataset.name);
        assert_eq!(
            paths.contains_key(&page),
            dataset.openness == Openness::Records,
            "{page}"
        );
    }
    assert!(
        !paths
            .keys()
            .any(|p| p.contains("{dataset}") && p.starts_with("/v1/datasets"))
    );
    let outlets = &paths["/v1/datasets/outlets"]["get"]["parameters"];
    let mode = outlets
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "mode")
        .expect("outlets can be filtered by mode");
    assert!(mode["schema"]["enum"].as_array().unwrap().len() >= 2);
    // Writes document their keys and limits; every operation its problems.
    let upload = &paths["/v1/submissions/{dataset}/{period}/{region}"]["put"];
    for status in ["201", "401", "403", "413", "422"] {
        assert!(
            upload["responses"][status].is_object(),
            "PUT lacks {status}"
        );
    }
    assert!(upload["security"].is_array());
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            for status in ["400", "404", "429", "500"] {
                let problem = &op["responses"][status]["content"]["application/problem+json"];
                assert!(problem.is_object(), "{method} {path} lacks {status}");
            }
        }
    }
    let asked = &doc["components"]["schemas"]["UploadRequest"]["properties"]["period"];
    assert!(asked["pattern"].is_string(), "{asked}");
    let bulk = &paths["/v1/datasets/outlets/{file}"]["get"]["parameters"][0]["schema"];
    // Exactly the reporting periods: the policy's first half-year to the current one.
    let periods: Vec<String> = jiazheng_core::periods::Period::reportable()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(periods.first().map(String::as_str), Some("2022H2"));
    assert_eq!(
        bulk["pattern"],
        format!("^({})\\.(json|csv|parquet)$", periods.join("|"))
    );
    let formats = &paths["/v1/indicators/{id}"]["get"]["responses"]["200"]["content"];
    for media in [
        "application/json",
        "text/csv",
        "application/vnd.apache.parquet",
    ] {
        assert!(formats[media].is_object(), "{media}");
    }

    // Where a client starts: every operation of the document, and the documents themselves.
    let operations: usize = paths
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    for start in ["/v1/", "/v1"] {
        let (status, index) = server.get(start).await;
        assert_eq!(status, StatusCode::OK, "{start}");
        let endpoints = index["endpoints"].as_array().unwrap();
        assert_eq!(endpoints.len(), operations, "{index}");
        assert!(endpoints.iter().any(|e| e["path"] == "/v1/catalog"));
        assert_eq!(index["documentation"], "/v1/docs");
    }

    // The page people read: every operation, small and self-contained.
    let page = server.get_bytes("/v1/docs").await;
    assert!(page.len() < 100 * 1024, "{} bytes", page.len());
    let page = String::from_utf8(page).unwrap();
    for path in paths.keys() {
        assert!(page.contains(path.as_str()), "{path} is not on the page");
    }
    // Nothing fetched from elsewhere: the network may be closed.
    assert!(!page.contains("<script") && !page.contains("<link"));
    // Markdown is rendered, not shown: no backtick is left in the text.
    assert!(!page.contains('`'), "a backtick on the page");
    assert!(page.contains("<code>limits</code>"), "a code span rendered");
    // Request bodies are spelled out, the SQL views listed, and the page links home.
    let sql = &page[page.find("<h2><code>POST /v1/sql</code></h2>").unwrap()..];
    let sql = &sql[..sql.find("</section>").unwrap()];
    assert!(
        sql.contains("Request body") && sql.contains("<code>sql</code>"),
        "{sql}"
    );
    let views = &page[page.find("id=\"sql-views\"").unwrap()..];
    for view in jiazheng_core::sql::views().iter().map(|(v, _)| v) {
        assert!(views.contains(&format!("<code>{view}</code>")), "{view}");
    }
    assert!(page.contains("href=\"/\""));
}

/// Runs schemathesis (pinned in scripts/requirements.txt) against the real server with
/// every check: no 5xx, every status, type and body as documented, invalid input refused,
/// valid input accepted, auth not ignored.
#[test]
fn schemathesis_finds_no_server_error_and_no_mismatch() {
    let schemathesis = support::tool("schemathesis", "schemathesis");
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let (server, addr) = support::serve(support::jiazheng(), lake.to_str().unwrap());
    let base = format!("http://{addr}");
    let key = |region: &str, role: &str| {
        support::issue_key(support::jiazheng(), lake.to_str().unwrap(), region, role)
    };
    let analyst = key("15", "analyst");
    let submitter = key("1522", "submitter");
    let report = dir.path().join("schemathesis");
    let stdout = support::run_against(
        server,
        Command::new(&schemathesis)
            .arg("--config-file")
            .arg(repo("tests/schemathesis.toml"))
            .args(["run", &format!("{base}/v1/openapi.json")])
            .args(["--checks", "all", "--max-examples", "25", "--seed", "1"])
            // One worker: hypothesis is not thread-safe in the coverage phase (an internal
            // "AST constructor recursion depth mismatch" error with two).
            .args(["--workers", "1", "--rate-limit", "40/s", "--no-color"])
            .arg("--report-dir")
            .arg(&report)
            // Its example database stays in the temporary directory, not in the checkout.
            .current_dir(dir.path())
            .env("JZ_ANALYST", analyst)
            .env("JZ_SUBMITTER", submitter),
        "schemathesis",
    );
    let operations: usize = jiazheng_web::document()
        .paths
        .paths
        .values()
        .map(|item| {
            [&item.get, &item.put, &item.post]
                .into_iter()
                .flatten()
                .count()
        })
        .sum();
    assert!(
        stdout.contains(&format!("Tested: {operations}")),
        "{stdout}"
    );
    assert!(stdout.contains(" passed"), "{stdout}");
}
