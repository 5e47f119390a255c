//! The published snapshot in memory: every period's stored values, read once per table
//! version (see [`crate::lake::Held`]) and answered from without touching the lake. The
//! snapshot holds only what some county reached, so this stays small nationally; the regions
//! nobody reported for are filled in from the tree when read.

use std::collections::{BTreeMap, HashMap};

use deltalake::datafusion::prelude::{col, lit};

use super::{PREFIX, Read, Row, SOURCES, lineage, not_reported};
use crate::indicators::{CATALOGUE, Indicator, ReportingState};
use crate::lake::{Lake, LakeError, TableVersions, codec, committed_at, names, read, register};
use crate::periods::Period;
use crate::regions::{Level, Region, RegionTree};

/// Where a value sits in a period: indicator, region prefix and breakdown. The prefix, not
/// the 6- or 9-digit code: a city without counties (东莞市, 4419) and the county-level unit
/// under it (441900) share the code 441900 and are two regions.
pub type Key = (&'static str, String, Option<String>);

/// One period's published values and the table versions they were computed from.
#[derive(Debug, Default)]
struct Published {
    sources: TableVersions,
    values: HashMap<Key, Row>,
}

/// Every published period at one version of the snapshot table.
#[derive(Debug, Default)]
pub struct Snapshot {
    periods: BTreeMap<Period, Published>,
    /// When the version read was committed, for "last updated".
    updated: Option<chrono::DateTime<chrono::Utc>>,
}

fn key_of(row: &Row) -> Key {
    (
        row.indicator.id,
        row.prefix().to_string(),
        row.breakdown.clone(),
    )
}

impl Snapshot {
    /// Reads the whole table with the version read, or `None` before the first publication.
    pub async fn load(lake: &Lake) -> Result<Option<(Snapshot, i64)>, LakeError> {
        let Some(stored) = lake.load(names::INDICATOR_VALUES).await? else {
            return Ok(None);
        };
        let Some(version) = stored.version() else {
            return Ok(None);
        };
        let updated = committed_at(&stored);
        let ctx = deltalake::datafusion::prelude::SessionContext::new();
        register(&ctx, names::INDICATOR_VALUES, &stored).await?;
        let table = ctx.table("indicator_values").await?;
        let columns: Vec<_> = table
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|name| name != PREFIX && name != SOURCES)
            .map(col)
            .collect();
        // A value of an indicator no longer declared is not read (the next refresh of its
        // period drops it); every row read names a declared one.
        let declared = CATALOGUE.iter().map(|i| lit(i.id)).collect();
        let rows = table
            .clone()
            .filter(col("indicator").in_list(declared, false))?
            .select(columns)?
            .collect()
            .await?;
        let lineage = table
            .filter(lineage())?
            .select(vec![col("period"), col(SOURCES)])?
            .distinct()?
            .collect()
            .await?;
        let mut snapshot = Snapshot {
            updated,
            ..Snapshot::default()
        };
        for batch in &lineage {
            let periods = read::text(batch, 0)?;
            let sources = read::text(batch, 1)?;
            for i in 0..batch.num_rows() {
                let Some(period) = Period::read_stored(periods.value(i)) else {
                    continue;
                };
                snapshot.periods.entry(period).or_default().sources =
                    serde_json::from_str(sources.value(i))?;
            }
        }
        for row in codec::decode::<Row>(&rows)? {
            snapshot.insert(row);
        }
        Ok(Some((snapshot, version as i64)))
    }

    /// When the values were last published.
    pub fn updated(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.updated
    }

    fn insert(&mut self, row: Row) {
        let period = self.periods.entry(row.period).or_default();
        period.values.insert(key_of(&row), row);
    }

    /// The reporting periods with published values, oldest first (a partition written for
    /// the future before periods were bounded by the calendar is never a default).
    pub fn periods(&self) -> Vec<Period> {
        self.periods
            .keys()
            .copied()
            .filter(|p| p.is_reportable())
            .collect()
    }

    /// Every stored value of a period (regions nobody reported for are not stored).
    pub fn values(&self, period: Period) -> HashMap<Key, Row> {
        self.periods
            .get(&period)
            .map(|p| p.values.clone())
            .unwrap_or_default()
    }

    /// The table versions a period's values were computed from.
    pub fn sources(&self, period: Period) -> Option<&TableVersions> {
        self.periods.get(&period).map(|p| &p.sources)
    }

    /// The values of `indicators` in `period` for every region at `levels` inside `within`,
    /// in the order asked (then region, then breakdown), with the change since the previous
    /// half-year; regions without a stored value come back as not reported.
    pub fn query(
        &self,
        tree: &RegionTree,
        indicators: &[&'static Indicator],
        period: Period,
        within: &Region,
        levels: &[Level],
    ) -> Read {
        let empty = Published::default();
        let now = self.periods.get(&period).unwrap_or(&empty);
        let before = self.periods.get(&period.previous()).unwrap_or(&empty);
        let mut rows = Vec::new();
        for &indicator in indicators {
            for (region, breakdown) in expected(tree, indicator, within, levels) {
                let key = (
                    indicator.id,
                    region.prefix.to_string(),
                    breakdown.map(str::to_string),
                );
                let mut row =
                    now.values.get(&key).cloned().unwrap_or_else(|| {
                        not_reported(tree, indicator, period, region, breakdown)
                    });
                if let Some(then) = before.values.get(&key)
                    && row.status == ReportingState::Reported
                    && then.status == ReportingState::Reported
                    && let (Some(now), Some(then)) = (row.value, then.value)
                {
                    row.change = Some(now - then);
                }
                rows.push(row);
            }
        }
        Read {
            sources: match rows.iter().any(|r| r.status != ReportingState::NotReported) {
                true => now.sources.clone(),
                false => TableVersions::new(),
            },
            rows,
        }
    }
}

impl Snapshot {
    /// One region's values of `indicator` in every published period, oldest first, each with
    /// the target the region is held to then (also where nobody reported): a trend.
    pub fn series(
        &self,
        tree: &RegionTree,
        indicator: &'static Indicator,
        region: &Region,
    ) -> Read {
        let mut rows = Vec::new();
        let mut sources = TableVersions::new();
        for period in self.periods() {
            let read = self.query(tree, &[indicator], period, region, &[region.level]);
            // The latest period's lineage: a series spans several computations.
            if !read.sources.is_empty() {
                sources = read.sources;
            }
            rows.extend(read.rows.into_iter().map(|row| row.with_target(region)));
        }
        Read { sources, rows }
    }
}

/// The regions and breakdowns a read of `indicator` at `levels` inside `within` covers.
fn expected<'t>(
    tree: &'t RegionTree,
    indicator: &'static Indicator,
    within: &'t Region,
    levels: &[Level],
) -> Vec<(&'t Region, Option<&'static str>)> {
    let breakdowns: Vec<Option<&'static str>> = if indicator.breakdown.is_some() {
        indicator.breakdown_values().into_iter().map(Some).collect()
    } else {
        vec![None]
    };
    let mut out = Vec::new();
    for &level in levels.iter().filter(|l| **l <= indicator.finest_level()) {
        for region in tree.within(within, level) {
            for breakdown in &breakdowns {
                out.push((region, *breakdown));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::by_id;

    #[test]
    fn a_city_without_counties_and_its_county_are_two_values() {
        let tree = RegionTree::from_units(
            [
                ("44", "广东省"),
                ("4419", "东莞市"),
                ("441900", "东莞市"),
                ("441900003", "东城街道"),
                ("441900003001", "东城社区居委会"),
            ]
            .map(|(code, name)| (code.to_string(), name.to_string())),
        );
        let indicator = by_id("report_rate").unwrap();
        let period: Period = "2023H2".parse().unwrap();
        let mut snapshot = Snapshot::default();
        for (prefix, value) in [("4419", 50.0), ("441900", 100.0)] {
            let region = tree.get(prefix).unwrap();
            let mut row = not_reported(&tree, indicator, period, region, None);
            row.status = ReportingState::Reported;
            row.value = Some(value);
            snapshot.insert(row);
        }
        let read = snapshot.query(
            &tree,
            &[indicator],
            period,
            tree.get("44").unwrap(),
            &[Level::City, Level::County],
        );
        let got: Vec<(Level, &str, Option<f64>)> = read
            .rows
            .iter()
            .map(|r| (r.level, r.region.as_str(), r.value))
            .collect();
        assert_eq!(
            got,
            [
                (Level::City, "441900", Some(50.0)),
                (Level::County, "441900", Some(100.0))
            ]
        );
    }

    #[tokio::test]
    async fn values_of_indicators_no_longer_declared_are_not_read() {
        use deltalake::arrow::array::{ArrayRef, RecordBatch, StringArray};
        use std::sync::Arc;

        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let tree = RegionTree::from_units([("15".to_string(), "内蒙古自治区".to_string())]);
        let period: Period = "2023H2".parse().unwrap();
        let row = not_reported(
            &tree,
            by_id("report_rate").unwrap(),
            period,
            tree.get("15").unwrap(),
            None,
        );
        let declared = super::super::to_batch("{}", &[&row]).unwrap();
        // The same row under an indicator a later release dropped from the catalogue.
        let schema = declared.schema();
        let column = schema.index_of("indicator").unwrap();
        let mut columns = declared.columns().to_vec();
        columns[column] = Arc::new(StringArray::from(vec!["retired_indicator"])) as ArrayRef;
        let retired = RecordBatch::try_new(schema.clone(), columns).unwrap();

        let mut staged = lake
            .stage(names::INDICATOR_VALUES, &schema, &["period".to_string()])
            .unwrap();
        staged.write(declared).await.unwrap();
        staged.write(retired).await.unwrap();
        staged
            .commit_replacing(&[("period", vec![period.to_string()])], Default::default())
            .await
            .unwrap();

        let (snapshot, _) = Snapshot::load(&lake).await.unwrap().unwrap();
        let ids: Vec<&str> = snapshot.values(period).keys().map(|k| k.0).collect();
        assert_eq!(ids, ["report_rate"]);
    }
}
