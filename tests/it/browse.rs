//! Browsing open data (#17): facets and the matched count on `/v1/datasets/{name}`, the same
//! filters, sort, cursor pages and facets as HTML pages, and the region search over names in
//! Chinese and Pinyin (API and page). The browser test clicks through them with axe.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::Value;

use crate::support::Server;

/// The outlets of 兴安盟 in 2023H2, every one (the whole-period file, filtered here).
async fn all_outlets(server: &Server) -> Vec<Value> {
    let (status, json) = server.get("/v1/datasets/outlets/2023H2.json").await;
    assert_eq!(status, StatusCode::OK);
    json["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["county"].as_str().unwrap().starts_with("1522"))
        .cloned()
        .collect()
}

fn counts<'a>(rows: impl Iterator<Item = &'a Value>, field: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for row in rows {
        let values: Vec<String> = match &row[field] {
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().unwrap().to_string())
                .collect(),
            Value::String(s) => vec![s.clone()],
            Value::Bool(b) => vec![b.to_string()],
            _ => vec![],
        };
        for v in values {
            *out.entry(v).or_default() += 1;
        }
    }
    out
}

fn facet(json: &Value, field: &str) -> BTreeMap<String, i64> {
    json["facets"][field]
        .as_array()
        .unwrap_or_else(|| panic!("no facet {field}: {json}"))
        .iter()
        .map(|v| {
            (
                v["value"].as_str().unwrap().to_string(),
                v["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn facets_count_every_matching_row_not_just_the_page() {
    let server = Server::with_samples().await;
    let all = all_outlets(&server).await;
    let (status, json) = server
        .get("/v1/datasets/outlets?period=2023H2&region=152200&limit=5&facets=mode,services,county")
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["data"].as_array().unwrap().len(), 5);
    assert_eq!(json["matched"].as_u64().unwrap() as usize, all.len());
    assert_eq!(facet(&json, "mode"), counts(all.iter(), "mode"));
    // A list field counts once per item.
    assert_eq!(facet(&json, "services"), counts(all.iter(), "services"));
    assert_eq!(facet(&json, "county"), counts(all.iter(), "county"));

    // Under a filter, the facets and the count follow it.
    let (_, json) = server
        .get("/v1/datasets/outlets?period=2023H2&region=152200&mode=embedded&facets=county")
        .await;
    let embedded: Vec<Value> = all
        .iter()
        .filter(|r| r["mode"] == "embedded")
        .cloned()
        .collect();
    assert!(!embedded.is_empty());
    assert_eq!(json["matched"].as_u64().unwrap() as usize, embedded.len());
    assert_eq!(facet(&json, "county"), counts(embedded.iter(), "county"));

    // Only what can be counted: a free-text field is refused, naming what can.
    let (status, json) = server
        .get("/v1/datasets/outlets?period=2023H2&facets=name")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    assert!(json["detail"].as_str().unwrap().contains("mode"), "{json}");
    // Without `facets`, no facets in the answer.
    let (_, json) = server
        .get("/v1/datasets/outlets?period=2023H2&limit=1")
        .await;
    assert!(json.get("facets").is_none());
}

#[tokio::test]
async fn regions_are_found_by_chinese_pinyin_and_initials() {
    let server = Server::with_samples().await;
    for (query, first) in [
        ("兴安", "兴安盟"),
        ("xingan", "兴安盟"),
        ("Xing'an Meng", "兴安盟"),
        ("wlht", "乌兰浩特市"),
    ] {
        let (status, json) = server
            .get(&format!("/v1/regions/search?q={}", urlencode(query)))
            .await;
        assert_eq!(status, StatusCode::OK, "{query}");
        let regions = json["regions"].as_array().unwrap();
        assert_eq!(regions[0]["name"], first, "{query}: {json}");
        assert!(
            regions[0]["ancestors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["name"] == "内蒙古自治区")
        );
    }
    let (_, json) = server.get("/v1/regions/search?q=xingan").await;
    assert_eq!(json["regions"][0]["name_pinyin"], "Xing'an Meng");
    let (_, json) = server.get("/v1/regions/152201").await;
    assert_eq!(json["name_pinyin"], "Wulanhaote Shi");
    // A query longer than any name is refused; nothing matches nothing.
    let (status, _) = server
        .get(&format!("/v1/regions/search?q={}", "a".repeat(41)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, json) = server.get("/v1/regions/search?q=qqqqzzz").await;
    assert_eq!(json["regions"].as_array().unwrap().len(), 0);

    // The page: the same regions, and English names in Pinyin beside the Chinese.
    let (status, _, body) = server
        .raw(
            axum::http::Request::get(format!("/regions?q={}", urlencode("兴安")))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let html = String::from_utf8(body).unwrap();
    let table = &html[html.find("id=\"regions\"").unwrap()..];
    assert!(
        table.contains("兴安盟") && table.contains("?region=152200"),
        "{table}"
    );
    let (_, _, body) = server
        .raw(
            axum::http::Request::get("/regions?q=xingan&lang=en")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("Xing'an Meng 兴安盟"), "{html}");
}

/// Percent-encodes a query value.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn html(server: &Server, path: &str) -> (StatusCode, String) {
    let (status, _, body) = server
        .raw(
            axum::http::Request::get(path)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    (status, String::from_utf8(body).unwrap())
}

/// The `href`s of a page, unescaped.
fn links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].replace("&amp;", "&"))
        .collect()
}

#[tokio::test]
async fn the_dataset_page_filters_pages_and_facets_like_the_api() {
    let server = Server::with_samples().await;
    let all = all_outlets(&server).await;
    let (status, page) = html(&server, "/datasets/outlets?period=2023H2&region=152200").await;
    assert_eq!(status, StatusCode::OK);
    let matched = &page[page.find("id=\"matched\"").unwrap()..];
    assert!(
        matched.contains(&format!("共 {} 条记录", all.len())),
        "{}",
        &matched[..200]
    );
    // 50 rows a page, and the next page by cursor: other rows.
    let rows = |html: &str| -> Vec<String> {
        let table = &html[html.find("id=\"records\"").unwrap()..];
        let body = &table[table.find("<tbody>").unwrap()..table.find("</tbody>").unwrap()];
        body.split("<tr>").skip(1).map(str::to_string).collect()
    };
    assert_eq!(rows(&page).len(), 50);
    let next = links(&page)
        .into_iter()
        .find(|l| l.contains("cursor="))
        .expect("a next page");
    let (status, second) = html(&server, &next).await;
    assert_eq!(status, StatusCode::OK);
    assert!(second.contains("本页第 51–"), "{next}");
    assert!(rows(&second).iter().all(|r| !rows(&page).contains(r)));

    // The facet link for 嵌入 (embedded): the page filters by it, with the API's count.
    let embedded = all.iter().filter(|r| r["mode"] == "embedded").count();
    let facets =
        &page[page.find("id=\"facets-title\"").unwrap()..page.find("id=\"records\"").unwrap()];
    assert!(
        facets.contains(&format!("嵌入</a> <span class=\"muted\">{embedded}</span>")),
        "{facets}"
    );
    let link = links(facets)
        .into_iter()
        .find(|l| l.contains("mode=embedded"))
        .unwrap();
    let (_, filtered) = html(&server, &link).await;
    assert!(
        filtered.contains(&format!("共 {embedded} 条记录")),
        "{link}"
    );
    assert!(
        filtered.contains("class=\"chip\""),
        "the filter is shown, removable"
    );
    // Every row shown is embedded; the page's own download links give the same rows.
    assert!(rows(&filtered).iter().all(|r| r.contains("嵌入")));
    let csv = links(&filtered)
        .into_iter()
        .find(|l| l.starts_with("/v1/datasets/outlets?") && l.contains("format=json"))
        .unwrap();
    let (status, json) = server.get(&csv).await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    assert_eq!(json["matched"].as_u64().unwrap() as usize, embedded);

    // Workers are never browsed; a bad filter is an error page, not an empty table.
    let (status, _) = html(&server, "/datasets/workers").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (query, problem) in [
        ("mode=nonsense", "bad-query"),
        ("period=2019H9", "bad-period"),
        ("limit=lots", "bad-query"),
        ("sort=services", "bad-query"),
    ] {
        let (status, page) = html(&server, &format!("/datasets/outlets?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            page.starts_with("<!DOCTYPE html>"),
            "{query}: an error page"
        );
        assert!(
            page.contains(&format!("data-problem=\"{problem}\"")),
            "{query}: {page}"
        );
    }
    // English: the county facet in Pinyin beside the Chinese.
    let (_, en) = html(
        &server,
        "/datasets/outlets?period=2023H2&region=152200&lang=en",
    )
    .await;
    assert!(en.contains("Wulanhaote Shi 乌兰浩特市"));
}
