//! Crash consistency: `jiazheng submit` dies at every step boundary of an ingest (the
//! `failpoints` build aborts the process where `JIAZHENG_FAILPOINT` says), and afterwards —
//! whether the file is sent again or `jiazheng repair` runs — the table's rows, the log's
//! current submission, its report and the published indicators agree, with no row lost or
//! counted twice. Then rounds of concurrent files with failpoints firing at random.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use shared::datasets::columns;
use shared::failpoints;
use shared::lake::{self, Lake, names};
use shared::periods::Period;
use shared::regions::RegionTree;
use shared::samples::synth::{self, Style};
use support::jiazheng;

const PERIOD: &str = "2023H2";

fn requires_failpoints() {
    if !cfg!(feature = "failpoints") {
        panic!("build the tests with --features jiazheng/failpoints (scripts/test does)");
    }
}

fn run(args: &[&str], failpoint: Option<&str>) -> Output {
    let mut cmd = jiazheng();
    cmd.args(args);
    if let Some(point) = failpoint {
        cmd.env(failpoints::ENV, point);
    }
    cmd.output().unwrap()
}

fn submit(lake: &str, dataset: &str, region: &str, file: &Path, failpoint: Option<&str>) -> Output {
    run(
        &[
            "submit",
            "--lake",
            lake,
            "--dataset",
            dataset,
            "--period",
            PERIOD,
            "--region",
            region,
            file.to_str().unwrap(),
        ],
        failpoint,
    )
}

fn repair(lake: &str) -> Output {
    let out = run(&["repair", "--lake", lake, "--grace", "0"], None);
    assert!(out.status.success(), "{out:?}");
    out
}

/// An outlets file for a county, its rows differing with the seed.
fn outlets_file(dir: &Path, tree: &RegionTree, county: &str, seed: &str) -> (PathBuf, usize) {
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

/// A lake with the regions, the enterprises of two counties and a first outlets file each.
fn prepared(dir: &Path, tree: &RegionTree) -> String {
    let lake = dir.join("lake");
    let lake = lake.to_str().unwrap().to_string();
    let regions = shared::samples::inner_mongolia();
    let out = run(
        &[
            "regions",
            "import",
            "--lake",
            &lake,
            regions.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    for county in ["152201", "152202"] {
        let region = tree.get(county).unwrap();
        let enterprises = synth::enterprises(region, PERIOD.parse().unwrap(), "crash");
        let path = dir.join(format!("enterprises-{county}.csv"));
        std::fs::write(
            &path,
            synth::write(&enterprises, Style::CsvUtf8, "").unwrap(),
        )
        .unwrap();
        assert!(
            submit(&lake, "enterprises", county, &path, None)
                .status
                .success()
        );
        let (first, _) = outlets_file(dir, tree, county, "first");
        assert!(
            submit(&lake, "outlets", county, &first, None)
                .status
                .success()
        );
    }
    lake
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Whether a county's outlets agree across table, log, report and indicators; the current
/// submission's id and rows when they do.
async fn consistent(lake: &Lake, county: &str) -> Result<(String, usize), String> {
    let period: Period = PERIOD.parse().unwrap();
    let log = shared::submissions::all(lake)
        .await
        .map_err(|e| e.to_string())?;
    let current: Vec<_> = shared::submissions::latest(&log)
        .into_iter()
        .filter(|(s, current)| {
            *current && s.dataset == "outlets" && s.period == PERIOD && s.region == county
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
    let report: shared::report::Report = serde_json::from_slice(&report).unwrap();
    if report.table_version != current.table_version || report.table_version.is_none() {
        return Err(format!(
            "{county}: report version {:?}, log version {:?}",
            report.table_version, current.table_version
        ));
    }
    // The indicators were computed from the tables as they are, and count these rows.
    if !shared::indicators::is_fresh(lake, period).await.unwrap() {
        return Err("the indicators are older than the tables".into());
    }
    let tree = shared::regions::stored::load(lake, shared::regions::stored::Scope::Published)
        .await
        .unwrap()
        .unwrap()
        .0;
    let region = tree.get(county).unwrap();
    let read =
        shared::indicators::snapshot::query(lake, &tree, "outlets", period, region, region.level)
            .await
            .unwrap()
            .unwrap();
    let published = read.rows[0].value;
    if published != Some(current.rows as f64) {
        return Err(format!(
            "{county}: published {published:?}, rows {}",
            current.rows
        ));
    }
    Ok((current.submission_id.clone(), current.rows as usize))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failpoint_ends_consistent_after_a_resend_or_a_repair() {
    requires_failpoints();
    let tree = shared::regions::read_nbs_dir(&shared::samples::inner_mongolia()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let base = prepared(work.path(), &tree);
    let (second, rows) = outlets_file(work.path(), &tree, "152201", "second-file");
    for point in failpoints::ALL {
        for resend in [true, false] {
            let case = work.path().join(format!("{point}-{resend}"));
            copy_dir(Path::new(&base), &case);
            let lake_path = case.to_str().unwrap();
            let crashed = submit(lake_path, "outlets", "152201", &second, Some(point));
            assert!(
                crashed.status.code().is_none(),
                "{point}: the process did not die: {crashed:?}"
            );
            if resend {
                let out = submit(lake_path, "outlets", "152201", &second, None);
                assert!(out.status.success(), "{point}: {out:?}");
            } else {
                repair(lake_path);
            }
            let lake = Lake::open(lake_path).unwrap();
            let (_, current_rows) = consistent(&lake, "152201").await.unwrap_or_else(|e| {
                panic!(
                    "{point}, {}: {e}",
                    if resend { "resent" } else { "repaired" }
                )
            });
            // The file that crashed is the one in force: nothing of it lost, nothing doubled.
            assert_eq!(current_rows, rows, "{point} resend={resend}");
            consistent(&lake, "152202").await.unwrap();
            // A second repair finds nothing left to do.
            let again = repair(lake_path);
            let said: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
            for part in ["completed", "reverted", "decided", "reported", "refreshed"] {
                assert_eq!(said[part], serde_json::json!([]), "{point}: {said}");
            }
        }
    }
}

/// A tiny deterministic generator for the rounds.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % sides
    }

    fn failpoint(&mut self) -> Option<&'static str> {
        let i = self.roll(failpoints::ALL.len() + 2);
        failpoints::ALL.get(i).copied()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_files_with_random_crashes_end_consistent() {
    requires_failpoints();
    let tree = shared::regions::read_nbs_dir(&shared::samples::inner_mongolia()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let base = prepared(work.path(), &tree);
    let mut dice = Dice(20261129);
    for round in 0..10 {
        // Even rounds: two files for the same county; odd rounds: one for each of two counties.
        let counties = if round % 2 == 0 {
            ["152201", "152201"]
        } else {
            ["152201", "152202"]
        };
        let case = work.path().join(format!("round-{round}"));
        copy_dir(Path::new(&base), &case);
        let lake_path = case.to_str().unwrap().to_string();
        let files: Vec<(PathBuf, Option<&str>)> = counties
            .iter()
            .enumerate()
            .map(|(i, county)| {
                let (file, _) = outlets_file(work.path(), &tree, county, &format!("r{round}-{i}"));
                (file, dice.failpoint())
            })
            .collect();
        std::thread::scope(|s| {
            for ((file, point), county) in files.iter().zip(counties) {
                let lake_path = &lake_path;
                s.spawn(move || submit(lake_path, "outlets", county, file, *point));
            }
        });
        repair(&lake_path);
        let lake = Lake::open(&lake_path).unwrap();
        for county in ["152201", "152202"] {
            consistent(&lake, county)
                .await
                .unwrap_or_else(|e| panic!("round {round} ({files:?}): {e}"));
        }
    }
}
