//! Record-level open data: the rows of `enterprises`, `outlets`, `trainings` and `shops`, with
//! filters, sorting and cursor pagination, and a bulk download of a whole period. `workers`
//! are never served; `complaints` only as indicators.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use deltalake::arrow::datatypes::DataType;
use deltalake::datafusion::prelude::{DataFrame, Expr, SessionContext, col, lit};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

use super::params::Params;
use super::tabular::{Format, Table};
use super::{ApiError, AppState, Source, Stamp};
use jiazheng_core::datasets::{self, Dataset, Field, Kind, Openness, columns};
use jiazheng_core::lake::{self, names};
use jiazheng_core::periods::Period;
use jiazheng_core::plausibility::{self, Rule};
use jiazheng_core::regions::{COUNTRY_CODE, Level};
use jiazheng_core::sheets::Cell;
use jiazheng_core::validate::values::read_bool;

/// Rows per page unless `limit` says otherwise, and the most a page may hold.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Serialize, utoipa::ToSchema)]
pub struct DatasetInfo {
    name: &'static str,
    zh: &'static str,
    en: &'static str,
    openness: Openness,
    /// The field unique within a file.
    key: &'static str,
    fields: &'static [Field],
    /// What one submitted file may hold; a file past any of these is refused.
    limits: datasets::Limits,
    /// The plausibility rules an accepted file is checked against, with their thresholds;
    /// what they find is a warning in the file's report.
    plausibility: Vec<&'static Rule>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DatasetList {
    datasets: Vec<DatasetInfo>,
}

/// Every dataset, how open it is, and its fields.
#[utoipa::path(get, path = "/v1/datasets", tag = "datasets",
    responses((status = 200, description = "The datasets", body = DatasetList)))]
pub async fn list() -> (Extension<Stamp>, Json<DatasetList>) {
    let all: Vec<DatasetInfo> = datasets::ALL
        .iter()
        .map(|d| DatasetInfo {
            name: d.name,
            zh: d.zh,
            en: d.en,
            openness: d.openness,
            key: d.key,
            fields: d.fields,
            limits: d.limits(),
            plausibility: plausibility::of(d).collect(),
        })
        .collect();
    (
        Extension(super::build_stamp()),
        Json(DatasetList { datasets: all }),
    )
}

pub(crate) fn open_dataset(name: &str) -> Result<&'static Dataset, ApiError> {
    let dataset =
        datasets::by_name(name).ok_or_else(|| ApiError::UnknownDataset(name.to_string()))?;
    match dataset.openness {
        Openness::Records => Ok(dataset),
        Openness::Aggregates => Err(ApiError::Forbidden(format!(
            "{} is published only as indicators (GET /v1/indicators)",
            dataset.name
        ))),
        Openness::Closed => Err(ApiError::Forbidden(format!(
            "{} holds personal data and is never published record by record",
            dataset.name
        ))),
    }
}

/// The columns a record shows: its declared fields, then where and from which submission.
fn record_columns(dataset: &Dataset) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = dataset.fields.iter().map(|f| f.name).collect();
    out.extend([columns::COUNTY, columns::PERIOD, columns::SUBMISSION]);
    out
}

/// An equality filter on a field, from its query-string value; a value the field can never
/// hold is refused, so that a typo does not pass for an empty answer.
fn field_filter(field: &Field, value: &str) -> Result<Expr, ApiError> {
    let bad = || ApiError::BadQuery(format!("{value:?} is not a value of {}", field.name));
    Ok(match field.kind {
        Kind::Bool => {
            col(field.name).eq(lit(read_bool(&Cell::Text(value.into())).ok_or_else(bad)?))
        }
        Kind::Count { min } => col(field.name).eq(lit(value
            .parse::<i64>()
            .ok()
            .filter(|v| *v >= min)
            .ok_or_else(bad)?)),
        Kind::Enum { choices } | Kind::EnumList { choices } => {
            let code = choices
                .iter()
                .find(|c| c.code == value || c.zh == value)
                .ok_or_else(bad)?
                .code;
            if matches!(field.kind, Kind::EnumList { .. }) {
                deltalake::datafusion::functions_nested::expr_fn::array_has(
                    col(field.name),
                    lit(code),
                )
            } else {
                col(field.name).eq(lit(code))
            }
        }
        Kind::Date | Kind::Amount | Kind::IdNumber => {
            return Err(ApiError::BadQuery(format!(
                "cannot filter on {}",
                field.name
            )));
        }
        Kind::Text { .. } | Kind::CreditCode | Kind::CountyCode | Kind::CommunityCode => {
            col(field.name).eq(lit(value.to_string()))
        }
    })
}

/// A page position: the table version it started from and the offset; pages of one cursor
/// chain read the same version, so they neither skip nor repeat rows while files land.
fn parse_cursor(cursor: &str) -> Result<(i64, usize), ApiError> {
    let bad = || ApiError::BadQuery(format!("{cursor:?} is not a cursor from a previous page"));
    let (version, offset) = cursor.split_once('.').ok_or_else(bad)?;
    Ok((
        version.parse().map_err(|_| bad())?,
        offset.parse().map_err(|_| bad())?,
    ))
}

/// Rows of a dataset, filtered and sorted in DataFusion, with the table version read.
pub(crate) async fn query_rows(
    state: &AppState,
    dataset: &'static Dataset,
    period: Period,
    query: &RecordQuery,
    fields: &HashMap<String, String>,
    version: Option<i64>,
    page: Option<(usize, usize)>,
) -> Result<(Table, i64), ApiError> {
    sort_of(dataset, query)?;
    let (frame, version) = matching(state, dataset, period, query, fields, version).await?;
    let table = match frame {
        Some(frame) => page_of(frame, dataset, query, page).await?,
        None => empty(dataset),
    };
    Ok((table, version))
}

/// The rows of a period inside the query's region whose fields equal the query's, as a
/// DataFusion frame over the table version read (`None` before any file landed).
async fn matching(
    state: &AppState,
    dataset: &'static Dataset,
    period: Period,
    query: &RecordQuery,
    fields: &HashMap<String, String>,
    version: Option<i64>,
) -> Result<(Option<DataFrame>, i64), ApiError> {
    let mut filter = col(columns::PERIOD).eq(lit(period.to_string()));
    if let Some(code) = &query.region {
        let tree = state.regions().await?;
        let region = tree
            .resolve(code)
            .ok_or_else(|| ApiError::UnknownRegion(code.clone()))?;
        // The county partition first, so that only the region's files are opened.
        let county = region.prefix.at(Level::County).unwrap_or(&region.prefix);
        filter = filter
            .and(col(columns::COUNTY).like(lit(format!("{county}%"))))
            .and(col(dataset.region_field).like(lit(region.prefix.like())));
    }
    for (key, value) in fields {
        if let Some(field) = dataset.field(key) {
            filter = filter.and(field_filter(field, value)?);
        }
    }
    let name = names::dataset(dataset.name);
    let table = match version {
        Some(v) => {
            let latest = state.lake().versions(&[name.as_str()]).await?;
            if latest.get(&name).is_none_or(|latest| v < 0 || v > *latest) {
                return Err(ApiError::StaleCursor(format!("{v}")));
            }
            state.lake().load_version(&name, v).await?
        }
        None => state.lake().load(&name).await?,
    };
    let Some(table) = table else {
        return Ok((None, -1));
    };
    let version = table.version().map_or(-1, |v| v as i64);
    let ctx = SessionContext::new();
    lake::register(&ctx, &name, &table).await?;
    let frame = ctx
        .table(dataset.name)
        .await
        .map_err(lake::LakeError::from)?
        .filter(filter)
        .map_err(lake::LakeError::from)?;
    Ok((Some(frame), version))
}

/// No rows, in the columns a record shows.
fn empty(dataset: &Dataset) -> Table {
    let fields: Vec<_> = record_columns(dataset)
        .iter()
        .map(|c| {
            let kind = dataset
                .field(c)
                .map_or(DataType::Utf8, |f| f.kind.data_type());
            deltalake::arrow::datatypes::Field::new(*c, kind, true)
        })
        .collect();
    let schema = deltalake::arrow::datatypes::Schema::new(fields);
    Table::from_batches(schema.into(), Vec::new())
}

/// The field a query sorts by and whether ascending: the dataset's key unless it names a
/// field (`-field` for descending); refused for a list or an unknown field, table or not.
fn sort_of(dataset: &Dataset, query: &RecordQuery) -> Result<(&'static str, bool), ApiError> {
    Ok(match query.sort.as_deref() {
        Some(s) => {
            let (name, ascending) = s.strip_prefix('-').map_or((s, true), |n| (n, false));
            let field = dataset
                .field(name)
                .filter(|f| !matches!(f.kind, Kind::EnumList { .. }))
                .ok_or_else(|| ApiError::BadQuery(format!("cannot sort by {name:?}")))?;
            (field.name, ascending)
        }
        None => (dataset.key, true),
    })
}

/// The matching rows sorted as asked (then by the key, so pages are stable), one page of them.
async fn page_of(
    frame: DataFrame,
    dataset: &'static Dataset,
    query: &RecordQuery,
    page: Option<(usize, usize)>,
) -> Result<Table, ApiError> {
    let (sort_field, ascending) = sort_of(dataset, query)?;
    let mut frame = frame
        .select_columns(&record_columns(dataset))
        .map_err(lake::LakeError::from)?
        .sort(vec![
            col(sort_field).sort(ascending, false),
            col(dataset.key).sort(true, false),
        ])
        .map_err(lake::LakeError::from)?;
    if let Some((offset, limit)) = page {
        frame = frame
            .limit(offset, Some(limit))
            .map_err(lake::LakeError::from)?;
    }
    let schema = frame.schema().inner().clone();
    let batches = frame.collect().await.map_err(lake::LakeError::from)?;
    Ok(Table::from_batches(schema, batches))
}

/// The fields a dataset can be faceted by: its choices and yes/no fields, and the county.
pub(crate) fn facetable(dataset: &Dataset) -> Vec<&'static str> {
    dataset
        .fields
        .iter()
        .filter(|f| f.kind.is_categorical())
        .map(|f| f.name)
        .chain([columns::COUNTY])
        .collect()
}

/// Values of a facet listed at most (the counties of a province are fewer).
const FACET_VALUES: usize = 200;

/// One value of a facet and how many matching rows have it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FacetValue {
    pub value: String,
    pub count: i64,
}

/// How many matching rows have each value of each facet (a list counts once per item), most
/// frequent first: Datasette's facets, computed by DataFusion over the same filter as the rows.
async fn facets(
    frame: &DataFrame,
    dataset: &Dataset,
    names: &[&'static str],
) -> Result<BTreeMap<String, Vec<FacetValue>>, ApiError> {
    use deltalake::arrow::util::display::{ArrayFormatter, FormatOptions};
    use deltalake::datafusion::functions_aggregate::expr_fn::count;
    let mut out = BTreeMap::new();
    for &name in names {
        let mut values = frame
            .clone()
            .select_columns(&[name])
            .map_err(lake::LakeError::from)?;
        if dataset
            .field(name)
            .is_some_and(|f| matches!(f.kind, Kind::EnumList { .. }))
        {
            values = values
                .unnest_columns(&[name])
                .map_err(lake::LakeError::from)?;
        }
        let batches = values
            .filter(col(name).is_not_null())
            .map_err(lake::LakeError::from)?
            .aggregate(vec![col(name)], vec![count(lit(1)).alias("n")])
            .map_err(lake::LakeError::from)?
            .sort(vec![
                col("n").sort(false, false),
                col(name).sort(true, false),
            ])
            .map_err(lake::LakeError::from)?
            .limit(0, Some(FACET_VALUES))
            .map_err(lake::LakeError::from)?
            .collect()
            .await
            .map_err(lake::LakeError::from)?;
        let mut counted = Vec::new();
        for batch in &batches {
            let options = FormatOptions::default();
            let shown = ArrayFormatter::try_new(batch.column(0).as_ref(), &options)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let counts = batch
                .column(1)
                .as_any()
                .downcast_ref::<deltalake::arrow::array::Int64Array>()
                .ok_or_else(|| ApiError::Internal("a count is not an integer".into()))?;
            for row in 0..batch.num_rows() {
                counted.push(FacetValue {
                    value: shown.value(row).to_string(),
                    count: counts.value(row),
                });
            }
        }
        out.insert(name.to_string(), counted);
    }
    Ok(out)
}

/// The parameters of a page of records besides the dataset's own fields (which filter by
/// equality: `?mode=embedded`).
#[derive(Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordQuery {
    /// Half-year, e.g. `2023H2` (default: the latest published).
    #[param(value_type = Option<String>)]
    pub(crate) period: Option<Period>,
    /// Only rows inside this region (default: the country).
    pub(crate) region: Option<String>,
    /// A field to sort by, `-field` for descending (default: the dataset's key).
    pub(crate) sort: Option<String>,
    /// Rows per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub(crate) limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
    /// Fields to count the matching rows by, comma-separated (`mode,services,county`): the
    /// dataset's choice and yes/no fields and `county` (whose values filter as `region=`).
    /// JSON only.
    pub(crate) facets: Option<String>,
    pub(crate) format: Option<Format>,
}

/// Names a query string may use besides the dataset's fields.
pub(crate) const PARAMS: [&str; 7] = [
    "period", "region", "sort", "limit", "cursor", "facets", "format",
];

/// A page of records, or a whole period.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Records {
    dataset: &'static str,
    period: String,
    region: String,
    /// The table version read; later pages of the same cursor read it too.
    table_version: i64,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
    /// Rows matching the filters, on every page (for a whole period: every row).
    matched: usize,
    /// The records: the dataset's fields, then `county`, `period` and `submission_id`.
    data: Vec<serde_json::Map<String, serde_json::Value>>,
    /// With `facets=`: for each field asked, how many matching rows (all pages) have each
    /// value, most frequent first.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    facets: BTreeMap<String, Vec<FacetValue>>,
}

/// The facets a query asks for, each one the dataset can be counted by.
pub(crate) fn facet_names(
    dataset: &Dataset,
    asked: Option<&str>,
) -> Result<Vec<&'static str>, ApiError> {
    let allowed = facetable(dataset);
    let mut names = Vec::new();
    for name in asked.into_iter().flat_map(|a| a.split(',')) {
        let name = allowed.iter().find(|a| **a == name).ok_or_else(|| {
            ApiError::BadQuery(format!(
                "{} cannot be faceted by {name:?}; it can by {}",
                dataset.name,
                allowed.join(", ")
            ))
        })?;
        if !names.contains(name) {
            names.push(*name);
        }
    }
    Ok(names)
}

fn check_params(dataset: &Dataset, params: &HashMap<String, String>) -> Result<(), ApiError> {
    match params
        .keys()
        .find(|k| !PARAMS.contains(&k.as_str()) && dataset.field(k).is_none())
    {
        Some(unknown) => Err(ApiError::BadQuery(format!(
            "{unknown:?} is neither a parameter nor a field of {}",
            dataset.name
        ))),
        None => Ok(()),
    }
}

/// Records of an open dataset, filtered by any field, sorted and paged with a cursor. The
/// document lists one path per open dataset with its own fields.
#[utoipa::path(get, path = "/v1/datasets/{dataset}", tag = "datasets",
    params(("dataset" = String, Path, description = "An open dataset"), RecordQuery),
    responses((status = 200, description = "A page of records", content(
        (Records = "application/json"),
        (String = "text/csv"),
        (Vec<u8> = "application/vnd.apache.parquet")))))]
pub async fn records(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Params(q): Params<RecordQuery>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format = Format::negotiate(q.format, &headers);
    let dataset = open_dataset(&name)?;
    let mut asked = facet_names(dataset, q.facets.as_deref())?;
    if format != Format::Json {
        asked.clear();
    }
    let page = read_page(&state, dataset, &q, &params, &asked).await?;
    let region = q.region.clone();
    let period = page.period;
    let version = page.version;
    let json = |table: &Table| {
        Ok(Records {
            dataset: dataset.name,
            period: period.to_string(),
            region: region.unwrap_or_else(|| COUNTRY_CODE.to_string()),
            table_version: version,
            next_cursor: page.next_cursor,
            matched: page.matched,
            data: table.to_json_rows()?,
            facets: page.facets,
        })
    };
    let stamp = Stamp::of([Source::Table(dataset.name, version)]);
    let name = format!("{}-{period}", dataset.name);
    Ok((Extension(stamp), page.table.respond(format, json, &name)?).into_response())
}

/// A page of records as the API and the dataset pages show it.
pub(crate) struct RecordPage {
    pub period: Period,
    pub table: Table,
    pub version: i64,
    pub next_cursor: Option<String>,
    /// Rows matching the filters, on every page.
    pub matched: usize,
    pub facets: BTreeMap<String, Vec<FacetValue>>,
}

/// The page a query asks for (its period, filters, sort, cursor and limit) and the counts of
/// the facets named, over every matching row.
pub(crate) async fn read_page(
    state: &AppState,
    dataset: &'static Dataset,
    q: &RecordQuery,
    params: &HashMap<String, String>,
    facet_names: &[&'static str],
) -> Result<RecordPage, ApiError> {
    check_params(dataset, params)?;
    let period = state.published().await?.period_or_latest(q.period)?;
    let limit = match q.limit {
        Some(l) if (1..=MAX_LIMIT as u32).contains(&l) => l as usize,
        Some(_) => return Err(ApiError::BadQuery(format!("limit is 1 to {MAX_LIMIT}"))),
        None => DEFAULT_LIMIT,
    };
    let (version, offset) = match q.cursor.as_deref() {
        Some(c) => {
            let (v, o) = parse_cursor(c)?;
            (Some(v), o)
        }
        None => (None, 0),
    };
    sort_of(dataset, q)?;
    let (frame, version) = matching(state, dataset, period, q, params, version).await?;
    // One row more than the page tells whether there is a next page.
    let (table, matched, facets) = match frame {
        Some(frame) => (
            page_of(frame.clone(), dataset, q, Some((offset, limit + 1))).await?,
            frame.clone().count().await.map_err(lake::LakeError::from)?,
            facets(&frame, dataset, facet_names).await?,
        ),
        None => (empty(dataset), 0, BTreeMap::new()),
    };
    let next_cursor = (table.num_rows() > limit).then(|| format!("{version}.{}", offset + limit));
    Ok(RecordPage {
        period,
        table: table.head(limit),
        version,
        next_cursor,
        matched,
        facets,
    })
}

/// A whole period of an open dataset in one file: `{period}.csv`, `.parquet` or `.json`.
#[utoipa::path(get, path = "/v1/datasets/{dataset}/{file}", tag = "datasets",
    params(("dataset" = String, Path, description = "An open dataset"),
        ("file" = String, Path, description = "`{period}.{csv|parquet|json}`", example = "2023H2.csv")),
    responses((status = 200, description = "Every record of the period", content(
        (Records = "application/json"),
        (String = "text/csv"),
        (Vec<u8> = "application/vnd.apache.parquet")))))]
pub async fn bulk(
    State(state): State<AppState>,
    Path((name, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let dataset = open_dataset(&name)?;
    let (period, extension) = file
        .rsplit_once('.')
        .ok_or_else(|| ApiError::BadFormat(file.clone()))?;
    let format = Format::of_extension(extension)?;
    let period: Period = super::params::value("period", period)?;
    let (table, version) = query_rows(
        &state,
        dataset,
        period,
        &RecordQuery::default(),
        &HashMap::new(),
        None,
        None,
    )
    .await?;
    let json = |table: &Table| {
        Ok(Records {
            dataset: dataset.name,
            period: period.to_string(),
            region: COUNTRY_CODE.to_string(),
            table_version: version,
            next_cursor: None,
            matched: table.num_rows(),
            data: table.to_json_rows()?,
            facets: BTreeMap::new(),
        })
    };
    let stamp = Stamp::of([Source::Table(dataset.name, version)]);
    let name = format!("{}-{period}", dataset.name);
    Ok((Extension(stamp), table.respond(format, json, &name)?).into_response())
}
