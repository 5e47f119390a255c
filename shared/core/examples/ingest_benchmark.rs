//! Time and peak memory of submitting one large `workers` file, the streaming path's worst
//! case, against the national region tree:
//!
//!     cargo build --release --workspace --examples
//!     target/release/examples/ingest_benchmark generate /tmp/workers.csv 1000000
//!     target/release/examples/ingest_benchmark ingest /tmp/workers.csv [--history] [--no-checks]
//!
//! `--history` first loads, untimed, the same file as the county's previous period and 200,000
//! workers of a neighbouring county of the league for this one (1,000 of them also in the
//! county's file), so that the plausibility checks read the partitions they read on a real
//! ingest and have findings to report; `--no-checks` turns the checks off, to
//! measure what they cost.
//!
//! (`--workspace`, not `-p jiazheng-core`: the same features as the other builds, so nothing
//! is rebuilt.) The two steps run as separate processes so that the generator's memory is not
//! counted; `ingest` reports each phase of the submit — validate, stage and commit; then the
//! indicator refresh — with its own peak resident set (VmHWM, reset between phases).

use std::io::BufWriter;
use std::time::Instant;

use jiazheng_core::indicators;
use jiazheng_core::ingest::{Ingestor, Upload};
use jiazheng_core::lake::Lake;
use jiazheng_core::privacy::Pseudonymizer;
use jiazheng_core::regions::read_nbs_dir;
use jiazheng_core::samples::{self, synth};

const COUNTY: &str = "152201";
/// Another county of the same league (兴安盟).
const PEER: &str = "152202";
/// Workers of the county's file that the neighbour's file has too.
const SHARED_WORKERS: usize = 1_000;

/// Resets the process's peak resident set to its current one (Linux `clear_refs`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak (`VmHWM`) or current (`VmRSS`) resident set, in MiB.
fn rss_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("generate") => {
            let path = args.get(2).ok_or("generate PATH ROWS")?;
            let rows: usize = args.get(3).ok_or("generate PATH ROWS")?.parse()?;
            let tree = read_nbs_dir(&samples::checkout_dir().join("regions"))?;
            let county = tree.get(COUNTY).ok_or("county")?;
            let enterprises = synth::enterprises(county, "2023H2".parse()?, "sample");
            let out = BufWriter::new(std::fs::File::create(path)?);
            let rows_iter = synth::worker_rows(&tree, county, &enterprises, "bench").take(rows);
            synth::write_csv(
                &jiazheng_core::datasets::WORKERS,
                rows_iter,
                synth::Style::CsvEnglish,
                out,
            )?;
            println!(
                "wrote {rows} workers to {path} ({} MiB)",
                std::fs::metadata(path)?.len() >> 20
            );
        }
        Some("ingest") => {
            let path = args.get(2).ok_or("ingest PATH")?;
            let flag = |name: &str| args.iter().skip(3).any(|a| a == name);
            let dir = tempfile::tempdir()?;
            let lake = Lake::open(dir.path().to_str().ok_or("path")?)?;
            samples::import_regions(&lake, &samples::checkout_dir().join("regions")).await?;
            let mut ingestor = Ingestor::new(lake, Some(Pseudonymizer::new(&[1; 32])?));
            let period: jiazheng_core::periods::Period = "2023H2".parse()?;
            let upload = |period, region: &str| Upload {
                dataset: &jiazheng_core::datasets::WORKERS,
                period,
                region: region.into(),
                file_name: "workers.csv".into(),
            };
            if flag("--history") {
                let bulk = ingestor.for_bulk_load().without_plausibility();
                bulk.submit_file(
                    &upload(period.previous(), COUNTY),
                    std::path::Path::new(path),
                )
                .await?;
                let tree = read_nbs_dir(&samples::checkout_dir().join("regions"))?;
                let peer = tree.get(PEER).ok_or("peer county")?;
                let enterprises = synth::enterprises(peer, period, "sample");
                // 1,000 of them also in the county's file (moved, or counted twice), so the
                // checks have findings to report, not just partitions to read.
                let county = tree.get(COUNTY).ok_or("county")?;
                let county_enterprises = synth::enterprises(county, period, "sample");
                let communities = synth::communities(&tree, peer);
                let community = jiazheng_core::datasets::WORKERS
                    .fields
                    .iter()
                    .position(|f| f.name == "community_code")
                    .ok_or("community_code")?;
                let shared = synth::worker_rows(&tree, county, &county_enterprises, "bench")
                    .take(SHARED_WORKERS)
                    .enumerate()
                    .map(|(i, mut row)| {
                        let at = communities[i % communities.len()].prefix.to_string();
                        row[community] = synth::Datum::Text(at);
                        row
                    });
                let own = synth::worker_rows(&tree, peer, &enterprises, "peer");
                let peer_file = dir.path().join("peer.csv");
                synth::write_csv(
                    &jiazheng_core::datasets::WORKERS,
                    shared.chain(own).take(200_000),
                    synth::Style::CsvEnglish,
                    BufWriter::new(std::fs::File::create(&peer_file)?),
                )?;
                bulk.submit_file(&upload(period, PEER), &peer_file).await?;
            }
            if flag("--no-checks") {
                ingestor = ingestor.without_plausibility();
            }
            let upload = upload(period, COUNTY);
            // The two phases of a submit, each with its own peak (the set-up's import of the
            // national regions is not counted).
            reset_peak_rss();
            let checked_from = rss_mib("VmRSS:").unwrap_or_default();
            let started = Instant::now();
            let outcome = ingestor
                .for_bulk_load()
                .submit_file(&upload, std::path::Path::new(path))
                .await?;
            let checked = started.elapsed().as_secs_f64();
            let checked_peak = rss_mib("VmHWM:").unwrap_or_default();
            reset_peak_rss();
            let refreshed_from = rss_mib("VmRSS:").unwrap_or_default();
            let started = Instant::now();
            indicators::refresh(ingestor.lake(), period).await?;
            let refreshed = started.elapsed().as_secs_f64();
            let refreshed_peak = rss_mib("VmHWM:").unwrap_or_default();
            println!(
                "status {:?}: {} rows, {} errors, {} warnings",
                outcome.submission.status,
                outcome.submission.rows,
                outcome.submission.errors,
                outcome.submission.warnings,
            );
            println!(
                "validate + stage + commit: {checked:.2} s, peak RSS {checked_peak:.0} MiB \
                 (from {checked_from:.0})"
            );
            println!(
                "indicator refresh:         {refreshed:.2} s, peak RSS {refreshed_peak:.0} MiB \
                 (from {refreshed_from:.0})"
            );
            println!(
                "submit:                    {:.2} s, peak RSS {:.0} MiB",
                checked + refreshed,
                checked_peak.max(refreshed_peak)
            );
        }
        _ => {
            return Err(
                "usage: ingest_benchmark generate PATH ROWS | ingest PATH [--history] [--no-checks]"
                    .into(),
            );
        }
    }
    Ok(())
}
