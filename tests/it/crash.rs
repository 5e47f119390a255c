//! Crash consistency: `jiazheng submit` dies at every step boundary of an ingest (the
//! `failpoints` build aborts the process where `JIAZHENG_FAILPOINT` says), and afterwards —
//! whether the file is sent again or `jiazheng repair` runs — the table's rows, the log's
//! current submission, its report and the published indicators agree, with no row lost or
//! counted twice. Then rounds of concurrent files with failpoints firing at random.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Output;

use jiazheng_core::failpoints;
use jiazheng_core::lake::Lake;
use jiazheng_core::regions::RegionTree;
use jiazheng_core::samples::synth::{self, Style};
use support::consistency::{PERIOD, consistent, outlets_file, requires_failpoints};
use support::jiazheng;

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

/// A lake with the regions, the enterprises of two counties and a first outlets file each.
fn prepared(dir: &Path, tree: &RegionTree) -> String {
    let lake = dir.join("lake");
    let lake = lake.to_str().unwrap().to_string();
    let regions = jiazheng_core::samples::inner_mongolia();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failpoint_ends_consistent_after_a_resend_or_a_repair() {
    requires_failpoints();
    let tree =
        jiazheng_core::regions::read_nbs_dir(&jiazheng_core::samples::inner_mongolia()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let base = prepared(work.path(), &tree);
    let (second, rows) = outlets_file(work.path(), &tree, "152201", "second-file");
    for point in failpoints::ALL {
        for resend in [true, false] {
            let case = work.path().join(format!("{point}-{resend}"));
            support::copy_dir(Path::new(&base), &case);
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
    let tree =
        jiazheng_core::regions::read_nbs_dir(&jiazheng_core::samples::inner_mongolia()).unwrap();
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
        support::copy_dir(Path::new(&base), &case);
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
