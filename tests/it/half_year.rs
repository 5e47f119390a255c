//! The 半年报 (#17): an office's half-year report as a printable page under its session and as
//! an XLSX workbook by its key — the indicators against their targets with reporting states,
//! the areas below, the counties that have not reported — with the same numbers as the API
//! and "未报送" (never 0) where nobody reported. Printing it to PDF is the browser test's.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use calamine::{Data, Reader, Xlsx};
use jiazheng_core::indicators;
use jiazheng_core::keys::{self, Role};

use crate::support::{Server, repo};

/// 兴安盟's six counties with enterprises and outlets, and 乌兰浩特市 with every dataset.
async fn league() -> Server {
    let server = Server::with_samples().await;
    for dataset in ["complaints", "shops", "trainings", "workers"] {
        let file = repo(&format!(
            "sample-data/submissions/2023H2/152201/{dataset}.csv"
        ));
        let (status, json) = server
            .put(
                &format!("/v1/submissions/{dataset}/2023H2/152201?file_name={dataset}.csv"),
                std::fs::read(&file).unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{dataset}: {json}");
    }
    server
}

async fn key(server: &Server, region: &str) -> String {
    let tree = server.tree().await;
    keys::issue(&server.lake, tree.resolve(region).unwrap(), Role::Submitter)
        .await
        .unwrap()
        .0
}

fn workbook(bytes: Vec<u8>) -> Xlsx<std::io::Cursor<Vec<u8>>> {
    Xlsx::new(std::io::Cursor::new(bytes)).unwrap()
}

/// The row of the 主要指标 sheet whose first cell is `name`.
fn sheet_row(book: &mut Xlsx<std::io::Cursor<Vec<u8>>>, sheet: &str, name: &str) -> Vec<Data> {
    let range = book.worksheet_range(sheet).unwrap();
    range
        .rows()
        .find(|r| r.first().is_some_and(|c| *c == name))
        .unwrap_or_else(|| panic!("no row {name} in {sheet}"))
        .to_vec()
}

#[tokio::test]
async fn the_office_gets_its_half_year_report_as_a_page_and_a_workbook() {
    let server = league().await;
    let token = key(&server, "152200").await;
    let (_, values) = server.get("/v1/values?period=2023H2&region=152200").await;
    let value_of = |id: &str| {
        values["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["indicator"] == id && r.get("breakdown").is_none_or(|b| b.is_null()))
            .unwrap()
            .clone()
    };
    let outlets = value_of("outlets");
    let coverage = value_of("outlet_coverage");
    assert_eq!(outlets["status"], "reported");
    // Only 乌兰浩特市 sent workers: the league's rate is partly reported.
    let credentials = value_of("credential_rate");
    assert_eq!(credentials["status"], "partial", "{credentials}");
    let credential_rate = indicators::by_id("credential_rate").unwrap().zh;

    // The workbook by the office's key.
    let (status, headers, bytes) = server
        .raw(
            Request::get("/v1/reports/half-year?period=2023H2")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let mut book = workbook(bytes);
    assert_eq!(
        book.sheet_names(),
        ["主要指标", "下级地区", "报送情况", "说明"]
    );
    let title = book.worksheet_range("主要指标").unwrap();
    assert_eq!(
        title.get((0, 0)).unwrap().to_string(),
        "兴安盟家政进社区工作半年报（2023年下半年）"
    );
    let row = sheet_row(
        &mut book,
        "主要指标",
        indicators::by_id("outlets").unwrap().zh,
    );
    assert_eq!(row[2], Data::Float(outlets["value"].as_f64().unwrap()));
    assert_eq!(row[4].to_string(), "已报送");
    let row = sheet_row(
        &mut book,
        "主要指标",
        indicators::by_id("outlet_coverage").unwrap().zh,
    );
    assert_eq!(
        row[2],
        Data::Float(coverage["value"].as_f64().unwrap()),
        "to the last bit"
    );
    assert_eq!(row[7], Data::Float(coverage["target"].as_f64().unwrap()));
    // A breakdown row reads in Chinese, after its total.
    let range = book.worksheet_range("主要指标").unwrap();
    let modes: Vec<String> = range
        .rows()
        .filter(|r| r[0] == indicators::by_id("outlets_by_mode").unwrap().zh)
        .map(|r| r[1].to_string())
        .collect();
    assert_eq!(modes, ["独营", "嵌入", "合作", "线上"]);
    let row = sheet_row(&mut book, "主要指标", credential_rate);
    assert_eq!(row[4].to_string(), "部分报送");
    assert_eq!(
        (row[5].to_string(), row[6].to_string()),
        ("1".into(), "6".into())
    );
    // The counties: 乌兰浩特市 complete, the other five missing what they did not send.
    let status = book.worksheet_range("报送情况").unwrap();
    let counties: Vec<Vec<String>> = status
        .rows()
        .skip(1)
        .map(|r| r.iter().map(ToString::to_string).collect())
        .collect();
    assert_eq!(counties.len(), 6, "{counties:?}");
    let ulanhot = counties.iter().find(|r| r[1] == "乌兰浩特市").unwrap();
    assert_eq!(ulanhot[2], "已报齐");
    let arxan = counties.iter().find(|r| r[1] == "阿尔山市").unwrap();
    assert_eq!(arxan[2], "未报齐");
    assert!(arxan[3].contains("家政服务人员"), "{arxan:?}");
    // Areas: a county nobody sent workers for reads 未报送, never 0.
    let areas = book.worksheet_range("下级地区").unwrap();
    let header: Vec<String> = areas
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    let column = header.iter().position(|h| h == credential_rate).unwrap();
    let arxan = areas.rows().find(|r| r[1] == "阿尔山市").unwrap();
    assert_eq!(arxan[column].to_string(), "未报送");

    // The page, signed in as the office: the same figures, the counties, a chart.
    let cookie = server.session(&token).await;
    let get = |path: &str, cookie: Option<&str>| {
        let mut request = Request::get(path);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        server.raw(request.body(Body::empty()).unwrap())
    };
    let (status, headers, body) = get("/submit/half-year?period=2023H2", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "private, no-store");
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("兴安盟家政进社区工作半年报（2023年下半年）"));
    let shown = format!("{:.1}%", coverage["value"].as_f64().unwrap());
    let own = &page[page.find("id=\"own\"").unwrap()..page.find("id=\"areas\"").unwrap()];
    assert!(own.contains(&shown), "coverage {shown} in {own}");
    let by_mode = indicators::by_id("outlets_by_mode").unwrap().zh;
    let heading = own.find(by_mode).expect("the breakdown's own heading");
    assert!(own[heading..].contains("嵌入"), "its modes follow it");
    assert!(page.contains("id=\"half-year-chart-title\""), "a chart");
    assert!(page.contains("阿尔山市") && page.contains("部分报送"));
    assert!(page.contains("@page{size:A4"), "the print stylesheet");
    let unreported = &page[page.find("id=\"unreported\"").unwrap()..];
    assert!(unreported.contains("阿尔山市") && !unreported.contains("乌兰浩特市"));
    // The same workbook through the session.
    let (status, _, bytes) = get("/submit/half-year.xlsx?period=2023H2", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(workbook(bytes).sheet_names().len(), 4);
    let (status, _, body) = get("/submit/half-year?period=2023H2&lang=en", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("half-year report")
    );

    // Nobody signed in: to the sign-in page. No key: 401. Another county's key: 403.
    let (status, headers, _) = get("/submit/half-year", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/submit");
    let (status, _) = server.get("/v1/reports/half-year?period=2023H2").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let arxan = key(&server, "152202").await;
    let (status, _, _) = server
        .raw(
            Request::get("/v1/reports/half-year?period=2023H2&region=152200")
                .header(header::AUTHORIZATION, format!("Bearer {arxan}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let cookie = server.session(&arxan).await;
    let (status, _, _) = get("/submit/half-year?region=152200", Some(&cookie)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Its own report: one county, itself.
    let (status, _, body) = get("/submit/half-year?period=2023H2", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("阿尔山市家政进社区工作半年报")
    );
}
