//! `GET /v1/catalog`: the catalogue as DCAT (DCAT-AP 3 vocabulary) in JSON-LD, which data
//! portals harvest: one dataset per open dataset and one for the indicator values, each with
//! its licence, publisher, contact, temporal and spatial coverage, last modification (from the
//! table versions) and its distributions. Everything comes from the declarations and the lake;
//! who publishes under which licence is the deployment's to say ([`Publisher`]).

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{ApiError, AppState};
use jiazheng_core::datasets::{self, Dataset, Openness};
use jiazheng_core::lake::{Lake, committed_at, names};
use jiazheng_core::periods::Period;

/// Who publishes the data, how to reach them and under which licence. Set per deployment with
/// `JIAZHENG_PUBLISHER`, `JIAZHENG_CONTACT` (an e-mail address) and `JIAZHENG_LICENSE` (a URL).
#[derive(Debug, Clone)]
pub struct Publisher {
    pub name: String,
    pub email: String,
    pub licence: String,
}

/// The licence open data is published under unless the deployment says otherwise.
pub const DEFAULT_LICENCE: &str = "https://creativecommons.org/licenses/by/4.0/";

impl Publisher {
    pub fn from_env() -> Publisher {
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        Publisher {
            name: var("JIAZHENG_PUBLISHER", "家政进社区开放数据 (jiazheng)"),
            email: var("JIAZHENG_CONTACT", "opendata@jiazheng.example"),
            licence: var("JIAZHENG_LICENSE", DEFAULT_LICENCE),
        }
    }

    /// The licence's short name where it is a Creative Commons one, else its URL.
    pub fn licence_name(&self) -> &str {
        match self.licence.trim_end_matches('/') {
            "https://creativecommons.org/licenses/by/4.0" => "CC BY 4.0",
            "https://creativecommons.org/publicdomain/zero/1.0" => "CC0 1.0",
            other => other,
        }
    }
}

const CONTEXT: &str = r#"{
  "dcat": "http://www.w3.org/ns/dcat#",
  "dct": "http://purl.org/dc/terms/",
  "foaf": "http://xmlns.com/foaf/0.1/",
  "vcard": "http://www.w3.org/2006/vcard/ns#",
  "xsd": "http://www.w3.org/2001/XMLSchema#"
}"#;

/// EU vocabularies DCAT-AP names formats, frequencies and places with.
const FILE_TYPE: &str = "http://publications.europa.eu/resource/authority/file-type/";
const SEMIANNUAL: &str = "http://publications.europa.eu/resource/authority/frequency/ANNUAL_2";
const CHINA: &str = "http://publications.europa.eu/resource/authority/country/CHN";

/// The formats every table is served in: (extension, DCAT-AP file type, media type).
const FORMATS: [(&str, &str, &str); 3] = [
    ("json", "JSON", "application/json"),
    ("csv", "CSV", "text/csv"),
    ("parquet", "PARQUET", "application/vnd.apache.parquet"),
];

/// The catalogue of open data as DCAT-AP 3 in JSON-LD.
#[utoipa::path(get, path = "/v1/catalog", tag = "service",
    responses((status = 200, description = "The DCAT catalogue (JSON-LD)", body = Object,
        content_type = "application/ld+json")))]
pub async fn catalog(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let published = state.published().await?;
    let periods = published.periods();
    let base = base_url(&headers);
    let publisher = &state.publisher;
    let lake = state.lake();
    let mut entries = Vec::new();
    for dataset in datasets::ALL
        .iter()
        .filter(|d| d.openness == Openness::Records)
    {
        let modified = modified(lake, &names::dataset(dataset.name)).await?;
        entries.push(open_dataset(&base, publisher, dataset, &periods, modified));
    }
    let values_modified = modified(lake, names::INDICATOR_VALUES).await?;
    entries.push(indicator_values(
        &base,
        publisher,
        &periods,
        values_modified.clone(),
    ));
    let latest = entries
        .iter()
        .filter_map(|d| d["dct:modified"]["@value"].as_str())
        .max()
        .map(str::to_string);
    let mut catalog = json!({
        "@context": serde_json::from_str::<Value>(CONTEXT).unwrap_or_default(),
        "@id": format!("{base}/v1/catalog"),
        "@type": "dcat:Catalog",
        "dct:title": text("家政进社区开放数据", "Home services in communities: open data"),
        "dct:description": text(
            "各旗县（市、区）每半年报送的家政进社区数据及其指标：社区家政服务网点、家政企业、培训、持证上门服务人员、毕业生开办门店和投诉。",
            "The half-yearly returns of every county on home services in communities and the policy's indicators: community outlets, enterprises, trainings, certified workers, graduates' shops and complaints."),
        "dct:publisher": agent(&base, publisher),
        "dcat:contactPoint": contact(publisher),
        "dct:license": {"@id": publisher.licence},
        "dct:language": [{"@id": "http://publications.europa.eu/resource/authority/language/ZHO"},
                          {"@id": "http://publications.europa.eu/resource/authority/language/ENG"}],
        "foaf:homepage": {"@id": format!("{base}/")},
        "dcat:dataset": entries,
    });
    if let Some(latest) = latest {
        catalog["dct:modified"] = date_time(&latest);
    }
    Ok((
        [(header::CONTENT_TYPE, "application/ld+json")],
        catalog.to_string(),
    )
        .into_response())
}

/// The address the caller used for this server (a proxy in front says it in `X-Forwarded-*`).
fn base_url(headers: &HeaderMap) -> String {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let host = get("x-forwarded-host")
        .or_else(|| get("host"))
        .unwrap_or("localhost");
    let scheme = get("x-forwarded-proto").unwrap_or("http");
    format!("{scheme}://{host}")
}

/// When a table last changed, as RFC 3339 (`None` before its first commit).
async fn modified(lake: &Lake, table: &str) -> Result<Option<String>, ApiError> {
    Ok(lake
        .load(table)
        .await?
        .as_ref()
        .and_then(committed_at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
}

fn text(zh: &str, en: &str) -> Value {
    json!([{"@value": zh, "@language": "zh"}, {"@value": en, "@language": "en"}])
}

fn date_time(value: &str) -> Value {
    json!({"@value": value, "@type": "xsd:dateTime"})
}

fn agent(base: &str, publisher: &Publisher) -> Value {
    json!({"@id": format!("{base}/#publisher"), "@type": "foaf:Agent", "foaf:name": publisher.name})
}

fn contact(publisher: &Publisher) -> Value {
    json!({"@type": "vcard:Kind", "vcard:fn": publisher.name,
           "vcard:hasEmail": {"@id": format!("mailto:{}", publisher.email)}})
}

/// What every dataset of the catalogue says alike.
fn common(
    base: &str,
    publisher: &Publisher,
    periods: &[Period],
    modified: Option<String>,
) -> Value {
    let mut common = json!({
        "@type": "dcat:Dataset",
        "dct:publisher": agent(base, publisher),
        "dcat:contactPoint": contact(publisher),
        "dct:license": {"@id": publisher.licence},
        "dct:accrualPeriodicity": {"@id": SEMIANNUAL},
        "dct:spatial": {"@id": CHINA},
    });
    if let (Some(first), Some(last)) = (periods.first(), periods.last()) {
        common["dct:temporal"] = json!({
            "@type": "dct:PeriodOfTime",
            "dcat:startDate": {"@value": first.start().to_string(), "@type": "xsd:date"},
            "dcat:endDate": {"@value": last.end().to_string(), "@type": "xsd:date"},
        });
    }
    if let Some(modified) = modified {
        common["dct:modified"] = date_time(&modified);
    }
    common
}

/// The period's release package (every open dataset, the values and the regions in one zip).
fn package(base: &str, period: Period, licence: &str) -> Value {
    let title = text(
        &format!("{period} 数据包（Frictionless，CSV 与 Parquet）"),
        &format!("{period} data package (Frictionless, CSV and Parquet)"),
    );
    let url = format!("{base}/v1/packages/{period}.zip");
    distribution(url, title, ("zip", "ZIP", "application/zip"), licence)
}

fn distribution(url: String, title: Value, format: (&str, &str, &str), licence: &str) -> Value {
    let (_, file_type, media_type) = format;
    json!({
        "@id": url,
        "@type": "dcat:Distribution",
        "dct:title": title,
        "dcat:accessURL": {"@id": url},
        "dcat:downloadURL": {"@id": url},
        "dct:format": {"@id": format!("{FILE_TYPE}{file_type}")},
        "dcat:mediaType": {"@id": format!("https://www.iana.org/assignments/media-types/{media_type}")},
        "dct:license": {"@id": licence},
    })
}

fn open_dataset(
    base: &str,
    publisher: &Publisher,
    dataset: &Dataset,
    periods: &[Period],
    modified: Option<String>,
) -> Value {
    let mut entry = common(base, publisher, periods, modified);
    let path = format!("{base}/v1/datasets/{}", dataset.name);
    entry["@id"] = json!(path);
    entry["dct:identifier"] = json!(dataset.name);
    entry["dct:title"] = text(dataset.zh, dataset.en);
    entry["dct:description"] = text(
        &format!(
            "各旗县（市、区）每半年报送的{}，逐条公开（不含个人信息）。",
            dataset.zh
        ),
        &format!(
            "{}: every record the counties report each half-year (no personal data).",
            dataset.en
        ),
    );
    entry["dcat:keyword"] = text_list(&["家政进社区", dataset.zh], &["home services", dataset.en]);
    let mut distributions: Vec<Value> = FORMATS
        .iter()
        .map(|&format| {
            let url = format!("{path}?format={}", format.0);
            let title = text(
                &format!("{}（最新一期，{}，分页）", dataset.zh, format.1),
                &format!("{} (latest period, {}, paged)", dataset.en, format.1),
            );
            distribution(url, title, format, &publisher.licence)
        })
        .collect();
    for period in periods {
        for &format in FORMATS.iter().filter(|f| f.0 != "json") {
            let url = format!("{path}/{period}.{}", format.0);
            let title = text(
                &format!("{} {period}（整期，{}）", dataset.zh, format.1),
                &format!("{} {period} (whole period, {})", dataset.en, format.1),
            );
            distributions.push(distribution(url, title, format, &publisher.licence));
        }
        distributions.push(package(base, *period, &publisher.licence));
    }
    entry["dcat:distribution"] = json!(distributions);
    entry
}

fn indicator_values(
    base: &str,
    publisher: &Publisher,
    periods: &[Period],
    modified: Option<String>,
) -> Value {
    let mut entry = common(base, publisher, periods, modified);
    entry["@id"] = json!(format!("{base}/v1/values"));
    entry["dct:identifier"] = json!("indicator_values");
    entry["dct:title"] = text(
        "家政进社区指标",
        "Indicators of home services in communities",
    );
    entry["dct:description"] = text(
        "每个地区、每半年的政策指标（网点社区覆盖率、持证上门率等），附报送状态、目标和达标情况；未报送的地区为空值而不是零。",
        "The policy's indicators for every region and half-year (outlet coverage of communities, share of workers visiting with a card, …) with reporting state, target and whether it is met; regions that did not report are null, never zero.",
    );
    entry["dcat:keyword"] = text_list(
        &["家政进社区", "指标", "半年报"],
        &["home services", "indicators", "half-yearly"],
    );
    let mut distributions = Vec::new();
    for period in periods {
        for &format in &FORMATS {
            let url = format!("{base}/v1/values?period={period}&format={}", format.0);
            let title = text(
                &format!("{period} 全部指标（{}）", format.1),
                &format!("Every indicator, {period} ({})", format.1),
            );
            distributions.push(distribution(url, title, format, &publisher.licence));
        }
        // SDMX-CSV for statistical offices, conforming to the structure message.
        let url = format!("{base}/v1/values?period={period}&format=sdmx-csv");
        let title = text(
            &format!("{period} 全部指标（SDMX-CSV 2.0）"),
            &format!("Every indicator, {period} (SDMX-CSV 2.0)"),
        );
        let mut sdmx = distribution(
            url,
            title,
            ("sdmx-csv", "CSV", "application/vnd.sdmx.data+csv"),
            &publisher.licence,
        );
        sdmx["dct:conformsTo"] = json!({"@id": format!("{base}/v1/sdmx/structure")});
        distributions.push(sdmx);
        distributions.push(package(base, *period, &publisher.licence));
    }
    entry["dcat:distribution"] = json!(distributions);
    entry
}

fn text_list(zh: &[&str], en: &[&str]) -> Value {
    let zh = zh.iter().map(|k| json!({"@value": k, "@language": "zh"}));
    let en = en.iter().map(|k| json!({"@value": k, "@language": "en"}));
    json!(zh.chain(en).collect::<Vec<_>>())
}
