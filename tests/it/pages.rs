//! The web pages: in-process checks of what they say and who may post, and the browser test
//! (tests/browser/pages.py) that drives Debian's headless Chromium through them against the
//! real `jiazheng serve`, with axe-core in the same browser.

use crate::support;

use std::process::Command;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use jiazheng_core::keys::{self, Role};
use jiazheng_core::lake::names;
use support::{Server, repo};

/// Pages must stay small enough for a slow county connection.
const PAGE_LIMIT: usize = 100 * 1024;

fn assert_html(headers: &axum::http::HeaderMap, path: &str) {
    let content_type = headers[header::CONTENT_TYPE].to_str().unwrap();
    assert!(
        content_type.starts_with("text/html"),
        "{path}: {content_type}"
    );
}

/// A page that must answer 200 with HTML, its timing, under the size limit.
async fn page(server: &Server, path: &str) -> String {
    let (status, headers, body) = server
        .raw(Request::get(path).body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{path}");
    assert_html(&headers, path);
    assert!(headers.contains_key("server-timing"), "{path}");
    assert!(body.len() < PAGE_LIMIT, "{path} is {} bytes", body.len());
    String::from_utf8(body).unwrap()
}

/// Every link of a page into the API (`/v1/…`), unescaped.
fn api_links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| href.starts_with("/v1/") && *href != "/v1/docs")
        .map(|href| href.replace("&amp;", "&"))
        .collect()
}

/// The text of one table row of the dashboard's indicator table.
fn indicator_row<'p>(html: &'p str, id: &str) -> &'p str {
    let start = html
        .find(&format!("id=\"value-{id}\""))
        .unwrap_or_else(|| panic!("no row for {id}"));
    let end = start + html[start..].find("</tr>").unwrap();
    &html[start..end]
}

#[tokio::test]
async fn every_page_is_html_in_both_languages_and_small() {
    const LICENCE: &str = "https://creativecommons.org/licenses/by/4.0/";
    let server = Server::with_samples().await;
    for (path, heading) in [
        ("/", "全国"),
        ("/?region=150000", "内蒙古自治区"),
        ("/?region=152200&period=2023H2", "兴安盟"),
        ("/?region=152201&period=2023H2", "乌兰浩特市"),
        ("/?region=152201001&period=2023H2", "爱国街道"),
        ("/status?region=152200&period=2023H2", "兴安盟"),
        ("/submit", "登录报送"),
        ("/datasets", "开放数据"),
        (
            "/datasets/outlets?region=152200&period=2023H2",
            "社区家政服务网点",
        ),
        ("/regions?q=兴安", "查找地区"),
    ] {
        let zh = page(&server, path).await;
        assert!(zh.contains("<html lang=\"zh-CN\">"), "{path}");
        let h1 = &zh[zh.find("<h1>").unwrap()..zh.find("</h1>").unwrap()];
        assert!(h1.contains(heading), "{path}: {h1}");
        let sep = if path.contains('?') { '&' } else { '?' };
        let en = page(&server, &format!("{path}{sep}lang=en")).await;
        assert!(en.contains("<html lang=\"en\">"), "{path}");
        // Links stay in English.
        assert!(en.contains("lang=en"), "{path}");
        // Every page says who publishes the data, under which licence, since when, and
        // where the catalogue is.
        for (html, publisher, updated) in [
            (&zh, "发布者：", "数据更新于"),
            (&en, "Published by", "Last updated"),
        ] {
            let footer = &html[html
                .find("id=\"about-data\"")
                .unwrap_or_else(|| panic!("{path}"))..];
            assert!(
                footer.contains(publisher) && footer.contains(updated),
                "{path}: {footer}"
            );
            assert!(
                footer.contains(&format!("href=\"{LICENCE}\" rel=\"license\">CC BY 4.0")),
                "{path}"
            );
            assert!(footer.contains("<time datetime=\"20"), "{path}: {footer}");
            assert!(footer.contains("href=\"/v1/catalog\""), "{path}");
        }
    }
    // Nothing on the public pages asks another host for anything (the licence is a link).
    let home = page(&server, "/?region=152200&period=2023H2").await;
    let home = home.replace(&format!("href=\"{LICENCE}\""), "");
    assert!(!home.contains("src=\"http") && !home.contains("href=\"http"));
}

#[tokio::test]
async fn the_dashboard_shows_the_published_values_and_sorts_the_areas() {
    let server = Server::with_samples().await;
    let html = page(&server, "/?region=152200&period=2023H2").await;
    let (_, values) = server
        .get("/v1/values?region=152200&period=2023H2&level=county&indicator=outlet_coverage")
        .await;
    let (_, own) = server
        .get("/v1/values?region=152200&period=2023H2&indicator=outlets")
        .await;
    let outlets = own["data"][0]["value"].as_f64().unwrap();
    assert!(
        indicator_row(&html, "outlets").contains(&format!(">{outlets}<")),
        "{}",
        indicator_row(&html, "outlets")
    );
    // Counties by coverage, highest first, as the API has them.
    let mut counties: Vec<(String, f64)> = values["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                v["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert!(counties.len() >= 4);
    counties.sort_by(|a, b| b.1.total_cmp(&a.1));
    let sorted = page(
        &server,
        "/?region=152200&period=2023H2&sort=outlet_coverage&order=desc",
    )
    .await;
    let table = &sorted[sorted.find("id=\"children\"").unwrap()..];
    let positions: Vec<usize> = counties
        .iter()
        .map(|(name, _)| table.find(&format!(">{name}</a></th>")).unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "{counties:?} {positions:?}"
    );
    assert!(table.contains("aria-sort=\"descending\""));
    // Each county's coverage is in its row, as the API gives it.
    for (name, value) in &counties {
        let row = &table[table.find(&format!(">{name}</a></th>")).unwrap()..];
        let row = &row[..row.find("</tr>").unwrap()];
        assert!(row.contains(&format!("{value:.1}%")), "{name}: {row}");
    }
    // A period with nothing published yet reads as such, and the picker still shows it.
    let empty = page(&server, "/?region=152200&period=2025H1").await;
    assert!(empty.contains("<option value=\"2025H1\" selected>"));
    assert!(indicator_row(&empty, "outlets").contains(">—<"));
    // Every link to the data answers, in the format it names.
    let links = api_links(&html);
    assert!(links.len() > 60, "{}", links.len());
    for link in &links {
        let (status, headers, _) = server
            .raw(Request::get(link.as_str()).body(Body::empty()).unwrap())
            .await;
        assert_eq!(status, StatusCode::OK, "{link}");
        let content_type = headers[header::CONTENT_TYPE].to_str().unwrap();
        for (format, expected) in [
            ("format=csv", "text/csv"),
            ("format=parquet", "application/vnd.apache.parquet"),
            ("format=json", "application/json"),
        ] {
            if link.contains(format) {
                assert!(content_type.starts_with(expected), "{link}: {content_type}");
            }
        }
    }
    // The coverage chart has the target line and one bar per county with a value.
    let chart = &html[html.find("<svg").unwrap()..html.find("</svg>").unwrap()];
    assert_eq!(chart.matches("<rect").count(), counties.len());
    assert!(chart.contains("class=\"ref\""));
}

/// A multipart form as a browser sends it.
fn form(fields: &[(&str, &str)], file: (&str, &[u8])) -> (String, Vec<u8>) {
    let boundary = "----jiazhengboundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: text/csv\r\n\r\n",
            file.0
        )
        .as_bytes(),
    );
    body.extend_from_slice(file.1);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_file(
    server: &Server,
    cookie: Option<&str>,
    origin: Option<&str>,
    fields: &[(&str, &str)],
    file: (&str, &[u8]),
) -> (StatusCode, axum::http::HeaderMap, String) {
    let (content_type, body) = form(fields, file);
    let mut request = Request::post("/submit/upload")
        .header(header::CONTENT_TYPE, content_type)
        .header(header::HOST, "jiazheng.test");
    if let Some(token) = cookie {
        let session = server.session(token).await;
        request = request.header(header::COOKIE, format!("theme=dark; {session}"));
    }
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    let (status, headers, body) = server.raw(request.body(Body::from(body)).unwrap()).await;
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn signing_in_sets_a_private_cookie_and_a_wrong_key_is_refused() {
    let server = Server::with_regions().await;
    let sign_in = |key: String| {
        Request::post("/submit/sign-in")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("x-forwarded-proto", "https")
            .body(Body::from(format!("key={key}")))
            .unwrap()
    };
    let (status, _, body) = server.raw(sign_in("jz_nothing_here".into())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8(body).unwrap().contains("密钥无效"));
    let (status, headers, _) = server.raw(sign_in(server.token.clone())).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/submit",
        "Secure",
        "jz_session=js_",
    ] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }
    // The cookie holds a session reference, never the key.
    let secret = server.token.rsplit('_').next().unwrap();
    assert!(!cookie.contains(secret), "{cookie}");
    // The signed-in page names the key's region and is never cached.
    let (status, headers, body) = server
        .raw(
            Request::get("/submit")
                .header(header::COOKIE, server.session(&server.token).await)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "private, no-store");
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("内蒙古自治区") && body.contains("id=\"upload\""));
    // A template of every dataset, as Excel and CSV, each one downloadable.
    let templates: Vec<String> = api_links(&body)
        .into_iter()
        .filter(|l| l.starts_with("/v1/templates/"))
        .collect();
    assert_eq!(
        templates.len(),
        2 * jiazheng_core::datasets::ALL.len(),
        "{templates:?}"
    );
    for link in templates {
        assert!(!server.get_bytes(&link).await.is_empty(), "{link}");
    }
}

#[tokio::test]
async fn a_county_key_cannot_upload_for_another_county_from_the_pages() {
    let server = Server::with_samples().await;
    let tree = server.tree().await;
    let (ulanhot, _) = keys::issue(&server.lake, tree.get("152201").unwrap(), Role::Submitter)
        .await
        .unwrap();
    let file = std::fs::read(repo("sample-data/submissions/2023H2/152202/outlets.csv")).unwrap();
    let fields = [
        ("dataset", "outlets"),
        ("period", "2023H2"),
        ("region", "152202"),
    ];
    let tables = [names::dataset("outlets"), names::SUBMISSIONS.to_string()];
    let mut before = Vec::new();
    for table in &tables {
        before.push(
            server
                .table_version(table)
                .await
                .expect("the samples are in"),
        );
    }
    let (status, _, body) = post_file(
        &server,
        Some(&ulanhot),
        None,
        &fields,
        ("outlets.csv", &file),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("152202"), "{body}");
    let (status, _, _) = post_file(&server, None, None, &fields, ("outlets.csv", &file)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Another site posting with the cookie is refused even for the key's own county.
    let own = [
        ("dataset", "outlets"),
        ("period", "2023H2"),
        ("region", "152201"),
    ];
    let (status, _, _) = post_file(
        &server,
        Some(&ulanhot),
        Some("https://evil.example"),
        &own,
        ("outlets.csv", &file),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (table, version) in tables.iter().zip(before) {
        assert_eq!(server.table_version(table).await, Some(version), "{table}");
    }
}

#[tokio::test]
async fn an_uploaded_file_lands_on_its_report_without_any_raw_id_number() {
    let server = Server::with_samples().await;
    let file = std::fs::read(repo("tests/fixtures/bad/workers-id-checksum.csv")).unwrap();
    let text = String::from_utf8_lossy(&file).into_owned();
    let ids: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .filter(|id| id.len() == 18)
        .collect();
    assert!(!ids.is_empty());
    let (status, headers, body) = post_file(
        &server,
        Some(&server.token),
        Some("http://jiazheng.test"),
        &[
            ("dataset", "workers"),
            ("period", "2023H2"),
            ("region", "152201"),
        ],
        ("workers-id-checksum.csv", &file),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let location = headers[header::LOCATION].to_str().unwrap().to_string();
    assert!(location.starts_with("/submit/"), "{location}");
    let report = page(&server, &location).await;
    assert!(report.contains("未通过"), "{report}");
    assert!(report.contains("id=\"problems\""));
    assert!(report.contains("身份证号"), "the column is named");
    for id in ids {
        assert!(!report.contains(id), "the report shows {id}");
        assert!(!report.contains(&id[..17]), "the report shows most of {id}");
    }
}

/// The browser test: Debian's Chromium, headless, driven by selenium with axe-core inside.
#[test]
fn a_browser_drills_down_uploads_and_passes_axe() {
    let python = support::tool("python", "the browser and selenium");
    assert!(
        std::env::var("JIAZHENG_AXE").is_ok(),
        "JIAZHENG_AXE is not set: run the tests with scripts/test"
    );
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let (server, addr) = support::serve(support::jiazheng(), lake.to_str().unwrap());
    let token = support::issue_key(
        support::jiazheng(),
        lake.to_str().unwrap(),
        "152201",
        "submitter",
    );
    let office = support::issue_key(
        support::jiazheng(),
        lake.to_str().unwrap(),
        "152200",
        "submitter",
    );

    // The good file: 乌兰浩特市's outlets with three more, each a copy of the first under
    // another number, so the count the dashboard shows must move by exactly three.
    let sample =
        std::fs::read_to_string(repo("sample-data/submissions/2023H2/152201/outlets.csv")).unwrap();
    let mut lines: Vec<String> = sample.lines().map(str::to_string).collect();
    let first: Vec<String> = lines[1].split(',').map(str::to_string).collect();
    for n in 1..=3 {
        let mut row = first.clone();
        row[0] = format!("152201-W9{n:02}");
        lines.push(row.join(","));
    }
    // And the first outlet's opening date moved from its 2023H1 one: a plausibility finding
    // the statistician confirms on the report page.
    let opened = lines[0].split(',').position(|h| h == "开业日期").unwrap();
    let mut moved = first.clone();
    assert_ne!(moved[opened], "2021/1/1");
    moved[opened] = "2021/1/1".to_string();
    lines[1] = moved.join(",");
    let good_rows = lines.len() - 1;
    let good = dir.path().join("outlets-more.csv");
    std::fs::write(&good, lines.join("\n") + "\n").unwrap();

    let artifacts = std::env::var("JIAZHENG_ARTIFACTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| repo("artifacts"))
        .join("browser");
    let stdout = support::run_against(
        server,
        Command::new(&python)
            .arg(repo("tests/browser/pages.py"))
            .arg(format!("http://{addr}"))
            .arg(&token)
            .arg(repo("tests/fixtures/bad/outlets-mode.csv"))
            .arg(&good)
            .arg(good_rows.to_string())
            .arg(&artifacts)
            .arg(&office)
            .current_dir(dir.path())
            // The Rust toolchain's library path is not the browser's.
            .env_remove("LD_LIBRARY_PATH"),
        "the browser test",
    );
    assert!(stdout.contains("browser test passed"), "{stdout}");
    println!("{stdout}");
    for shot in [
        "03-xingan",
        "05-ulanhot",
        "10-report-rejected",
        "12-ulanhot-after",
        "15-half-year",
        "15b-half-year-pdf",
    ] {
        let png = std::fs::read(artifacts.join(format!("{shot}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{shot}");
    }
}

#[tokio::test]
async fn the_status_page_counts_by_area_above_a_league_and_lists_counties_below() {
    let server = Server::with_samples().await;
    // Inner Mongolia: one row per league, counting its counties that reported each dataset.
    let province = page(&server, "/status?region=150000&period=2023H2").await;
    let row = &province[province.find(">兴安盟</a></th>").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    let cells: Vec<&str> = row
        .split("<td class=\"n\">")
        .skip(1)
        .map(|c| &c[..c.find("</td>").unwrap()])
        .collect();
    // Six counties; enterprises and outlets from all six, nothing else yet, none complete,
    // none with a plausibility finding to confirm.
    assert_eq!(
        cells,
        ["6", "6", "6", "0", "0", "0", "0", "0", "0"],
        "{row}"
    );
    assert!(province.contains("/status?period=2023H2&amp;region=152200"));
    // 兴安盟: every county with its files, each linking to its report.
    let league = page(&server, "/status?region=152200&period=2023H2").await;
    let row = &league[league.find(">乌兰浩特市</a></th>").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert_eq!(row.matches("href=\"/submit/").count(), 2, "{row}");
    assert_eq!(row.matches("未报送").count(), 4, "{row}");
}

#[tokio::test]
async fn pages_answer_errors_as_pages() {
    let server = Server::with_samples().await;
    for (path, status, text) in [
        ("/?region=999999", StatusCode::NOT_FOUND, "没有找到"),
        ("/?period=2023H3", StatusCode::BAD_REQUEST, "请求有误"),
        ("/status?region=abc", StatusCode::NOT_FOUND, "没有找到"),
        ("/submit/0000000000", StatusCode::NOT_FOUND, "没有找到"),
        (
            "/?region=999999&lang=en",
            StatusCode::NOT_FOUND,
            "Not found",
        ),
    ] {
        let (got, headers, body) = server
            .raw(Request::get(path).body(Body::empty()).unwrap())
            .await;
        assert_eq!(got, status, "{path}");
        assert_html(&headers, path);
        assert!(String::from_utf8(body).unwrap().contains(text), "{path}");
    }
}

#[tokio::test]
async fn a_file_over_the_limit_is_refused_by_the_page_before_anything_is_stored() {
    let server = Server::with_regions().await;
    let ingestor = jiazheng_core::ingest::Ingestor::new(
        server.lake.clone(),
        Some(jiazheng_core::privacy::Pseudonymizer::new(&[42; 32]).unwrap()),
    );
    let small = jiazheng_web::router(jiazheng_web::AppState::new(ingestor).with_upload_limit(4096));
    let file = std::fs::read(repo("sample-data/submissions/2023H2/152201/outlets.csv")).unwrap();
    assert!(file.len() > 4096);
    let (content_type, body) = form(
        &[
            ("dataset", "outlets"),
            ("period", "2023H2"),
            ("region", "152201"),
        ],
        ("outlets.csv", &file),
    );
    let request = Request::post("/submit/upload")
        .header(header::CONTENT_TYPE, content_type)
        .header(header::COOKIE, server.session(&server.token).await)
        .body(Body::from(body))
        .unwrap();
    let response = tower::ServiceExt::oneshot(small, request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("文件过大"));
    assert_eq!(server.table_version(&names::dataset("outlets")).await, None);
    assert_eq!(server.table_version(names::SUBMISSIONS).await, None);
}

#[tokio::test]
async fn signing_out_or_revoking_the_key_ends_the_session() {
    let server = Server::with_regions().await;
    let tree = server.tree().await;
    let (token, key) = keys::issue(&server.lake, tree.get("152201").unwrap(), Role::Submitter)
        .await
        .unwrap();
    let page = |cookie: String| {
        Request::get("/submit")
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap()
    };
    let signed_in = |body: Vec<u8>| String::from_utf8(body).unwrap().contains("id=\"upload\"");
    let first = server.session(&token).await;
    let (_, _, body) = server.raw(page(first.clone())).await;
    assert!(signed_in(body));
    let (status, _, _) = server
        .raw(
            Request::post("/submit/sign-out")
                .header(header::COOKIE, first.clone())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, body) = server.raw(page(first)).await;
    assert!(
        !signed_in(body),
        "the cookie of a signed-out session opens nothing"
    );

    let second = server.session(&token).await;
    keys::revoke(&server.lake, &key.key_id).await.unwrap();
    let (_, _, body) = server.raw(page(second)).await;
    assert!(!signed_in(body), "a revoked key's session opens nothing");
}
