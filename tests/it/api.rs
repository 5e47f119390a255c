//! The open-data API over HTTP: keys and their scope, caching, formats, errors, limits.

use crate::support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use jiazheng_core::keys::{self, Role};
use jiazheng_core::lake::names;
use support::{Server, one, repo};

async fn state_of_lake(server: &Server) -> (usize, Vec<Option<u64>>) {
    let store = server.lake.store();
    let uploads = futures::TryStreamExt::try_collect::<Vec<_>>(store.list(Some(&"uploads".into())))
        .await
        .unwrap()
        .len();
    let mut versions = Vec::new();
    for d in jiazheng_core::datasets::ALL {
        versions.push(server.table_version(&names::dataset(d.name)).await);
    }
    versions.push(server.table_version(names::SUBMISSIONS).await);
    (uploads, versions)
}

#[tokio::test]
async fn keys_decide_who_may_write_where() {
    let server = Server::with_regions().await;
    let tree = server.tree().await;
    let issue = |code: &'static str, role| {
        let lake = server.lake.clone();
        let region = tree.get(code).unwrap().clone();
        async move { keys::issue(&lake, &region, role).await.unwrap().0 }
    };
    let county = issue("152201", Role::Submitter).await;
    let league = issue("1522", Role::Submitter).await;
    let analyst = issue("15", Role::Analyst).await;
    let mut forged = county.clone();
    forged.replace_range(forged.len() - 4.., "0000");

    let file = std::fs::read(repo("sample-data/submissions/2023H2/152201/outlets.csv")).unwrap();
    let enterprises = std::fs::read(repo(
        "sample-data/submissions/2023H2/152201/enterprises.xlsx",
    ))
    .unwrap();
    // (token, region the file is sent for, expected status)
    let cases: Vec<(Option<&str>, &str, StatusCode)> = vec![
        (None, "152201", StatusCode::UNAUTHORIZED),
        (Some("not-a-key"), "152201", StatusCode::UNAUTHORIZED),
        (Some(&forged), "152201", StatusCode::UNAUTHORIZED),
        (Some(&analyst), "152201", StatusCode::FORBIDDEN),
        (Some(&county), "152202", StatusCode::FORBIDDEN),
        (Some(&county), "152200", StatusCode::FORBIDDEN),
        (Some(&county), "150000", StatusCode::FORBIDDEN),
        (Some(&league), "150000", StatusCode::FORBIDDEN),
        (Some(&league), "150100", StatusCode::FORBIDDEN),
        // A street does not submit files: refused by meaning, before the body is read.
        (Some(&county), "152201001", StatusCode::UNPROCESSABLE_ENTITY),
    ];
    let before = state_of_lake(&server).await;
    for dataset in ["outlets", "enterprises"] {
        let body = if dataset == "outlets" {
            &file
        } else {
            &enterprises
        };
        for (token, region, want) in &cases {
            let (status, json) = server
                .put_as(
                    *token,
                    &format!("/v1/submissions/{dataset}/2023H2/{region}"),
                    body.clone(),
                )
                .await;
            assert_eq!(status, *want, "{dataset} {token:?} → {region}: {json}");
            assert_eq!(json["status"], want.as_u16());
            assert!(json["type"].as_str().unwrap().starts_with("/problems/"));
        }
    }
    // Asking for an upload URL follows the same rules; a lake on disk then answers 409.
    let ask = |token: Option<&str>, region: &str| {
        let mut request =
            Request::post("/v1/submissions").header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = serde_json::json!({
            "dataset": "outlets", "period": "2023H2", "region": region, "file_name": "outlets.csv",
            "size_bytes": 100
        });
        request.body(Body::from(body.to_string())).unwrap()
    };
    for (token, region, want) in
        cases
            .iter()
            .chain([&(Some(county.as_str()), "152201", StatusCode::CONFLICT)])
    {
        let (status, _, body) = server.raw(ask(*token, region)).await;
        assert_eq!(
            status,
            *want,
            "POST {token:?} → {region}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    assert_eq!(
        state_of_lake(&server).await,
        before,
        "a refused request wrote something"
    );

    // Within their regions, keys work: the county for itself, the league for a county.
    let (status, _) = server
        .put_as(
            Some(&county),
            "/v1/submissions/enterprises/2023H2/152201",
            enterprises.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = server
        .put_as(
            Some(&league),
            "/v1/submissions/outlets/2023H2/152201",
            file.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // SQL: analysts only.
    let sql = |token: Option<&str>| {
        let mut request = Request::post("/v1/sql").header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        request
            .body(Body::from(
                r#"{"sql": "SELECT count(*) AS n FROM outlets"}"#,
            ))
            .unwrap()
    };
    assert_eq!(server.raw(sql(None)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        server.raw(sql(Some(&county))).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, _, body) = server.raw(sql(Some(&analyst))).await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["rows"][0]["n"], 59);
}

#[tokio::test]
async fn etags_answer_304_until_a_new_submission_lands() {
    let server = Server::with_samples().await;
    let url = "/v1/indicators/outlet_coverage?period=2023H2&region=152200&level=county";
    let (status, headers, _) = server
        .raw(Request::get(url).body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    let etag = headers[header::ETAG].to_str().unwrap().to_string();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong: {etag}"
    );
    assert!(
        headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("public")
    );
    assert!(headers.contains_key("x-request-id"));
    let conditional = || {
        Request::get(url)
            .header(header::IF_NONE_MATCH, &etag)
            .body(Body::empty())
            .unwrap()
    };
    let (status, headers, body) = server.raw(conditional()).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(headers[header::ETAG], etag.as_str());
    // CSV of the same URL is another representation, with another ETag.
    let (_, csv_headers, _) = server
        .raw(
            Request::get(format!("{url}&format=csv"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_ne!(csv_headers[header::ETAG], etag.as_str());

    // A new file for 阿尔山市 changes the snapshot: the old ETag no longer matches.
    let tree = server.tree().await;
    let county = tree.get("152202").unwrap();
    let period = "2023H2".parse().unwrap();
    let enterprises = jiazheng_core::samples::synth::enterprises(county, period, "sample");
    let outlets =
        jiazheng_core::samples::synth::outlets(&tree, county, period, &enterprises, "etag");
    let (status, _) = server.send_sheet(&outlets, "2023H2", "152202").await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, headers, _) = server.raw(conditional()).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(headers[header::ETAG], etag.as_str());

    // Private answers are never cached.
    let (_, headers, _) = server
        .raw(Request::get("/v1/submissions").body(Body::empty()).unwrap())
        .await;
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
}

/// The published snapshot is read once per table version and answered from memory: with its
/// data files moved away, the same reads still answer; after a new commit they are read again.
#[tokio::test]
async fn indicator_reads_come_from_memory_until_a_commit_lands() {
    let server = Server::with_samples().await;
    let urls = [
        "/v1/indicators/outlet_coverage?period=2023H2&region=152200&level=county",
        "/v1/values?period=2023H2&region=152200&level=county",
        "/v1/periods",
    ];
    let mut before = Vec::new();
    for url in urls {
        let (status, json) = server.get(url).await;
        assert_eq!(status, StatusCode::OK, "{url}: {json}");
        before.push(json);
    }
    let published = server.dir.path().join("published/indicator_values");
    let aside = server.dir.path().join("aside");
    let partitions = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("period=")
            })
            .collect()
    };
    std::fs::create_dir(&aside).unwrap();
    let moved = partitions(&published);
    assert!(!moved.is_empty());
    for dir in &moved {
        std::fs::rename(dir, aside.join(dir.file_name().unwrap())).unwrap();
    }
    for (url, expected) in urls.iter().zip(&before) {
        let (status, json) = server.get(url).await;
        assert_eq!(status, StatusCode::OK, "{url} read a data file: {json}");
        assert_eq!(&json, expected, "{url}");
    }
    for dir in partitions(&aside) {
        std::fs::rename(&dir, published.join(dir.file_name().unwrap())).unwrap();
    }

    // A new file for 阿尔山市 commits a new snapshot version, which the next read loads.
    let tree = server.tree().await;
    let county = tree.get("152202").unwrap();
    let period = "2023H2".parse().unwrap();
    let enterprises = jiazheng_core::samples::synth::enterprises(county, period, "sample");
    let mut outlets =
        jiazheng_core::samples::synth::outlets(&tree, county, period, &enterprises, "memory");
    outlets.rows.truncate(3);
    let (status, json) = server.send_sheet(&outlets, "2023H2", "152202").await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    let (_, after) = server.get(urls[0]).await;
    assert_ne!(after["snapshot_version"], before[0]["snapshot_version"]);
    let (_, outlets) = server
        .get("/v1/indicators/outlets?period=2023H2&region=152202")
        .await;
    assert_eq!(one(&outlets, "152202")["value"], 3.0);
}

#[tokio::test]
async fn every_failure_is_a_problem_with_a_stable_type() {
    let server = Server::with_samples().await;
    for (url, status, kind) in [
        (
            "/v1/regions/999999",
            StatusCode::NOT_FOUND,
            "unknown-region",
        ),
        (
            "/v1/indicators/nope",
            StatusCode::NOT_FOUND,
            "unknown-indicator",
        ),
        (
            "/v1/indicators/outlets?period=2023H9",
            StatusCode::BAD_REQUEST,
            "bad-period",
        ),
        (
            "/v1/indicators/outlets?level=planet",
            StatusCode::BAD_REQUEST,
            "bad-level",
        ),
        (
            "/v1/indicators/outlets?format=xls",
            StatusCode::BAD_REQUEST,
            "bad-format",
        ),
        ("/v1/no/such/route", StatusCode::NOT_FOUND, "not-found"),
        (
            "/v1/datasets/outlets?limit=abc",
            StatusCode::BAD_REQUEST,
            "bad-query",
        ),
    ] {
        let (got, headers, body) = server
            .raw(Request::get(url).body(Body::empty()).unwrap())
            .await;
        assert_eq!(got, status, "{url}");
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "application/problem+json",
            "{url}"
        );
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["type"], format!("/problems/{kind}"), "{url}");
        // The type resolves to a page saying what it means.
        let (status, _, page) = server
            .raw(
                Request::get(json["type"].as_str().unwrap())
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{kind}");
        let page = String::from_utf8(page).unwrap();
        assert!(
            page.contains("id=\"meaning\"") && page.contains(kind),
            "{kind}"
        );
    }
    // A body over the limit: 413 before anything is stored.
    let small = jiazheng_web::router(
        jiazheng_web::AppState::new(jiazheng_core::ingest::Ingestor::new(
            server.lake.clone(),
            None,
        ))
        .with_upload_limit(1024),
    );
    let request = Request::put("/v1/submissions/outlets/2023H2/152201")
        .header(header::AUTHORIZATION, format!("Bearer {}", server.token))
        .body(Body::from(vec![b'a'; 4096]))
        .unwrap();
    let response = tower::ServiceExt::oneshot(small, request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // CORS preflight from a browser page elsewhere.
    let (status, headers, _) = server
        .raw(
            Request::options("/v1/indicators")
                .header(header::ORIGIN, "https://example.org")
                .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(status.is_success());
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
}

#[tokio::test]
async fn sql_refuses_writes_files_and_runaways_and_the_server_stays_up() {
    let server = Server::with_samples().await;
    let tree = server.tree().await;
    let analyst = keys::issue(&server.lake, tree.get("15").unwrap(), Role::Analyst)
        .await
        .unwrap()
        .0;
    let sql = |query: &str| {
        Request::post("/v1/sql")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {analyst}"))
            .body(Body::from(serde_json::json!({ "sql": query }).to_string()))
            .unwrap()
    };
    let values = |alias: &str| {
        let rows: Vec<String> = (1..=100).map(|i| format!("({i})")).collect();
        format!("(VALUES {}) {alias}", rows.join(","))
    };
    let cross_join = format!(
        "SELECT sum(a.column1 * b.column1 + c.column1 * d.column1) FROM {}",
        ["a", "b", "c", "d", "e"].map(values).join(", ")
    );
    for (query, kind) in [
        ("DELETE FROM outlets", "refused-query"),
        ("DROP TABLE outlets", "refused-query"),
        (
            "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
            "refused-query",
        ),
        ("COPY outlets TO '/tmp/out.csv'", "refused-query"),
        ("SELECT * FROM '/etc/passwd'", "refused-query"),
        ("SELECT * FROM workers", "refused-query"),
        ("SELECT 1; SELECT 2", "refused-query"),
        // Table functions are not in the session at all (they build rows without bound).
        (
            "SELECT sum(a.value * b.value + c.value) FROM generate_series(1, 5000) a CROSS JOIN generate_series(1, 5000) b CROSS JOIN generate_series(1, 5000) c",
            "refused-query",
        ),
        (cross_join.as_str(), "query-limit"),
        (
            "SELECT o1.outlet_id FROM outlets o1 CROSS JOIN outlets o2 CROSS JOIN outlets o3 CROSS JOIN outlets o4 ORDER BY 1",
            "query-limit",
        ),
    ] {
        let started = std::time::Instant::now();
        let (got, _, body) = server.raw(sql(query)).await;
        assert_eq!(
            got,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {}",
            String::from_utf8_lossy(&body)
        );
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["type"], format!("/problems/{kind}"), "{query}");
        assert!(
            started.elapsed().as_secs() < 30,
            "{query} took {:?}",
            started.elapsed()
        );
    }
    // A normal query still runs, capped.
    let (status, _, body) = server
        .raw(sql("SELECT region, value FROM indicator_values WHERE indicator = 'outlet_coverage' AND level = 'county' AND period = '2023H2' ORDER BY region"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(json["rows"].as_array().unwrap().len() >= 6);
    let (status, _) = server.get("/v1/health").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn public_reads_are_rate_limited_per_client() {
    let server = Server::with_regions().await;
    let limited = jiazheng_web::router(
        jiazheng_web::AppState::new(jiazheng_core::ingest::Ingestor::new(
            server.lake.clone(),
            None,
        ))
        .with_rate_limit(jiazheng_web::RateLimit::new(1, 3)),
    );
    let from =
        |ip: [u8; 4]| {
            let mut request = Request::get("/v1/indicators").body(Body::empty()).unwrap();
            request.extensions_mut().insert(axum::extract::ConnectInfo(
                std::net::SocketAddr::from((ip, 40000)),
            ));
            request
        };
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = tower::ServiceExt::oneshot(limited.clone(), from([10, 0, 0, 1]))
            .await
            .unwrap();
        statuses.push(response.status());
    }
    assert_eq!(&statuses[..3], &[StatusCode::OK; 3]);
    assert_eq!(statuses[4], StatusCode::TOO_MANY_REQUESTS);
    let other = tower::ServiceExt::oneshot(limited, from([10, 0, 0, 2]))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
}
