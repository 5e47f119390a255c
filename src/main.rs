//! `jiazheng`: the command line. Serves the API with the lake on this machine (or S3),
//! submits files, imports regions. Every command is a thin call into `jiazheng-core` (and `jiazheng-web` for `serve`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use jiazheng_core::datasets::{self, Dataset};
use jiazheng_core::ingest::{Ingestor, Upload};
use jiazheng_core::lake::{Lake, names};
use jiazheng_core::periods::Period;
use jiazheng_core::regions::stored::{self, Scope};
use jiazheng_core::{keys, regions, samples};

#[derive(Parser)]
#[command(
    name = "jiazheng",
    version,
    about = "家政进社区 open data: ingest, indicators, API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct LakeArg {
    /// The lake: a local directory, or s3://bucket/prefix (configured by the AWS environment).
    #[arg(long, env = "JIAZHENG_LAKE", default_value = "./data")]
    lake: String,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and the pages on this machine. The default lake (./data) gets the sample
    /// data when it is empty; any other lake only when asked with --samples.
    Serve {
        #[command(flatten)]
        lake: LakeArg,
        #[arg(long, env = "JIAZHENG_ADDR", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Load this sample directory (its regions/ if the lake has none, then every file of
        /// its submissions/) before serving; the repository's sample-data for the default lake.
        #[arg(long)]
        samples: Option<PathBuf>,
        /// Public reads allowed per second from one client address (0: no limit).
        #[arg(long, default_value_t = 50)]
        rate_limit: u32,
    },
    /// Submit one file, as a county office would; exits non-zero if it is rejected.
    Submit {
        #[command(flatten)]
        lake: LakeArg,
        /// enterprises, outlets, trainings, workers, shops or complaints.
        #[arg(long, value_parser = dataset_named)]
        dataset: &'static Dataset,
        /// Half-year period, e.g. 2023H2.
        #[arg(long)]
        period: Period,
        /// Submitting region code, e.g. 152201.
        #[arg(long)]
        region: String,
        file: PathBuf,
    },
    /// Finish what an interruption left halfway: commits without a decision, uploads without
    /// one, decisions without a report, indicators older than their tables. Prints what it
    /// did (JSON).
    Repair {
        #[command(flatten)]
        lake: LakeArg,
        /// Leave alone what is younger than this many seconds: it may belong to an ingest
        /// still running elsewhere.
        #[arg(long, default_value_t = jiazheng_core::pipeline::repair::GRACE.as_secs())]
        grace: u64,
    },
    /// The region tree.
    Regions {
        #[command(subcommand)]
        command: RegionsCommand,
    },
    /// API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Issue a key and print its token (shown only this once; the lake keeps its hash).
    Issue {
        #[command(flatten)]
        lake: LakeArg,
        /// The region the key acts for, e.g. 152201 (a submitter may send files for it and
        /// the regions inside it).
        #[arg(long)]
        region: String,
        /// submitter or analyst.
        #[arg(long)]
        role: keys::Role,
        /// The last day the key works (YYYY-MM-DD, through midnight in China); no expiry if
        /// left out.
        #[arg(long)]
        expires: Option<chrono::NaiveDate>,
    },
    /// Revoke a key at once (its browser sessions end with it); the record is kept.
    Revoke {
        #[command(flatten)]
        lake: LakeArg,
        /// The key's id: the part after `jz_` of its token, as `keys issue` printed it.
        key_id: String,
    },
}

#[derive(Subcommand)]
enum RegionsCommand {
    /// Import NBS division files (provinces, cities, areas, streets, villages; .csv or .csv.gz).
    Import {
        #[command(flatten)]
        lake: LakeArg,
        dir: PathBuf,
    },
}

/// The repository's sample data when run from a checkout, else `./sample-data`.
fn default_samples() -> &'static str {
    let checkout = concat!(env!("CARGO_MANIFEST_DIR"), "/sample-data");
    if Path::new(checkout).exists() {
        checkout
    } else {
        "sample-data"
    }
}

/// A dataset named on the command line.
fn dataset_named(name: &str) -> Result<&'static Dataset, String> {
    datasets::by_name(name).ok_or_else(|| {
        let all: Vec<&str> = datasets::ALL.iter().map(|d| d.name).collect();
        format!("unknown dataset {name:?}: one of {}", all.join(", "))
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    jiazheng_core::runtime::init_tracing();
    let matches = Cli::command().get_matches();
    // Whether the lake was named (flag or environment) or is the default: only the default
    // local lake gets the samples without being asked.
    let lake_named = matches
        .subcommand_matches("serve")
        .and_then(|serve| serve.value_source("lake"))
        .is_some_and(|source| source != clap::parser::ValueSource::DefaultValue);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli, lake_named).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn ingestor(lake: &LakeArg) -> anyhow::Result<Ingestor> {
    jiazheng_core::runtime::ingestor_at(&lake.lake)
        .await
        .with_context(|| format!("opening the lake {}", lake.lake))
}

async fn run(cli: Cli, lake_named: bool) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve {
            lake,
            addr,
            samples,
            rate_limit,
        } => {
            let ingestor = ingestor(&lake).await?;
            let empty = ingestor.lake().load(names::REGIONS).await?.is_none();
            let samples = match samples {
                Some(dir) => Some(dir),
                None if empty && !lake_named => Some(PathBuf::from(default_samples())),
                None if empty => bail!(
                    "the lake {} is empty. Import the region tree first \
                     (jiazheng regions import --lake {} sample-data/regions), or load the sample \
                     data into it with --samples sample-data",
                    lake.lake,
                    lake.lake
                ),
                None => None,
            };
            if let Some(dir) = samples {
                eprintln!("loading the sample data from {}", dir.display());
                let loaded = samples::load(&ingestor, &dir)
                    .await
                    .context("loading the sample data")?;
                eprintln!("loaded {} sample submissions", loaded.len());
            } else {
                // Whatever an interruption left halfway is finished while already serving:
                // every step leaves the lake consistent, so reads meanwhile see the last
                // complete state, and an upload reconciles its own dataset first anyway.
                let ingestor = ingestor.clone();
                tokio::spawn(async move {
                    let grace = jiazheng_core::pipeline::repair::GRACE;
                    match jiazheng_core::pipeline::repair::all(&ingestor, grace).await {
                        Ok(repaired) => tracing::info!(?repaired, "lake reconciled"),
                        Err(error) => tracing::error!(%error, "reconciling the lake failed"),
                    }
                });
            }
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            let mut state = jiazheng_web::AppState::new(ingestor);
            if rate_limit > 0 {
                state =
                    state.with_rate_limit(jiazheng_web::RateLimit::new(rate_limit, rate_limit * 4));
            }
            let router = jiazheng_web::router(state);
            println!(
                "jiazheng is serving on http://{}/ (API under /v1, reference at /v1/docs)",
                listener.local_addr()?
            );
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Submit {
            lake,
            dataset,
            period,
            region,
            file,
        } => {
            let ingestor = ingestor(&lake).await?;
            let upload = Upload {
                dataset,
                period,
                region,
                file_name: file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            };
            let outcome = ingestor.submit_file(&upload, &file).await?;
            println!("{}", serde_json::to_string_pretty(&outcome.report)?);
            if outcome.accepted() {
                eprintln!(
                    "accepted: submission {} ({} rows){}",
                    outcome.submission.submission_id,
                    outcome.submission.rows,
                    if outcome.duplicate {
                        ", already submitted before"
                    } else {
                        ""
                    }
                );
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "rejected: {} errors; nothing was written (report above)",
                    outcome.submission.errors
                );
                Ok(ExitCode::from(2))
            }
        }
        Command::Repair { lake, grace } => {
            let ingestor = ingestor(&lake).await?;
            let repaired = jiazheng_core::pipeline::repair::all(
                &ingestor,
                std::time::Duration::from_secs(grace),
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&repaired)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys {
            command: KeysCommand::Revoke { lake, key_id },
        } => {
            let lake = Lake::open(&lake.lake)?;
            let key = keys::revoke(&lake, &key_id).await?;
            eprintln!(
                "revoked {:?} key {} for {} at {}",
                key.role,
                key.key_id,
                key.region,
                key.revoked_at.unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys {
            command:
                KeysCommand::Issue {
                    lake,
                    region,
                    role,
                    expires,
                },
        } => {
            let lake = Lake::open(&lake.lake)?;
            let (tree, _) = stored::load(&lake, Scope::Published)
                .await?
                .context("the lake has no regions yet: run `jiazheng regions import` first")?;
            let region = tree
                .resolve(&region)
                .with_context(|| format!("no region {region}"))?;
            // The end of that day in China (UTC+8).
            let expires = expires
                .and_then(|day| day.succ_opt()?.and_hms_opt(0, 0, 0))
                .map(|midnight| midnight.and_utc() - chrono::Duration::hours(8));
            let (token, key) = keys::issue_until(&lake, region, role, expires).await?;
            eprintln!(
                "{:?} key {} for {} {}{}; keep the token, it is not stored:",
                key.role,
                key.key_id,
                key.region,
                region.name,
                key.expires_at
                    .as_deref()
                    .map(|at| format!(", until {at}"))
                    .unwrap_or_default()
            );
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Regions {
            command: RegionsCommand::Import { lake, dir },
        } => {
            if !dir.is_dir() {
                bail!("{} is not a directory", dir.display());
            }
            let lake = Lake::open(&lake.lake)?;
            let tree = regions::read_nbs_dir(&dir)?;
            let version = regions::stored::save(&lake, &tree).await?;
            let count = |l: regions::Level| tree.iter().filter(|r| r.level == l).count();
            println!(
                "imported {} provinces, {} cities, {} counties, {} streets, {} village-level units ({} communities); regions table version {version}",
                count(regions::Level::Province),
                count(regions::Level::City),
                count(regions::Level::County),
                count(regions::Level::Street),
                count(regions::Level::Village),
                tree.country().map_or(0, |c| c.communities),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
