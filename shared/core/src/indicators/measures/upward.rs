//! The measures of a dataset about people, counted once at the finest level and carried up.
//!
//! Grouped by every level at once (GROUPING SETS), DataFusion aggregated each of a million
//! workers five times — country, province, city, county, street — into every people set of the
//! query, hashing the row's group key each time. Here the query groups by county and street
//! only and returns each people count as its set ([`people::PEOPLE_SET`]): a county is the union
//! of its streets' sets (and of its rows without a street), a city the union of its counties',
//! and so up to the country; sums add. As exact as before: a union holds each person once.

use std::collections::{BTreeSet, HashMap};

use deltalake::arrow::array::{Array, AsArray, BinaryArray, Float64Array};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::DataType;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::datafusion::prelude::SessionContext;

use super::{
    Indicator, Lineage, Measured, Measures, aggregates, breakdown_sql, insert, period_rows,
    strings_of,
};
use crate::datasets::{Dataset, columns};
use crate::indicators::people::{self, Members};
use crate::lake::{LakeError, read};
use crate::periods::Period;
use crate::regions::Level;

/// Measures `group` over a dataset about people: the whole period at every level, or some
/// `counties` at theirs and their streets'. `None` when the lineage was read as one submission
/// per county and a county or street has two.
pub(super) async fn measure(
    ctx: &SessionContext,
    dataset: &Dataset,
    group: &[&'static Indicator],
    period: Period,
    counties: Option<&BTreeSet<String>>,
    lineage: Lineage,
) -> Result<Option<Measures>, LakeError> {
    let aggregates = Aggregates::of(dataset, group);
    let sql = query(dataset, group, period, counties, lineage, &aggregates);
    let batches = ctx.sql(&sql).await?.collect().await?;
    let Some(finest) = read_finest(&batches, lineage)? else {
        return Ok(None);
    };
    // Above the counties only when the whole period is measured.
    let above: &[Level] = match counties {
        None => &[Level::City, Level::Province, Level::Country],
        Some(_) => &[],
    };
    let mut out = Measures::new();
    for (
        breakdown,
        Finest {
            streets,
            counties: county_rows,
        },
    ) in finest
    {
        let mut record = |prefix: &str, tally: &mut Tally| {
            let numbers: Vec<f64> = tally.values.iter_mut().map(Value::number).collect();
            let submissions: Vec<String> = tally.submissions.iter().cloned().collect();
            for (indicator, &(numerator, denominator)) in group.iter().zip(&aggregates.of) {
                let measured = Measured {
                    numerator: numbers[numerator],
                    denominator: numbers[denominator],
                    population: numbers[aggregates.population],
                    submissions: submissions.clone(),
                };
                insert(&mut out, indicator.id, &breakdown, prefix, measured);
            }
        };
        let mut level = county_rows;
        for (county, street, mut tally) in streets {
            record(&street, &mut tally);
            level.entry(county).or_default().add(tally);
        }
        // The counties, then each level above: every region counted, then added to its parent.
        for step in 0..=above.len() {
            let parent = above.get(step);
            let mut parents: HashMap<String, Tally> = HashMap::new();
            for (prefix, mut tally) in level {
                let county = step == 0;
                if county && lineage == Lineage::OnePerCounty && tally.submissions.len() > 1 {
                    return Ok(None);
                }
                record(&prefix, &mut tally);
                if let Some(up) = parent.and_then(|p| prefix.get(..p.digits())) {
                    parents.entry(up.to_string()).or_default().add(tally);
                }
            }
            level = parents;
        }
    }
    Ok(Some(out))
}

/// The distinct aggregates of a group's query, each computed once (every indicator about
/// workers divides by the same count of workers, which is also the population), and where each
/// indicator finds its numerator and denominator among them.
struct Aggregates {
    /// Each aggregate as the query selects it: a people set, or a sum as a double.
    sql: Vec<String>,
    population: usize,
    /// Each indicator's numerator and denominator, as positions in `sql`.
    of: Vec<(usize, usize)>,
}

impl Aggregates {
    fn of(dataset: &Dataset, group: &[&Indicator]) -> Aggregates {
        let mut sql = Vec::new();
        let population = position(&mut sql, &format!("COUNT(DISTINCT {})", dataset.key));
        let of = group
            .iter()
            .map(|indicator| {
                let (numerator, denominator) = aggregates(indicator);
                (
                    position(&mut sql, numerator),
                    position(&mut sql, denominator),
                )
            })
            .collect();
        Aggregates {
            sql,
            population,
            of,
        }
    }
}

/// Where `aggregate` is among `sql`, added if it is not yet. A count of people is gathered as
/// its set; anything else must add up across regions (a count or a sum: the catalogue's test
/// `people_measures_are_sets_or_sums` holds it to that).
fn position(sql: &mut Vec<String>, aggregate: &str) -> usize {
    let selected =
        people::set_of(aggregate).unwrap_or_else(|| format!("CAST({aggregate} AS DOUBLE)"));
    match sql.iter().position(|s| *s == selected) {
        Some(at) => at,
        None => {
            sql.push(selected);
            sql.len() - 1
        }
    }
}

/// The query: one group per county and street (and breakdown value); a row without a street
/// code counts for its county only.
fn query(
    dataset: &Dataset,
    group: &[&Indicator],
    period: Period,
    counties: Option<&BTreeSet<String>>,
    lineage: Lineage,
    aggregates: &Aggregates,
) -> String {
    let street = group[0].finest_level() == Level::Street;
    let (street, mut keys) = match street {
        true => (
            format!("substr({}, 1, 9)", dataset.region_field),
            vec!["l6", "l9"],
        ),
        false => ("CAST(NULL AS VARCHAR)".to_string(), vec!["l6"]),
    };
    keys.extend(group[0].breakdown);
    let selected: Vec<String> = aggregates
        .sql
        .iter()
        .enumerate()
        .map(|(k, sql)| format!("{sql} AS a{k}"))
        .collect();
    format!(
        "SELECT l6, l9, {breakdown} AS breakdown, {lineage} AS submissions, {selected} \
         FROM (SELECT *, {county} AS l6, {street} AS l9 FROM ({rows}) AS period_rows) AS base \
         GROUP BY {keys}",
        breakdown = breakdown_sql(group),
        lineage = lineage.sql(),
        selected = selected.join(", "),
        county = columns::COUNTY,
        rows = period_rows(dataset, period, counties),
        keys = keys.join(", "),
    )
}

/// What the query returned for one breakdown value.
#[derive(Default)]
struct Finest {
    /// Each street's tally, with its county.
    streets: Vec<(String, String, Tally)>,
    /// Each county's rows without a street.
    counties: HashMap<String, Tally>,
}

/// The query's rows by breakdown value; `None` as for [`measure`].
fn read_finest(
    batches: &[RecordBatch],
    lineage: Lineage,
) -> Result<Option<HashMap<String, Finest>>, LakeError> {
    let mut out: HashMap<String, Finest> = HashMap::new();
    for batch in batches {
        let county = read::text(batch, 0)?;
        let street = read::text(batch, 1)?;
        let breakdown = read::text(batch, 2)?;
        let aggregates = (4..batch.num_columns())
            .map(|c| Column::of(batch, c))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let submissions: BTreeSet<String> = strings_of(batch.column(3).as_ref(), row)?
                .into_iter()
                .collect();
            if lineage == Lineage::OnePerCounty && submissions.len() > 1 {
                return Ok(None);
            }
            let tally = Tally {
                values: aggregates
                    .iter()
                    .map(|column| column.value(row))
                    .collect::<Result<_, _>>()?,
                submissions,
            };
            let finest = out.entry(breakdown.value(row).to_string()).or_default();
            let county = county.value(row).to_string();
            if street.is_valid(row) {
                let street = street.value(row).to_string();
                finest.streets.push((county, street, tally));
            } else {
                finest.counties.entry(county).or_default().add(tally);
            }
        }
    }
    Ok(Some(out))
}

/// An aggregate's column as the query returned it.
enum Column {
    Sets(BinaryArray),
    Sums(Float64Array),
}

impl Column {
    fn of(batch: &RecordBatch, column: usize) -> Result<Column, LakeError> {
        let array = batch.column(column);
        Ok(match array.data_type() {
            DataType::Binary | DataType::BinaryView | DataType::LargeBinary => {
                Column::Sets(cast(array, &DataType::Binary)?.as_binary::<i32>().clone())
            }
            _ => Column::Sums(read::float(batch, column)?),
        })
    }

    fn value(&self, row: usize) -> Result<Value, LakeError> {
        Ok(match self {
            Column::Sets(sets) if sets.is_valid(row) => {
                Value::People(Members::decode(sets.value(row))?)
            }
            Column::Sets(_) => Value::People(Members::default()),
            Column::Sums(sums) if sums.is_valid(row) => Value::Sum(sums.value(row)),
            Column::Sums(_) => Value::Sum(0.0),
        })
    }
}

/// One aggregate of a region before it is counted.
enum Value {
    People(Members),
    Sum(f64),
}

impl Value {
    fn number(&mut self) -> f64 {
        match self {
            Value::People(members) => members.len() as f64,
            Value::Sum(sum) => *sum,
        }
    }

    fn add(&mut self, other: Value) {
        match (self, other) {
            (Value::People(mine), Value::People(theirs)) => mine.union(theirs),
            (Value::Sum(mine), Value::Sum(theirs)) => *mine += theirs,
            // An aggregate's column holds one kind of value.
            _ => {}
        }
    }
}

/// A region's aggregates and the submissions its rows came from.
#[derive(Default)]
struct Tally {
    values: Vec<Value>,
    submissions: BTreeSet<String>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        if self.values.is_empty() {
            self.values = other.values;
        } else {
            for (mine, theirs) in self.values.iter_mut().zip(other.values) {
                mine.add(theirs);
            }
        }
        self.submissions.extend(other.submissions);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use deltalake::arrow::array::{ArrayRef, BooleanArray, StringArray};
    use deltalake::arrow::datatypes::{Field, Schema};

    use super::*;
    use crate::datasets::{Openness, WORKERS};
    use crate::indicators::CATALOGUE;
    use crate::indicators::measures::groups;

    fn workers_group() -> Vec<&'static Indicator> {
        groups()
            .into_iter()
            .find(|g| g[0].dataset().is_some_and(|d| d.name == WORKERS.name))
            .unwrap()
    }

    /// Carrying a measure up is right only for a set of people or for what adds up: a count or
    /// a sum. Any other aggregate in a dataset about people needs the query's GROUPING SETS.
    #[test]
    fn people_measures_are_sets_or_sums() {
        let ctx = SessionContext::new();
        let state = ctx.state();
        let others: Vec<String> = state
            .aggregate_functions()
            .keys()
            .map(|name| format!("{}(", name.to_uppercase()))
            .filter(|name| name != "COUNT(" && name != "SUM(")
            .collect();
        let about_people = CATALOGUE
            .iter()
            .filter(|i| i.dataset().is_some_and(|d| d.openness == Openness::Closed));
        for indicator in about_people {
            let (numerator, denominator) = aggregates(indicator);
            for sql in [numerator, denominator] {
                if let Some(set) = people::set_of(sql) {
                    assert!(!set.to_uppercase().contains("DISTINCT"), "{sql}");
                    continue;
                }
                let sql = sql.to_uppercase();
                assert!(!sql.contains("DISTINCT"), "{sql}");
                assert!(!others.iter().any(|other| sql.contains(other)), "{sql}");
            }
        }
    }

    /// Each distinct aggregate is gathered once, people as sets, by county and street only.
    #[test]
    fn the_query_groups_by_street_and_gathers_each_set_once() {
        let group = workers_group();
        let aggregates = Aggregates::of(&WORKERS, &group);
        let sql = query(
            &WORKERS,
            &group,
            "2023H2".parse().unwrap(),
            None,
            Lineage::OnePerCounty,
            &aggregates,
        );
        assert_eq!(sql.matches("people_set(id_number)").count(), 1, "{sql}");
        assert!(!sql.to_uppercase().contains("COUNT(DISTINCT"), "{sql}");
        assert!(!sql.contains("GROUPING SETS"), "{sql}");
        assert!(sql.ends_with("GROUP BY l6, l9"), "{sql}");
        // One set of everyone (each denominator and the population), one per numerator, and
        // the zero of the counts without a denominator.
        assert_eq!(
            aggregates.sql.len(),
            1 + group.len() + 1,
            "{:?}",
            aggregates.sql
        );
    }

    /// A row of the workers table, as far as the query reads it.
    struct Row {
        county: &'static str,
        community: String,
        person: u8,
        card: bool,
        skill: &'static str,
        origin: &'static str,
        submission: String,
    }

    /// Workers spread so that some serve in two streets of a county, two counties of a city
    /// and two provinces; a county's rows from two files.
    fn rows() -> Vec<Row> {
        let counties = ["150102", "150103", "152201", "110101"];
        let skills = ["none", "level5", "level3"];
        let origins = [
            "resident",
            "rural_migrant",
            "poverty_alleviated",
            "graduate",
        ];
        let mut seed = 7u64;
        let mut next = |below: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % below
        };
        (0..400)
            .map(|_| {
                let county = counties[next(4) as usize];
                let street = next(3);
                let community = format!("{county}00{street}00{}", next(2) + 1);
                let submission = if county == "110101" && street == 2 {
                    "s-110101-b".to_string()
                } else {
                    format!("s-{county}")
                };
                Row {
                    county,
                    community,
                    person: next(60) as u8,
                    card: next(2) == 0,
                    skill: skills[next(3) as usize],
                    origin: origins[next(4) as usize],
                    submission,
                }
            })
            .collect()
    }

    async fn lake_of_rows(dir: &std::path::Path) -> SessionContext {
        let rows = rows();
        let text = |f: &dyn Fn(&Row) -> String| {
            Arc::new(StringArray::from_iter_values(rows.iter().map(f))) as ArrayRef
        };
        let people: Vec<[u8; 32]> = rows.iter().map(|r| [r.person; 32]).collect();
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("period", text(&|_| "2023H2".to_string())),
            ("county", text(&|r| r.county.to_string())),
            ("community_code", text(&|r| r.community.clone())),
            (
                "id_number",
                Arc::new(BinaryArray::from_iter_values(people)) as ArrayRef,
            ),
            (
                "has_service_card",
                Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.card)))),
            ),
            ("skill_level", text(&|r| r.skill.to_string())),
            ("origin", text(&|r| r.origin.to_string())),
            ("submission_id", text(&|r| r.submission.clone())),
        ];
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|(name, array)| Field::new(*name, array.data_type().clone(), false))
                .collect::<Vec<_>>(),
        ));
        let batch =
            RecordBatch::try_new(schema.clone(), columns.into_iter().map(|c| c.1).collect())
                .unwrap();
        let lake = crate::lake::Lake::open(dir.to_str().unwrap()).unwrap();
        let mut staged = lake
            .stage("tables/workers", &schema, &["county".into()])
            .unwrap();
        staged.write(batch).await.unwrap();
        let counties: BTreeSet<String> = rows.iter().map(|r| r.county.to_string()).collect();
        let scope = [("county", counties.into_iter().collect::<Vec<_>>())];
        staged
            .commit_replacing(&scope, Default::default())
            .await
            .unwrap();
        let ctx = lake.session(&["tables/workers"]).await.unwrap().ctx;
        people::register(&ctx, 0);
        ctx
    }

    /// Every value at every level equals DataFusion's own `COUNT(DISTINCT …)` over the stored
    /// bytes of the region's rows: no numbering, no sets carried up.
    #[tokio::test]
    async fn carried_up_counts_equal_distinct_counts_of_each_region() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = lake_of_rows(dir.path()).await;
        let group = workers_group();
        let period: Period = "2023H2".parse().unwrap();
        let measure_with = |lineage| measure(&ctx, &WORKERS, &group, period, None, lineage);
        assert!(
            measure_with(Lineage::OnePerCounty).await.unwrap().is_none(),
            "110101's rows come from two files"
        );
        let measures = measure_with(Lineage::Listed).await.unwrap().unwrap();
        let regions: BTreeSet<String> = rows()
            .iter()
            .flat_map(|r| [0, 2, 4, 6, 9].map(|digits| r.community[..digits].to_string()))
            .collect();
        assert_eq!(regions.len(), 1 + 2 + 3 + 4 + 12);
        for prefix in &regions {
            let within = format!("substr(community_code, 1, {}) = '{prefix}'", prefix.len());
            for indicator in &group {
                let (numerator, denominator) = aggregates(indicator);
                let sql = format!(
                    "SELECT CAST({numerator} AS DOUBLE) AS n, CAST({denominator} AS DOUBLE) AS d, \
                     CAST(COUNT(DISTINCT id_number) AS DOUBLE) AS people \
                     FROM workers WHERE {within}"
                );
                let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
                let want: Vec<f64> = (0..3)
                    .map(|c| read::float(&batches[0], c).unwrap().value(0))
                    .collect();
                let got = &measures[indicator.id][""][prefix];
                assert_eq!(
                    [got.numerator, got.denominator, got.population],
                    want[..],
                    "{} in {prefix:?}",
                    indicator.id
                );
            }
        }
        let lineage = |prefix: &str| measures["credential_rate"][""][prefix].submissions.clone();
        assert_eq!(lineage("110101"), ["s-110101", "s-110101-b"]);
        assert_eq!(lineage("150102001"), ["s-150102"]);
        assert_eq!(lineage("1501"), ["s-150102", "s-150103"]);
        assert_eq!(lineage("").len(), 5);
    }

    /// Some counties alone: their values and their streets', nothing above.
    #[tokio::test]
    async fn some_counties_are_carried_no_higher_than_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = lake_of_rows(dir.path()).await;
        let group = workers_group();
        let counties: BTreeSet<String> = ["150102".to_string()].into();
        let period = "2023H2".parse().unwrap();
        let measures = measure(
            &ctx,
            &WORKERS,
            &group,
            period,
            Some(&counties),
            Lineage::OnePerCounty,
        )
        .await
        .unwrap()
        .unwrap();
        let mut prefixes: Vec<&String> = measures["credential_rate"][""].keys().collect();
        prefixes.sort();
        assert_eq!(prefixes, ["150102", "150102000", "150102001", "150102002"]);
    }
}
