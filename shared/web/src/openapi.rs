//! The OpenAPI 3.1 document, generated from the handlers' annotations (utoipa) and then made
//! exact from the same declarations the code runs on: the datasets' fields, the indicator
//! catalogue, the levels and formats. Served at `/v1/openapi.json` and, for people, as a
//! plain HTML page at `/v1/docs`.

use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, ContentBuilder, OpenApi as Document, Ref, RefOr, Required};

use super::problem::Problem;
use jiazheng_core::datasets::{self, Dataset, Kind, Openness};
use jiazheng_core::indicators::CATALOGUE;
use jiazheng_core::periods::Period;
use jiazheng_core::regions::Level;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "jiazheng open data API",
        description = "家政进社区 (home services in communities): the policy's indicators, the \
            open records behind them and the half-yearly submissions of every county. Reading is \
            public; submitting needs a submitter key, SQL an analyst key \
            (`Authorization: Bearer jz_…`). Every table answers in JSON, CSV (UTF-8 with BOM) or \
            Parquet by `?format=` or `Accept`; public reads carry a strong ETag. Errors are \
            `application/problem+json` with a stable `type`.",
        license(name = "Open data")
    ),
    components(schemas(Problem)),
    modifiers(&Security),
    tags(
        (name = "indicators", description = "The policy's indicators and their values"),
        (name = "regions", description = "The NBS division tree with community counts"),
        (name = "datasets", description = "Open record-level data and templates"),
        (name = "submissions", description = "Uploads, validation reports and reporting status"),
        (name = "sql", description = "Read-only SQL for analysts"),
        (name = "service", description = "The service itself"),
    )
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("jz_{id}_{secret}")
                    .description(Some("A key from `jiazheng keys issue`"))
                    .build(),
            ),
        );
    }
}

/// Matches exactly the periods `Period` parses: the reporting periods up to the current one.
fn period_pattern() -> String {
    let all: Vec<String> = Period::reportable().iter().map(Period::to_string).collect();
    format!("^({})$", all.join("|"))
}
const CURSOR_PATTERN: &str = "^[0-9]{1,9}\\.[0-9]{1,9}$";
const FORMATS: [&str; 3] = ["json", "csv", "parquet"];
const REPORT_FILES: [&str; 3] = ["report.json", "report.csv", "report.html"];

/// Makes the generated document exact: parameter domains from the declarations, one path
/// per open dataset with its own fields, and the problems every operation can answer.
pub fn refine(doc: &mut Document) {
    expand_datasets(doc);
    // Request bodies name periods too (POST /v1/submissions).
    for schema in doc
        .components
        .iter_mut()
        .flat_map(|c| c.schemas.values_mut())
    {
        if let RefOr::T(Schema::Object(object)) = schema
            && let Some(period) = object.properties.get_mut("period")
        {
            *period = RefOr::T(pattern(&period_pattern()));
        }
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, op) in [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
        ] {
            let Some(op) = op.as_mut() else { continue };
            for param in op.parameters.iter_mut().flatten() {
                restrict(path, param);
            }
            add_problems(op, method == "get");
        }
    }
}

fn string_schema() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn enum_of<I: IntoIterator<Item = S>, S: Into<String>>(values: I) -> Schema {
    let values: Vec<String> = values.into_iter().map(Into::into).collect();
    Schema::Object(string_schema().enum_values(Some(values)).build())
}

fn pattern(p: &str) -> Schema {
    Schema::Object(string_schema().pattern(Some(p)).build())
}

/// The domain of a parameter, from what the handlers accept.
fn restrict(path: &str, param: &mut Parameter) {
    let schema = match (param.name.as_str(), path) {
        ("period", _) => pattern(&period_pattern()),
        ("cursor", _) => pattern(CURSOR_PATTERN),
        ("format", _) => enum_of(FORMATS),
        ("level", _) => enum_of(Level::PUBLISHED.map(Level::as_str)),
        ("id", "/v1/indicators/{id}" | "/v1/indicators/{id}/series")
        | ("indicator", "/v1/values") => enum_of(CATALOGUE.iter().map(|i| i.id)),
        ("dataset", _) => enum_of(datasets::ALL.iter().map(|d| d.name)),
        ("file", "/v1/templates/{file}") => enum_of(
            datasets::ALL
                .iter()
                .flat_map(|d| [format!("{}.xlsx", d.name), format!("{}.csv", d.name)]),
        ),
        ("file", "/v1/submissions/{id}/{file}") => enum_of(REPORT_FILES),
        ("file", "/v1/packages/{file}") => enum_of(
            jiazheng_core::periods::Period::reportable()
                .iter()
                .map(|p| format!("{p}.zip")),
        ),
        _ => return,
    };
    param.schema = Some(RefOr::T(schema));
}

fn problem_content() -> Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .build()
}

/// Every operation may answer with these problems; handlers declare the rest (401, 403,
/// 413, 415, 422) themselves. Reads may also answer 304 to a conditional request.
fn add_problems(op: &mut Operation, is_read: bool) {
    let common = [
        (
            "400",
            "A parameter is malformed (bad period, level, format or query)",
        ),
        (
            "404",
            "The region, indicator, dataset, submission or page does not exist, or nothing is published for it",
        ),
        (
            "429",
            "Too many requests from this client (the local server's limit; API Gateway throttles on AWS)",
        ),
        ("500", "Storage failed; the request can be retried"),
    ];
    for (status, description) in common {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| {
                RefOr::T(
                    ResponseBuilder::new()
                        .description(description)
                        .content("application/problem+json", problem_content())
                        .build(),
                )
            });
    }
    if is_read {
        op.responses
            .responses
            .entry("304".to_string())
            .or_insert_with(|| {
                RefOr::T(
                    ResponseBuilder::new()
                        .description("Not modified since the ETag given in `If-None-Match`")
                        .build(),
                )
            });
    }
}

/// Replaces `/v1/datasets/{dataset}` and its bulk path by one path per open dataset, each
/// with its fields as filters and sort keys, so that clients see exactly what they may ask.
fn expand_datasets(doc: &mut Document) {
    let paths = &mut doc.paths.paths;
    let page = paths.remove("/v1/datasets/{dataset}").and_then(|p| p.get);
    let bulk = paths
        .remove("/v1/datasets/{dataset}/{file}")
        .and_then(|p| p.get);
    for dataset in datasets::ALL
        .iter()
        .filter(|d| d.openness == Openness::Records)
    {
        if let Some(template) = &page {
            let mut op = for_dataset(template, dataset, "page");
            let params = op.parameters.get_or_insert_with(Vec::new);
            for field in dataset.fields {
                if let Some(schema) = filter_schema(field.kind) {
                    params.push(
                        ParameterBuilder::new()
                            .name(field.name)
                            .parameter_in(ParameterIn::Query)
                            .required(Required::False)
                            .description(Some(format!("{} ({}): equal to", field.doc_en, field.zh)))
                            .schema(Some(schema))
                            .build(),
                    );
                }
            }
            if let Some(sort) = params.iter_mut().find(|p| p.name == "sort") {
                let sortable = dataset
                    .fields
                    .iter()
                    .filter(|f| !matches!(f.kind, Kind::EnumList { .. }))
                    .flat_map(|f| [f.name.to_string(), format!("-{}", f.name)]);
                sort.schema = Some(RefOr::T(enum_of(sortable)));
            }
            if let Some(facets) = params.iter_mut().find(|p| p.name == "facets") {
                let one = format!("({})", crate::records::facetable(dataset).join("|"));
                facets.schema = Some(RefOr::T(pattern(&format!("^{one}(,{one})*$"))));
            }
            paths.insert(
                format!("/v1/datasets/{}", dataset.name),
                utoipa::openapi::PathItem::new(utoipa::openapi::HttpMethod::Get, op),
            );
        }
        if let Some(template) = &bulk {
            let mut op = for_dataset(template, dataset, "file");
            if let Some(file) = op
                .parameters
                .iter_mut()
                .flatten()
                .find(|p| p.name == "file")
            {
                let period = period_pattern();
                let period = period.trim_end_matches('$');
                file.schema = Some(RefOr::T(pattern(&format!(
                    "{period}\\.({})$",
                    FORMATS.join("|")
                ))));
            }
            paths.insert(
                format!("/v1/datasets/{}/{{file}}", dataset.name),
                utoipa::openapi::PathItem::new(utoipa::openapi::HttpMethod::Get, op),
            );
        }
    }
}

fn for_dataset(template: &Operation, dataset: &Dataset, what: &str) -> Operation {
    let mut op = template.clone();
    op.operation_id = Some(format!("{}_{what}", dataset.name));
    op.summary = Some(format!("{} {} ({})", dataset.en, what, dataset.zh));
    if let Some(params) = op.parameters.as_mut() {
        params.retain(|p| p.name != "dataset");
    }
    op
}

/// The schema of an equality filter on a field; `None` for fields that cannot be filtered.
fn filter_schema(kind: Kind) -> Option<RefOr<Schema>> {
    let schema = match kind {
        Kind::Bool => Schema::Object(ObjectBuilder::new().schema_type(Type::Boolean).build()),
        Kind::Count { min } => Schema::Object(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(min))
                .maximum(Some(i64::MAX))
                .build(),
        ),
        Kind::Enum { choices } | Kind::EnumList { choices } => {
            enum_of(choices.iter().map(|c| c.code))
        }
        Kind::Date | Kind::Amount | Kind::IdNumber => return None,
        Kind::Text { .. } | Kind::CreditCode | Kind::CountyCode | Kind::CommunityCode => {
            Schema::Object(string_schema().build())
        }
    };
    Some(RefOr::T(schema))
}

/// Every operation of the document with its method and path, in the document's order.
fn operations(
    doc: &Document,
) -> impl Iterator<Item = (&'static str, &String, &utoipa::openapi::path::Operation)> {
    doc.paths.paths.iter().flat_map(|(path, item)| {
        [("GET", &item.get), ("PUT", &item.put), ("POST", &item.post)]
            .into_iter()
            .filter_map(move |(method, op)| op.as_ref().map(|op| (method, path, op)))
    })
}

/// `/v1/`: where a client starts — the service, its documents and every endpoint with its
/// summary, from the same document as `/v1/docs`.
pub fn index(doc: &Document) -> serde_json::Value {
    let endpoints: Vec<serde_json::Value> = operations(doc)
        .map(|(method, path, op)| {
            serde_json::json!({"method": method, "path": path, "summary": op.summary})
        })
        .collect();
    serde_json::json!({
        "name": doc.info.title,
        "version": doc.info.version,
        "documentation": "/v1/docs",
        "openapi": "/v1/openapi.json",
        "catalog": "/v1/catalog",
        "home": "/",
        "endpoints": endpoints,
    })
}

/// The document as a page people read: every operation with its parameters and answers.
pub fn page(doc: &Document) -> String {
    use maud::{DOCTYPE, html};
    let operations = operations(doc);
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (doc.info.title) " — API reference" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                main {
                    p { a href="/" { "← Home (the indicators)" } " · " a href="/v1/" { "/v1/" } " · " a href="/v1/catalog" { "Data catalogue (DCAT)" } }
                    h1 { (doc.info.title) " " small { (doc.info.version) } }
                    @if let Some(description) = &doc.info.description { (markdown(description)) }
                    p { "Machine-readable: " a href="/v1/openapi.json" { "/v1/openapi.json" } " (OpenAPI " (openapi_version(doc)) ")." }
                    section #sql-views {
                        h2 { "SQL views (" code { "POST /v1/sql" } ", analyst key)" }
                        table {
                            caption { "What one read-only SELECT may read" }
                            thead { tr { th scope="col" { "View" } th scope="col" { "Rows" } } }
                            tbody {
                                @for (view, what) in jiazheng_core::sql::views() {
                                    tr { td { code { (view) } } td { (what) } }
                                }
                            }
                        }
                    }
                    @for (method, path, op) in operations {
                        section id=(op.operation_id.clone().unwrap_or_default()) {
                            h2 { code { (method) " " (path) } }
                            @if let Some(summary) = &op.summary { (markdown(summary)) }
                            @if let Some(description) = &op.description { (markdown(description)) }
                            @if op.security.is_some() { p.key { "Needs a key: Authorization: Bearer jz_…" } }
                            @if let Some(params) = op.parameters.as_ref().filter(|p| !p.is_empty()) {
                                table {
                                    caption { "Parameters" }
                                    thead { tr { th scope="col" { "Name" } th scope="col" { "In" } th scope="col" { "Values" } th scope="col" { "Meaning" } } }
                                    tbody {
                                        @for p in params {
                                            tr {
                                                td { code { (p.name) } @if matches!(p.required, Required::True) { " *" } }
                                                td { (location(&p.parameter_in)) }
                                                td { (domain(p.schema.as_ref())) }
                                                td { (markdown_inline(&p.description.clone().unwrap_or_default())) }
                                            }
                                        }
                                    }
                                }
                            }
                            @if let Some(body) = &op.request_body {
                                p { "Body: " (body_types(body)) }
                                @if let Some(fields) = body_fields(doc, body).filter(|f| !f.is_empty()) {
                                    table {
                                        caption { "Request body" }
                                        thead { tr { th scope="col" { "Field" } th scope="col" { "Values" } th scope="col" { "Meaning" } } }
                                        tbody {
                                            @for (name, required, values, meaning) in fields {
                                                tr {
                                                    td { code { (name) } @if required { " *" } }
                                                    td { (values) }
                                                    td { (markdown_inline(&meaning)) }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                            table {
                                caption { "Answers" }
                                thead { tr { th scope="col" { "Status" } th scope="col" { "Meaning" } th scope="col" { "Types" } } }
                                tbody {
                                    @for (status, response) in &op.responses.responses {
                                        @if let RefOr::T(r) = response {
                                            tr {
                                                td { (status) }
                                                td { (markdown_inline(&r.description)) }
                                                td { (r.content.keys().cloned().collect::<Vec<_>>().join(", ")) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    markup.into_string()
}

/// The fields of a JSON request body: name, required, values and meaning, from its schema
/// (followed through one `$ref` into the components).
fn body_fields(doc: &Document, body: &RequestBody) -> Option<Vec<(String, bool, String, String)>> {
    let schema = body.content.get("application/json")?.schema.as_ref()?;
    let object = match schema {
        RefOr::Ref(r) => {
            let name = r.ref_location.rsplit('/').next()?;
            match doc.components.as_ref()?.schemas.get(name)? {
                RefOr::T(Schema::Object(object)) => object,
                _ => return None,
            }
        }
        RefOr::T(Schema::Object(object)) => object,
        _ => return None,
    };
    Some(
        object
            .properties
            .iter()
            .map(|(name, property)| {
                let (values, meaning) = match property {
                    RefOr::T(Schema::Object(p)) => (
                        domain(Some(property)),
                        p.description.clone().unwrap_or_default(),
                    ),
                    RefOr::T(Schema::Array(a)) => (
                        "array".to_string(),
                        a.description.clone().unwrap_or_default(),
                    ),
                    _ => (String::new(), String::new()),
                };
                (
                    name.clone(),
                    object.required.contains(name),
                    values,
                    meaning,
                )
            })
            .collect(),
    )
}

/// The Markdown the descriptions use: paragraphs, `code` and [links](url).
fn markdown(text: &str) -> maud::Markup {
    maud::html! {
        @for paragraph in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
            p { (markdown_inline(paragraph)) }
        }
    }
}

fn markdown_inline(text: &str) -> maud::Markup {
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        let code = rest.find('`');
        let link = rest.find('[');
        match (code, link) {
            (Some(c), l) if l.is_none_or(|l| c < l) => {
                let after = &rest[c + 1..];
                let Some(end) = after.find('`') else {
                    out.push_str(&escape(rest));
                    break;
                };
                out.push_str(&escape(&rest[..c]));
                out.push_str(&format!("<code>{}</code>", escape(&after[..end])));
                rest = &after[end + 1..];
            }
            (_, Some(l)) => {
                let parsed = rest[l + 1..].split_once("](").and_then(|(label, tail)| {
                    let (url, tail) = tail.split_once(')')?;
                    Some((label, url, tail))
                });
                match parsed {
                    Some((label, url, tail)) if !label.contains('[') => {
                        out.push_str(&escape(&rest[..l]));
                        out.push_str(&format!(
                            "<a href=\"{}\">{}</a>",
                            escape(url),
                            escape(label)
                        ));
                        rest = tail;
                    }
                    _ => {
                        out.push_str(&escape(&rest[..=l]));
                        rest = &rest[l + 1..];
                    }
                }
            }
            _ => {
                out.push_str(&escape(rest));
                break;
            }
        }
    }
    maud::PreEscaped(out)
}

fn escape(text: &str) -> String {
    maud::html! { (text) }.into_string()
}

fn openapi_version(doc: &Document) -> String {
    serde_json::to_value(&doc.openapi)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn location(p: &ParameterIn) -> &'static str {
    match p {
        ParameterIn::Path => "path",
        ParameterIn::Query => "query",
        ParameterIn::Header => "header",
        ParameterIn::Cookie => "cookie",
    }
}

fn body_types(body: &RequestBody) -> String {
    body.content.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// A short reading of a parameter's schema: its values, pattern or type.
fn domain(schema: Option<&RefOr<Schema>>) -> String {
    let Some(RefOr::T(Schema::Object(object))) = schema else {
        return String::new();
    };
    if let Some(values) = &object.enum_values {
        return values
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(" | ");
    }
    if let Some(pattern) = &object.pattern {
        return format!("pattern {pattern}");
    }
    serde_json::to_value(&object.schema_type)
        .ok()
        .map(|v| match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        })
        .unwrap_or_default()
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1a1a1a;background:#fff}\
main{max-width:60rem;margin:auto;padding:1rem}\
h2{font-size:1.05rem;margin-top:2rem;border-top:1px solid #ccc;padding-top:1rem}\
table{border-collapse:collapse;width:100%;margin:.5rem 0}caption{text-align:left;font-weight:600}\
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}\
code{background:#f2f2f2;padding:0 .2rem}.key{color:#8a3b00}small{color:#555}";
