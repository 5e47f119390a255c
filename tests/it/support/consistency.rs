//! What "consistent" means after a crash: for one county's outlets, the table's rows, the
//! log's current submission, its report and the published indicators agree. Used by the
//! crash tests on a local lake (tests/crash.rs) and on S3 (tests/s3.rs).

use std::path::{Path, PathBuf};

use jiazheng_core::datasets::columns;
use jiazheng_core::lake::{self, Lake, names};
use jiazheng_core::periods::Period;
use jiazheng_core::regions::RegionTree;
use jiazheng_core::samples::synth::{self, Style};

pub const PERIOD: &str = "2023H2";

/// The crash tests need the command built with the `failpoints` feature.
pub fn requires_failpoints() {
    if !cfg!(feature = "failpoints") {
        panic!("build the tests with --features jiazheng/failpoints (scripts/test does)");
    }
}

/// An outlets file for a county, its rows differing with the seed.
pub fn outlets_file(dir: &Path, tree: &RegionTree, county: &str, seed: &str) -> (PathBuf, usize) {
    let region = tree.get(county).unwrap();
    let period: Period = PERIOD.parse().unwrap();
    let enterprises = synth::enterprises(region, period, "crash");
    let mut outlets = synth::outlets(tree, region, period, &enterprises, seed);
    // Different seeds, different sizes: rows from the wrong file cannot pass for the right.
    let keep = outlets.rows.len() - seed.len() % 7;
    outlets.rows.truncate(keep);
    let path = dir.join(format!("outlets-{county}-{seed}.csv"));
    std::fs::write(&path, synth::write(&outlets, Style::CsvUtf8, "").unwrap()).unwrap();
    (path, keep)
}

/// Whether a county's outlets agree across table, log, report and indicators; the current
/// submission's id and rows when they do.
pub async fn consistent(lake: &Lake, county: &str) -> Result<(String, usize), String> {
    let period: Period = PERIOD.parse().unwrap();
    let log = jiazheng_core::submissions::all(lake)
        .await
        .map_err(|e| e.to_string())?;
    let current: Vec<_> = jiazheng_core::submissions::latest(&log)
        .into_iter()
        .filter(|(s, current)| {
            *current && s.dataset.name == "outlets" && s.period == period && s.region == county
        })
        .map(|(s, _)| s)
        .collect();
    let [current] = &current[..] else {
        return Err(format!(
            "{} current outlets files for {county}",
            current.len()
        ));
    };
    // The table holds exactly the current file's rows for the county.
    let table = lake
        .load(&names::dataset("outlets"))
        .await
        .unwrap()
        .unwrap();
    let ctx = deltalake::datafusion::prelude::SessionContext::new();
    lake::register(&ctx, &names::dataset("outlets"), &table)
        .await
        .unwrap();
    let batches = ctx
        .sql(&format!(
            "SELECT {s}, count(*) FROM outlets WHERE period = '{PERIOD}' AND county = '{county}' GROUP BY {s}",
            s = columns::SUBMISSION
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut owners = Vec::new();
    for batch in &batches {
        let ids = lake::read::text(batch, 0).unwrap();
        let counts = lake::read::int(batch, 1).unwrap();
        for i in 0..batch.num_rows() {
            owners.push((ids.value(i).to_string(), counts.value(i)));
        }
    }
    if owners != [(current.submission_id.clone(), current.rows)] {
        return Err(format!(
            "{county}: rows {owners:?}, log says {} ({} rows)",
            current.submission_id, current.rows
        ));
    }
    // The report names the same table version as the log.
    let report = lake
        .get_object(&current.report_key)
        .await
        .unwrap()
        .ok_or_else(|| format!("{county}: no report for {}", current.submission_id))?;
    let report: jiazheng_core::findings::Report = serde_json::from_slice(&report).unwrap();
    if report.table_version != current.table_version || report.table_version.is_none() {
        return Err(format!(
            "{county}: report version {:?}, log version {:?}",
            report.table_version, current.table_version
        ));
    }
    // The indicators were computed from the tables as they are, and count these rows.
    if !jiazheng_core::indicators::is_fresh(lake, period)
        .await
        .unwrap()
    {
        return Err("the indicators are older than the tables".into());
    }
    let tree = jiazheng_core::regions::stored::load(
        lake,
        jiazheng_core::regions::stored::Scope::Published,
    )
    .await
    .unwrap()
    .unwrap()
    .0;
    let region = tree.get(county).unwrap();
    let (snapshot, _) = jiazheng_core::indicators::snapshot::Snapshot::load(lake)
        .await
        .unwrap()
        .unwrap();
    let outlets = jiazheng_core::indicators::by_id("outlets").unwrap();
    let read = snapshot.query(&tree, &[outlets], period, region, &[region.level]);
    let published = read.rows[0].value;
    if published != Some(current.rows as f64) {
        return Err(format!(
            "{county}: published {published:?}, rows {}",
            current.rows
        ));
    }
    Ok((current.submission_id.clone(), current.rows as usize))
}
