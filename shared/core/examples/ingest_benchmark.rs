//! Peak memory and time of ingesting one large `workers` file, the streaming path's worst case.
//!
//!     cargo run -p jiazheng-core --example ingest_benchmark -- generate /tmp/workers.csv 1000000
//!     cargo run -p jiazheng-core --example ingest_benchmark -- ingest /tmp/workers.csv
//!
//! The two steps run as separate processes so that the generator's memory is not counted;
//! `ingest` reports the process's peak resident set (VmHWM) at the end.

use std::io::BufWriter;
use std::time::Instant;

use jiazheng_core::ingest::{Ingestor, Upload};
use jiazheng_core::lake::Lake;
use jiazheng_core::privacy::Pseudonymizer;
use jiazheng_core::regions::read_nbs_dir;
use jiazheng_core::samples::{self, synth};

const COUNTY: &str = "152201";

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
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
            let dir = tempfile::tempdir()?;
            let lake = Lake::open(dir.path().to_str().ok_or("path")?)?;
            samples::import_regions(&lake, &samples::checkout_dir()).await?;
            let ingestor = Ingestor::new(lake, Some(Pseudonymizer::new(&[1; 32])?));
            let before = peak_rss_mib().unwrap_or_default();
            let started = Instant::now();
            let upload = Upload {
                dataset: &jiazheng_core::datasets::WORKERS,
                period: "2023H2".parse()?,
                region: COUNTY.into(),
                file_name: "workers.csv".into(),
            };
            let outcome = ingestor
                .submit_file(&upload, std::path::Path::new(path))
                .await?;
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "status {:?}: {} rows, {} errors, {} warnings in {seconds:.1} s ({:.0} rows/s)",
                outcome.submission.status,
                outcome.submission.rows,
                outcome.submission.errors,
                outcome.submission.warnings,
                outcome.submission.rows as f64 / seconds,
            );
            println!(
                "peak RSS: {:.0} MiB (after set-up: {before:.0} MiB)",
                peak_rss_mib().unwrap_or_default()
            );
        }
        _ => return Err("usage: ingest_benchmark generate PATH ROWS | ingest PATH".into()),
    }
    Ok(())
}
