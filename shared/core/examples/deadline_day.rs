//! Deadline day: many counties submitting all six datasets of one period at once, through the
//! lake the functions use, by concurrent ingest processes — then a check that every file
//! landed and that the published indicators equal a recomputation from scratch.
//!
//!     cargo build --release --workspace --examples
//!     target/release/examples/deadline_day run --lake s3://jiazheng/lake --counties 300 --workers 8
//!
//! (`scripts/bench-deadline-day` starts moto and runs it on S3.) `run` imports the national
//! region tree, generates the six files of each county (every third one as XLSX, as offices
//! send them), then starts `--workers` copies of itself as `work` processes, each taking the
//! next file from one queue the way an ingest function instance takes the next message: keep
//! the raw file, decide, commit, refresh the period. It prints, and writes to `--out` as JSON, the
//! total time, the indicator refreshes that reached the lake (snapshot commits), the refreshes
//! left to a concurrent one, the commit retries, and the checks.
//!
//!     target/release/examples/deadline_day small-file --lake /tmp/lake --counties 300
//!
//! measures instead the refresh after one small file with many counties in ([`small_file`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use jiazheng_core::datasets::{self, Dataset};
use jiazheng_core::findings::Status;
use jiazheng_core::indicators::snapshot::{Row, Snapshot};
use jiazheng_core::indicators::{self, Refreshed};
use jiazheng_core::ingest::Upload;
use jiazheng_core::lake::{self, Lake, names};
use jiazheng_core::periods::Period;
use jiazheng_core::regions::{Level, RegionTree};
use jiazheng_core::samples::{self, synth};
use jiazheng_core::{runtime, submissions};
use serde_json::json;

type Error = Box<dyn std::error::Error + Send + Sync>;

const PERIOD: &str = "2023H2";

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("run") => {
            let lake = flag(&args, "--lake").ok_or("--lake LAKE")?;
            let counties = flag(&args, "--counties").map_or(Ok(300), |n| n.parse())?;
            let workers = flag(&args, "--workers").map_or(Ok(8), |n| n.parse())?;
            let out = flag(&args, "--out");
            run(&lake, counties, workers, out.as_deref()).await
        }
        Some("small-file") => {
            let lake = flag(&args, "--lake").ok_or("--lake LAKE")?;
            let counties = flag(&args, "--counties").map_or(Ok(300), |n| n.parse())?;
            let runs = flag(&args, "--runs").map_or(Ok(3), |n| n.parse())?;
            small_file(&lake, counties, runs, flag(&args, "--out").as_deref()).await
        }
        Some("refresh") => {
            // `refresh LAKE [TIMES]`: the first is a new process's; the others, with nothing
            // changed, what a refresh costs besides its queries.
            let lake = args.get(2).ok_or("refresh LAKE [TIMES]")?;
            let times = args.get(3).map_or(Ok(1), |n| n.parse())?;
            let mut started = Instant::now();
            let ingestor = runtime::ingestor_at(lake).await?;
            for _ in 0..times {
                indicators::refresh(ingestor.lake(), PERIOD.parse()?).await?;
                println!("{}", started.elapsed().as_secs_f64());
                started = Instant::now();
            }
            Ok(())
        }
        Some("work") => {
            let lake = args.get(2).ok_or("work LAKE QUEUE")?;
            let queue = args.get(3).ok_or("work LAKE QUEUE")?;
            work(lake, Path::new(queue)).await
        }
        _ => Err(
            "usage: deadline_day run --lake LAKE [--counties N] [--workers W] [--out FILE] | \
             small-file --lake LAKE [--counties N] [--runs R] [--out FILE]"
                .into(),
        ),
    }
}

/// One ingest process: takes the next file nobody has taken from the queue (as an ingest
/// function instance takes the next message: a slow instance holds up only its own file),
/// submits it and refreshes the period — what the pipeline does after an accepted decision,
/// called here to count what each refresh did.
async fn work(location: &str, queue: &Path) -> Result<(), Error> {
    let files: Vec<String> = std::fs::read_to_string(queue.join("files"))?
        .lines()
        .map(str::to_string)
        .collect();
    let claims = queue.join("claims");
    let ingestor = runtime::ingestor_at(location).await?;
    let period: Period = PERIOD.parse()?;
    let started = Instant::now();
    let (mut accepted, mut published, mut deferred) = (0, 0, 0);
    let (mut submitting, mut refreshing) = (0.0, 0.0);
    for (i, file) in files.iter().enumerate() {
        // Creating the claim is atomic: exactly one process takes each file.
        if std::fs::File::create_new(claims.join(i.to_string())).is_err() {
            continue;
        }
        let path = Path::new(file);
        let (dataset, county) = upload_of(path)?;
        let upload = Upload {
            dataset,
            period,
            region: county,
            file_name: path.file_name().ok_or("file")?.to_string_lossy().into(),
        };
        let step = Instant::now();
        let outcome = ingestor
            .for_bulk_load()
            .submit_bytes(&upload, std::fs::read(path)?.into())
            .await?;
        if !outcome.accepted() {
            return Err(format!("{file} was rejected: {:?}", outcome.report).into());
        }
        accepted += 1;
        submitting += step.elapsed().as_secs_f64();
        let step = Instant::now();
        match indicators::refresh(ingestor.lake(), period).await? {
            Refreshed::Published(_) => published += 1,
            Refreshed::Deferred => deferred += 1,
        }
        refreshing += step.elapsed().as_secs_f64();
    }
    println!(
        "{}",
        json!({
            "files": accepted,
            "refreshes_published": published,
            "refreshes_deferred": deferred,
            "commit_retries": lake::commit_retries(),
            "seconds": started.elapsed().as_secs_f64(),
            "submit_seconds": submitting,
            "refresh_seconds": refreshing,
        })
    );
    Ok(())
}

/// A generated file's dataset and county, from its path `{county}/{dataset}.{ext}`.
fn upload_of(path: &Path) -> Result<(&'static Dataset, String), Error> {
    let stem = path.file_stem().ok_or("file")?.to_string_lossy();
    let dataset = datasets::by_name(&stem).ok_or("dataset")?;
    let county = path
        .parent()
        .and_then(Path::file_name)
        .ok_or("county")?
        .to_string_lossy()
        .into_owned();
    Ok((dataset, county))
}

/// `n` counties due to report, spread over the whole country (every k-th in code order).
fn counties(tree: &RegionTree, n: usize) -> Vec<String> {
    let due: Vec<&str> = tree
        .iter()
        .filter(|r| r.level == Level::County && tree.counties_due(r) > 0)
        .filter(|r| !synth::communities(tree, r).is_empty())
        .map(|r| r.prefix.as_str())
        .collect();
    let step = (due.len() / n.max(1)).max(1);
    due.iter()
        .step_by(step)
        .take(n)
        .map(|c| c.to_string())
        .collect()
}

/// Writes the six files of each county; returns them in submission order (round by round
/// over the datasets, counties interleaved) with the rows each holds.
fn generate(
    tree: &RegionTree,
    counties: &[String],
    dir: &Path,
) -> Result<Vec<(PathBuf, &'static str, String, usize)>, Error> {
    let period: Period = PERIOD.parse()?;
    let mut files = Vec::new();
    for (i, code) in counties.iter().enumerate() {
        let county = tree.get(code).ok_or("county")?;
        let enterprises = synth::enterprises(county, period, "deadline");
        let sheets = [
            synth::outlets(tree, county, period, &enterprises, "deadline"),
            synth::trainings(tree, county, period, "deadline"),
            synth::workers(tree, county, &enterprises, 40 + i % 60, "deadline"),
            synth::shops(tree, county, period, &enterprises, "deadline"),
            synth::complaints(tree, county, period, &enterprises, "deadline"),
            enterprises,
        ];
        std::fs::create_dir_all(dir.join(code))?;
        for (k, sheet) in sheets.iter().enumerate() {
            let (style, ext) = if (i + k) % 3 == 0 {
                (synth::Style::Xlsx, "xlsx")
            } else {
                (synth::Style::CsvUtf8, "csv")
            };
            let path = dir.join(code).join(format!("{}.{ext}", sheet.dataset.name));
            std::fs::write(&path, synth::write(sheet, style, "")?)?;
            files.push((k, path, sheet.dataset.name, code.clone(), sheet.rows.len()));
        }
    }
    files.sort_by_key(|f| f.0);
    Ok(files
        .into_iter()
        .map(|(_, path, dataset, county, rows)| (path, dataset, county, rows))
        .collect())
}

async fn run(location: &str, n: usize, workers: usize, out: Option<&str>) -> Result<(), Error> {
    let lake = Lake::open(location)?;
    let period: Period = PERIOD.parse()?;
    let started = Instant::now();
    let tree = samples::import_regions(&lake, &samples::checkout_dir().join("regions")).await?;
    let setup_regions = started.elapsed().as_secs_f64();
    let chosen = counties(&tree, n);
    let dir = tempfile::tempdir()?;
    let files = generate(&tree, &chosen, dir.path())?;
    println!(
        "{} counties × 6 datasets = {} files, {} rows; national tree of {} regions imported in {setup_regions:.1} s",
        chosen.len(),
        files.len(),
        files.iter().map(|f| f.3).sum::<usize>(),
        tree.len(),
    );
    let snapshot_before = lake.versions(&[names::INDICATOR_VALUES]).await?;

    // The queue: the files in submission order, and a directory for the claims.
    let queue = dir.path().join("queue");
    std::fs::create_dir_all(queue.join("claims"))?;
    let list: Vec<String> = files
        .iter()
        .map(|f| f.0.to_string_lossy().into_owned())
        .collect();
    std::fs::write(queue.join("files"), list.join("\n"))?;
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let children = (0..workers)
        .map(|_| {
            Command::new(&exe)
                .arg("work")
                .arg(location)
                .arg(&queue)
                .stdout(Stdio::piped())
                .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut reports = Vec::new();
    for child in children {
        let output = child.wait_with_output()?;
        if !output.status.success() {
            return Err(format!("an ingest process failed: {}", output.status).into());
        }
        reports.push(serde_json::from_slice::<serde_json::Value>(&output.stdout)?);
    }
    let total = started.elapsed().as_secs_f64();
    let sum = |field: &str| {
        reports
            .iter()
            .filter_map(|r| r[field].as_u64())
            .sum::<u64>()
    };
    let snapshot_after = lake.versions(&[names::INDICATOR_VALUES]).await?;
    let snapshot_commits = snapshot_after
        .get(names::INDICATOR_VALUES)
        .copied()
        .unwrap_or(0)
        - snapshot_before
            .get(names::INDICATOR_VALUES)
            .copied()
            .unwrap_or(-1);

    let checks = check(&lake, period, &files).await?;
    let report = json!({
        "counties": chosen.len(),
        "files": files.len(),
        "workers": workers,
        "lake": if lake.is_local() { "local" } else { "s3" },
        "seconds": total,
        "files_per_second": files.len() as f64 / total,
        "snapshot_commits": snapshot_commits,
        "refreshes_published": sum("refreshes_published"),
        "refreshes_deferred": sum("refreshes_deferred"),
        "commit_retries": sum("commit_retries"),
        "checks": checks,
        "per_process": reports,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    if let Some(out) = out {
        std::fs::write(out, serde_json::to_string_pretty(&report)? + "\n")?;
    }
    if checks["passed"] != true {
        return Err("checks failed".into());
    }
    Ok(())
}

/// The refresh after one small file: `n` counties' six files loaded (one refresh at the end),
/// then the outlets file of one more county, and the refresh that follows it — in the process
/// that submitted it (which holds what the other datasets measured, as a server or a warm
/// function does) and in a new process (a cold function). `runs` times each; each run in the
/// process submits a different county's file, since the same bytes again are a duplicate that
/// changes nothing (and a refresh after it has nothing to recompute).
async fn small_file(location: &str, n: usize, runs: usize, out: Option<&str>) -> Result<(), Error> {
    let lake = Lake::open(location)?;
    let period: Period = PERIOD.parse()?;
    let tree = samples::import_regions(&lake, &samples::checkout_dir().join("regions")).await?;
    let chosen = counties(&tree, n + runs);
    let dir = tempfile::tempdir()?;
    let files = generate(&tree, &chosen, dir.path())?;
    let later = &chosen[n.min(chosen.len())..];
    let (small, loaded): (Vec<_>, Vec<_>) = files.iter().partition(|f| later.contains(&f.2));
    let small: Vec<_> = small
        .into_iter()
        .filter(|f| f.1 == datasets::OUTLETS.name)
        .collect();
    if small.len() < runs {
        return Err("not enough counties for a new one in every run".into());
    }
    let ingestor = runtime::ingestor_at(location).await?.for_bulk_load();
    let submit = |file: &(PathBuf, &'static str, String, usize)| {
        let (path, _, county, _) = file.clone();
        let ingestor = &ingestor;
        async move {
            let (dataset, _) = upload_of(&path)?;
            let upload = Upload {
                dataset,
                period,
                region: county,
                file_name: path.file_name().ok_or("file")?.to_string_lossy().into(),
            };
            let outcome = ingestor
                .submit_bytes(&upload, std::fs::read(&path)?.into())
                .await?;
            match outcome.accepted() {
                true => Ok::<(), Error>(()),
                false => Err(format!("{} was rejected", path.display()).into()),
            }
        }
    };
    let started = Instant::now();
    for file in &loaded {
        submit(file).await?;
    }
    let loading = started.elapsed().as_secs_f64();
    let started = Instant::now();
    indicators::refresh(&lake, period).await?;
    let first = started.elapsed().as_secs_f64();
    let (mut submitting, mut warm, mut cold) = (Vec::new(), Vec::new(), Vec::new());
    for file in &small {
        let started = Instant::now();
        submit(file).await?;
        submitting.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        indicators::refresh(&lake, period).await?;
        warm.push(started.elapsed().as_secs_f64());
    }
    for _ in 0..runs {
        // A new process refreshes the same tables: a cold function's refresh.
        let output = Command::new(std::env::current_exe()?)
            .arg("refresh")
            .arg(location)
            .output()?;
        if !output.status.success() {
            return Err("the new process's refresh failed".into());
        }
        cold.push(
            String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse::<f64>()?,
        );
    }
    let report = json!({
        "counties_loaded": n,
        "files_loaded": loaded.len(),
        "rows_loaded": loaded.iter().map(|f| f.3).sum::<usize>(),
        "load_seconds": loading,
        "first_refresh_seconds": first,
        "small_files": small
            .iter()
            .map(|f| json!({ "dataset": f.1, "county": f.2, "rows": f.3 }))
            .collect::<Vec<_>>(),
        "small_file_submit_seconds": submitting,
        "refresh_seconds": warm,
        "refresh_new_process_seconds": cold,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    if let Some(out) = out {
        std::fs::write(out, serde_json::to_string_pretty(&report)? + "\n")?;
    }
    Ok(())
}

/// Every file is the current accepted one of its county and dataset with all its rows in the
/// table, and the published values are the ones a refresh from scratch computes now.
async fn check(
    lake: &Lake,
    period: Period,
    files: &[(PathBuf, &'static str, String, usize)],
) -> Result<serde_json::Value, Error> {
    let log = submissions::all(lake).await?;
    // One decision per file, each logged once (concurrent compactions once doubled the log).
    let decisions = log.len();
    let current: HashMap<(&str, String), i64> = submissions::latest(&log)
        .into_iter()
        .filter(|(s, current)| *current && s.status == Status::Accepted && s.period == period)
        .map(|(s, _)| ((s.dataset.name, s.region), s.rows))
        .collect();
    let logged = files
        .iter()
        .filter(|(_, dataset, county, rows)| {
            current.get(&(*dataset, county.clone())) == Some(&(*rows as i64))
        })
        .count();

    let tables: Vec<String> = datasets::ALL
        .iter()
        .map(|d| names::dataset(d.name))
        .collect();
    let refs: Vec<&str> = tables.iter().map(String::as_str).collect();
    let ctx = lake.session(&refs).await?.ctx;
    let mut stored: BTreeMap<(String, String), i64> = BTreeMap::new();
    for dataset in datasets::ALL {
        let sql = format!(
            "SELECT county, count(*) FROM {} WHERE period = '{period}' GROUP BY county",
            dataset.name
        );
        for batch in ctx.sql(&sql).await?.collect().await? {
            let county = lake::read::text(&batch, 0)?;
            let count = lake::read::int(&batch, 1)?;
            for i in 0..batch.num_rows() {
                stored.insert(
                    (dataset.name.to_string(), county.value(i).to_string()),
                    count.value(i),
                );
            }
        }
    }
    let in_tables = files
        .iter()
        .filter(|(_, d, c, rows)| stored.get(&(d.to_string(), c.clone())) == Some(&(*rows as i64)))
        .count();

    let fresh = indicators::is_fresh(lake, period).await?;
    let (snapshot, _) = Snapshot::load(lake).await?.ok_or("no snapshot")?;
    let published = snapshot.values(period);
    let mut recomputed = indicators::compute_period(lake, period).await?.values;
    for row in &mut recomputed {
        row.people = 0.0; // used for disclosure control, never stored
    }
    let key = |row: &Row| {
        (
            row.indicator.id,
            row.prefix().to_string(),
            row.breakdown.clone(),
        )
    };
    let differ: Vec<&Row> = recomputed
        .iter()
        .filter(|row| published.get(&key(row)) != Some(*row))
        .collect();
    for row in differ.iter().take(3) {
        eprintln!(
            "published  {}\nrecomputed {}",
            serde_json::to_string(&published.get(&key(row)))?,
            serde_json::to_string(row)?
        );
    }
    let recomputed_keys: std::collections::HashSet<_> = recomputed.iter().map(key).collect();
    for (k, row) in published
        .iter()
        .filter(|(k, _)| !recomputed_keys.contains(*k))
        .take(3)
    {
        eprintln!("published only {k:?}: {}", serde_json::to_string(row)?);
    }
    let differing = differ.len() + published.len().abs_diff(recomputed.len());
    Ok(json!({
        "passed": logged == files.len()
            && decisions == files.len()
            && in_tables == files.len()
            && fresh
            && differing == 0,
        "decisions_logged": decisions,
        "files_logged_current_with_their_rows": logged,
        "files_with_their_rows_in_the_tables": in_tables,
        "snapshot_fresh": fresh,
        "values_published": published.len(),
        "values_recomputed": recomputed.len(),
        "values_differing": differing,
    }))
}
