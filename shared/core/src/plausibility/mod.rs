//! Plausibility (数据质量核查): a file that passed validation is compared with what the same
//! county sent the period before and with what the other counties of its league send now.
//!
//! The checks run inside the ingest, right after the file's rows are committed, on that table
//! version: each is one DataFusion query over the dataset's table whose period and county
//! filters prune it to the county's two partitions and the league's current ones. What they
//! find are warnings in the file's report, never rejections: a statistician decides.

use deltalake::arrow::array::{Array, StringArray};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::datafusion::prelude::SessionContext;
use futures::TryStreamExt;

pub mod confirmations;
mod rules;

pub use confirmations::{Confirmation, Confirmed};
pub use rules::{Check, RULES, Rule, by_code, of};

use crate::datasets::{Dataset, Kind, columns};
use crate::findings::{At, Findings, Problem};
use crate::lake::{Lake, LakeError, names, read, register};
use crate::periods::Period;
use crate::regions::Prefix;

/// One thing a rule found in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule: &'static Rule,
    /// The row as the submitter's sheet numbers it; none for a finding about the whole file.
    pub row: Option<usize>,
    pub field: Option<&'static str>,
    /// The value in this file (a count for the whole file); ID numbers are never shown.
    pub value: Option<String>,
    /// What it was compared with: the previous period's value or count, the league's range,
    /// the other county.
    pub comparison: String,
}

/// The file being checked: where its rows went, which is what they are compared with.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub dataset: &'static Dataset,
    pub period: Period,
    /// The counties whose rows the file replaced.
    pub counties: &'a [Prefix],
    /// The other counties of the same leagues (盟/市).
    pub league: &'a [Prefix],
}

/// How many of a report's findings came from plausibility rules: what its submitter has to
/// confirm (the summary counts them all, listed or not).
pub fn flagged(summary: &crate::findings::Summary) -> u64 {
    summary
        .by_code
        .iter()
        .filter(|(code, _)| by_code(code).is_some())
        .map(|(_, n)| n)
        .sum()
}

/// Runs every rule of the subject's dataset against the table at `version` (the commit of the
/// file's rows) and adds what they find to `findings` as warnings.
pub async fn check(
    lake: &Lake,
    subject: &Subject<'_>,
    version: i64,
    findings: &mut Findings,
) -> Result<(), LakeError> {
    let name = names::dataset(subject.dataset.name);
    let Some(table) = lake.load_version(&name, version).await? else {
        return Ok(());
    };
    let ctx = SessionContext::new();
    register(&ctx, &name, &table).await?;
    let queries = Queries { ctx: &ctx, subject };
    let counts = queries.counts().await?;
    let mut add = |finding: Finding| {
        let row = finding.row;
        let field = finding.field;
        let column = field.and_then(|f| subject.dataset.field(f)).map(|f| f.zh);
        let value = finding.value.clone();
        findings.add(
            Problem::Implausible(Box::new(finding)),
            At {
                row,
                column,
                field,
                value: value.as_deref(),
            },
        );
    };
    for rule in rules::of(subject.dataset) {
        match rule.check {
            Check::RowCount {
                fall,
                rise,
                min_rows,
            } => {
                for count in &counts {
                    let (now, before) = (count.now as f64, count.before as f64);
                    let changed = now < before * (1.0 - fall) || now > before * (1.0 + rise);
                    if count.now > 0 && count.before >= min_rows && changed {
                        add(count.finding(rule, subject));
                    }
                }
            }
            Check::NilAfter { min_rows } => {
                for count in &counts {
                    if count.now == 0 && count.before >= min_rows {
                        add(count.finding(rule, subject));
                    }
                }
            }
            Check::Vanished { field } => {
                let reported: Vec<&Prefix> = counts
                    .iter()
                    .filter(|c| c.now > 0 && c.before > 0)
                    .map(|c| &c.county)
                    .collect();
                queries.vanished(rule, field, &reported, &mut add).await?;
            }
            Check::Changed { fields } => queries.changed(rule, fields, &mut add).await?,
            Check::Elsewhere => queries.elsewhere(rule, &mut add).await?,
            Check::Outlier {
                field,
                k,
                min_peers,
            } => {
                queries
                    .outliers(rule, field, k, min_peers, &mut add)
                    .await?
            }
        }
    }
    Ok(())
}

/// A county's rows now and in the previous period.
#[derive(Debug)]
struct Count {
    county: Prefix,
    now: u64,
    before: u64,
}

impl Count {
    /// The finding about the county's whole file; the county is named when the file covered
    /// several.
    fn finding(&self, rule: &'static Rule, subject: &Subject<'_>) -> Finding {
        let previous = subject.period.previous();
        let county = if subject.counties.len() > 1 {
            format!("{} ", self.county)
        } else {
            String::new()
        };
        Finding {
            rule,
            row: None,
            field: None,
            value: Some(self.now.to_string()),
            comparison: format!("{county}{previous}: {}", self.before),
        }
    }
}

struct Queries<'a> {
    ctx: &'a SessionContext,
    subject: &'a Subject<'a>,
}

impl Queries<'_> {
    fn now(&self) -> String {
        self.subject.period.to_string()
    }

    fn before(&self) -> String {
        self.subject.period.previous().to_string()
    }

    /// A query with the subject's names filled in: `$t` the table, `$period`, `$county`, `$row`
    /// and `$key` its columns, `$now` and `$before` the two periods, `$counties` the file's
    /// counties and `$league` the other counties of their leagues. All come from the
    /// declarations and validated prefixes, never from a file.
    fn sql(&self, template: &str) -> String {
        template
            .replace("$counties", &listed(self.subject.counties))
            .replace("$league", &listed(self.subject.league))
            .replace("$t", self.subject.dataset.name)
            .replace("$period", columns::PERIOD)
            .replace("$county", columns::COUNTY)
            .replace("$row", columns::SOURCE_ROW)
            .replace("$key", self.subject.dataset.key)
            .replace("$now", &self.now())
            .replace("$before", &self.before())
    }

    /// Each county's rows in the file's period and the one before.
    async fn counts(&self) -> Result<Vec<Count>, LakeError> {
        let sql = self.sql(
            "SELECT $county, $period, count(*) FROM $t \
             WHERE $period IN ('$now', '$before') AND $county IN ($counties) \
             GROUP BY $county, $period",
        );
        let mut counts: Vec<Count> = self
            .subject
            .counties
            .iter()
            .map(|county| Count {
                county: county.clone(),
                now: 0,
                before: 0,
            })
            .collect();
        let now = self.now();
        self.rows(&sql, |batch| {
            let (county, period, n) = (
                read::text(batch, 0)?,
                read::text(batch, 1)?,
                read::int(batch, 2)?,
            );
            for i in 0..batch.num_rows() {
                if let Some(count) = counts
                    .iter_mut()
                    .find(|c| c.county.as_str() == county.value(i))
                {
                    let n = u64::try_from(n.value(i)).unwrap_or_default();
                    if period.value(i) == now {
                        count.now = n;
                    } else {
                        count.before = n;
                    }
                }
            }
            Ok(())
        })
        .await?;
        Ok(counts)
    }

    /// Values of `field` the counties had last period and have none of now.
    async fn vanished(
        &self,
        rule: &'static Rule,
        field: &'static str,
        counties: &[&Prefix],
        add: &mut impl FnMut(Finding),
    ) -> Result<(), LakeError> {
        if counties.is_empty() {
            return Ok(());
        }
        let sql = self.sql(&format!(
            "SELECT CAST(v AS VARCHAR), n FROM (SELECT b.{field} AS v, count(*) AS n FROM $t b \
             WHERE b.$period = '$before' AND b.$county IN ({counties}) \
             AND NOT EXISTS (SELECT 1 FROM $t n WHERE n.$period = '$now' \
               AND n.$county = b.$county AND n.{field} = b.{field}) \
             GROUP BY b.{field}) ORDER BY v",
            counties = listed(counties.iter().copied()),
        ));
        let before = self.before();
        self.rows(&sql, |batch| {
            let (value, n) = (read::text(batch, 0)?, read::int(batch, 1)?);
            for i in 0..batch.num_rows() {
                add(Finding {
                    rule,
                    row: None,
                    field: Some(field),
                    value: Some(value.value(i).to_string()),
                    comparison: format!("{before}: {}", n.value(i)),
                });
            }
            Ok(())
        })
        .await
    }

    /// Rows whose fixed `fields` differ from the same key's row last period.
    async fn changed(
        &self,
        rule: &'static Rule,
        fields: &'static [&'static str],
        add: &mut impl FnMut(Finding),
    ) -> Result<(), LakeError> {
        let pairs: Vec<String> = fields
            .iter()
            .map(|f| format!("CAST(n.{f} AS VARCHAR), CAST(b.{f} AS VARCHAR)"))
            .collect();
        let differs: Vec<String> = fields
            .iter()
            .map(|f| format!("(n.{f} IS DISTINCT FROM b.{f})"))
            .collect();
        let sql = self.sql(&format!(
            "SELECT n.$row, {pairs} FROM $t n JOIN $t b ON n.$key = b.$key AND n.$county = b.$county \
             WHERE n.$period = '$now' AND b.$period = '$before' \
             AND n.$county IN ($counties) AND b.$county IN ($counties) AND ({differs})",
            pairs = pairs.join(", "),
            differs = differs.join(" OR "),
        ));
        let before = self.before();
        self.rows(&sql, |batch| {
            let row = read::int(batch, 0)?;
            for (j, field) in fields.iter().enumerate() {
                let (now_value, before_value) =
                    (read::text(batch, 1 + 2 * j)?, read::text(batch, 2 + 2 * j)?);
                for i in 0..batch.num_rows() {
                    let (a, b) = (text_at(&now_value, i), text_at(&before_value, i));
                    if a != b {
                        add(Finding {
                            rule,
                            row: usize::try_from(row.value(i)).ok(),
                            field: Some(field),
                            value: Some(a),
                            comparison: format!("{before}: {b}"),
                        });
                    }
                }
            }
            Ok(())
        })
        .await
    }

    /// Rows whose key another county of the league also submitted this period.
    async fn elsewhere(
        &self,
        rule: &'static Rule,
        add: &mut impl FnMut(Finding),
    ) -> Result<(), LakeError> {
        if self.subject.league.is_empty() {
            return Ok(());
        }
        let dataset = self.subject.dataset;
        let key = dataset.key;
        // A pseudonym is still a person's: the row number is what the submitter needs.
        let shown = !matches!(dataset.field(key).map(|f| f.kind), Some(Kind::IdNumber));
        let value = if shown {
            "CAST(n.$key AS VARCHAR)"
        } else {
            "''"
        };
        let sql = self.sql(&format!(
            "SELECT n.$row, o.$county, {value} FROM $t n JOIN $t o ON n.$key = o.$key \
             WHERE n.$period = '$now' AND o.$period = '$now' \
             AND n.$county IN ($counties) AND o.$county IN ($league)",
        ));
        self.rows(&sql, |batch| {
            let (row, other, value) = (
                read::int(batch, 0)?,
                read::text(batch, 1)?,
                read::text(batch, 2)?,
            );
            for i in 0..batch.num_rows() {
                add(Finding {
                    rule,
                    row: usize::try_from(row.value(i)).ok(),
                    field: Some(key),
                    value: shown.then(|| value.value(i).to_string()),
                    comparison: other.value(i).to_string(),
                });
            }
            Ok(())
        })
        .await
    }

    /// Rows whose `field` lies outside the league's median ± k scaled MADs.
    async fn outliers(
        &self,
        rule: &'static Rule,
        field: &'static str,
        k: f64,
        min_peers: u64,
        add: &mut impl FnMut(Finding),
    ) -> Result<(), LakeError> {
        if self.subject.league.is_empty() {
            return Ok(());
        }
        let peers = self.sql(&format!(
            "FROM $t WHERE $period = '$now' AND $county IN ($league) AND {field} IS NOT NULL"
        ));
        let mut centre = None;
        let sql = format!("SELECT count(*), median(CAST({field} AS DOUBLE)) {peers}");
        self.rows(&sql, |batch| {
            let (n, median) = (read::int(batch, 0)?, read::float(batch, 1)?);
            if batch.num_rows() > 0 && !median.is_null(0) {
                centre = Some((n.value(0), median.value(0)));
            }
            Ok(())
        })
        .await?;
        let Some((n, median)) = centre else {
            return Ok(());
        };
        if u64::try_from(n).unwrap_or_default() < min_peers {
            return Ok(());
        }
        let mut mad = None;
        let sql = format!(
            "SELECT median(abs(CAST({field} AS DOUBLE) - CAST('{median}' AS DOUBLE))) {peers}"
        );
        self.rows(&sql, |batch| {
            let value = read::float(batch, 0)?;
            if batch.num_rows() > 0 && !value.is_null(0) {
                mad = Some(value.value(0));
            }
            Ok(())
        })
        .await?;
        // With half the league on one value there is no spread to measure against.
        let Some(mad) = mad.filter(|m| *m > 0.0) else {
            return Ok(());
        };
        // 1.4826 scales the MAD to a standard deviation of a normal distribution.
        let spread = k * 1.4826 * mad;
        let (low, high) = (median - spread, median + spread);
        let sql = self.sql(&format!(
            "SELECT $row, CAST({field} AS VARCHAR) FROM $t \
             WHERE $period = '$now' AND $county IN ($counties) \
             AND (CAST({field} AS DOUBLE) < CAST('{low}' AS DOUBLE) \
               OR CAST({field} AS DOUBLE) > CAST('{high}' AS DOUBLE))"
        ));
        let comparison = format!(
            "{}–{} (median {}, {n} values)",
            number(low.max(0.0)),
            number(high),
            number(median)
        );
        self.rows(&sql, |batch| {
            let (row, value) = (read::int(batch, 0)?, read::text(batch, 1)?);
            for i in 0..batch.num_rows() {
                add(Finding {
                    rule,
                    row: usize::try_from(row.value(i)).ok(),
                    field: Some(field),
                    value: Some(value.value(i).to_string()),
                    comparison: comparison.clone(),
                });
            }
            Ok(())
        })
        .await
    }

    /// Runs `sql` and hands each result batch to `each` as it streams: a file with many
    /// findings costs one batch of memory, and the report keeps only the first it lists. The
    /// row-level queries are therefore not sorted (a sort would hold every finding of a
    /// million-row file); the report page orders what it lists by row.
    async fn rows(
        &self,
        sql: &str,
        mut each: impl FnMut(&RecordBatch) -> Result<(), LakeError>,
    ) -> Result<(), LakeError> {
        let mut stream = self.ctx.sql(sql).await?.execute_stream().await?;
        while let Some(batch) = stream.try_next().await? {
            each(&batch)?;
        }
        Ok(())
    }
}

/// Prefixes as a SQL list; they are digits by construction.
fn listed<'a>(prefixes: impl IntoIterator<Item = &'a Prefix>) -> String {
    let quoted: Vec<String> = prefixes
        .into_iter()
        .map(|p| format!("'{}'", p.as_str()))
        .collect();
    if quoted.is_empty() {
        "NULL".into()
    } else {
        quoted.join(", ")
    }
}

fn text_at(array: &StringArray, i: usize) -> String {
    if array.is_null(i) {
        String::new()
    } else {
        array.value(i).to_string()
    }
}

/// A number as a person reads it: whole when it is, else two decimals.
fn number(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}
