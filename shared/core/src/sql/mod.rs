//! Read-only SQL for analysts over the published views: the indicator snapshot, the region
//! tree (no village-level units) and the open datasets' records. No personal data is
//! reachable: `workers` and `complaints` records, the submission log and raw files are not in
//! the catalogue at all.
//!
//! One SELECT within the size and shape limits of [`guard`], planned by a session that knows
//! only the allowed functions and no table functions or file formats. Queries run on a
//! runtime of their own (deep plans get a large stack there and cannot starve the API), at
//! most [`CONCURRENT`] at once, against one memory pool shared by all of them and without
//! spilling; every operator yields to a deadline that cancels the query; answers stop at a
//! row cap.

pub mod guard;
mod values_view;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::datafusion::common::tree_node::{Transformed, TreeNode};
use deltalake::datafusion::execution::SessionStateDefaults;
use deltalake::datafusion::execution::context::SQLOptions;
use deltalake::datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use deltalake::datafusion::execution::memory_pool::GreedyMemoryPool;
use deltalake::datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use deltalake::datafusion::execution::session_state::SessionStateBuilder;
use deltalake::datafusion::physical_plan::coop::CooperativeExec;
use deltalake::datafusion::physical_plan::{ExecutionPlan, execute_stream};
use deltalake::datafusion::prelude::{SessionConfig, SessionContext, col, lit};
use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::datasets::{self, Openness, columns};
use crate::lake::{Lake, LakeError, names};
use crate::regions::{Level, RegionTree};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    pub max_rows: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(10),
            max_rows: 10_000,
        }
    }
}

/// Memory all running queries share; a query that needs more than what is left is stopped.
pub const MEMORY_BYTES: usize = 256 << 20;
/// Queries running at once; another waits for a free slot up to its own time limit.
pub const CONCURRENT: usize = 2;
/// Rows per batch: a row may carry up to a statement's worth of literal text.
const BATCH_ROWS: usize = 1024;
/// Stack of each query thread: planning recurses over the (bounded) query tree.
const STACK_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("only one SELECT query is allowed: {0}")]
    NotAQuery(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the query is too large: {0}")]
    TooBig(String),
    #[error("the query took longer than {0:?} and was stopped")]
    Timeout(Duration),
    #[error("the query needed more than {0} MiB of memory and was stopped")]
    Memory(usize),
    #[error("{CONCURRENT} queries are running already; try again in a moment")]
    Busy,
    #[error(transparent)]
    Lake(#[from] LakeError),
}

/// The rows a query returned, and whether the cap cut them.
#[derive(Debug)]
pub struct Answer {
    /// The answer's columns, also when there is no row.
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub truncated: bool,
}

/// Where analyst queries run: their own threads, their own memory pool, a gate.
struct Engine {
    runtime: tokio::runtime::Runtime,
    env: Arc<RuntimeEnv>,
    gate: Semaphore,
}

fn engine() -> Result<&'static Engine, SqlError> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(CONCURRENT)
                .thread_name("jiazheng-sql")
                .thread_stack_size(STACK_BYTES)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let env = RuntimeEnvBuilder::new()
                .with_memory_pool(Arc::new(GreedyMemoryPool::new(MEMORY_BYTES)))
                .with_disk_manager_builder(
                    DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
                )
                .build_arc()
                .map_err(|e| e.to_string())?;
            Ok(Engine {
                runtime,
                env,
                gate: Semaphore::new(CONCURRENT),
            })
        })
        .as_ref()
        .map_err(|e| SqlError::Invalid(format!("the query engine could not start: {e}")))
}

/// The views analysts see, with what each shows.
pub fn views() -> Vec<(&'static str, &'static str)> {
    let mut v = vec![
        (
            "indicator_values",
            "every published indicator value (the snapshot)",
        ),
        (
            "regions",
            "the region tree down to streets, with community counts",
        ),
    ];
    for d in datasets::ALL
        .iter()
        .filter(|d| d.openness == Openness::Records)
    {
        v.push((d.name, d.en));
    }
    v
}

/// A session that knows the published views, the allowed functions and nothing else.
async fn session(
    lake: &Lake,
    tree: &RegionTree,
    engine: &Engine,
) -> Result<SessionContext, SqlError> {
    let config = SessionConfig::new()
        .with_target_partitions(2)
        .with_batch_size(BATCH_ROWS)
        .set_usize(
            "datafusion.sql_parser.recursion_limit",
            guard::PARSER_RECURSION,
        )
        // A recursive CTE can grow its rows without bound between two yields.
        .set_bool("datafusion.execution.enable_recursive_ctes", false);
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(engine.env.clone())
        .with_expr_planners(SessionStateDefaults::default_expr_planners())
        .with_scalar_functions(
            SessionStateDefaults::default_scalar_functions()
                .into_iter()
                .filter(|f| guard::scalar_allowed(f.name()))
                .collect(),
        )
        .with_aggregate_functions(
            SessionStateDefaults::default_aggregate_functions()
                .into_iter()
                .filter(|f| guard::aggregate_allowed(f.name()))
                .collect(),
        )
        .with_window_functions(SessionStateDefaults::default_window_functions())
        .build();
    let ctx = SessionContext::new_with_state(state);
    let lake_err =
        |e: deltalake::datafusion::error::DataFusionError| SqlError::Lake(LakeError::from(e));

    // Each view reads a provider that is not itself in the catalogue, so only the listed
    // columns can be named.
    if let Some(table) = lake.load(names::INDICATOR_VALUES).await? {
        table
            .update_datafusion_session(&ctx.state())
            .map_err(LakeError::from)?;
        let provider = table.table_provider().await.map_err(LakeError::from)?;
        let stored = ctx.read_table(provider).map_err(lake_err)?;
        let frame = values_view::with_not_reported(&ctx, stored, tree)
            .await
            .map_err(lake_err)?;
        ctx.register_table("indicator_values", frame.into_view())
            .map_err(lake_err)?;
    }
    if let Some(table) = lake.load(names::REGIONS).await? {
        table
            .update_datafusion_session(&ctx.state())
            .map_err(LakeError::from)?;
        let provider = table.table_provider().await.map_err(LakeError::from)?;
        let frame = ctx
            .read_table(provider)
            .map_err(lake_err)?
            .filter(col("level").not_eq(lit(Level::Village.as_str())))
            .map_err(lake_err)?;
        ctx.register_table("regions", frame.into_view())
            .map_err(lake_err)?;
    }
    for dataset in datasets::ALL
        .iter()
        .filter(|d| d.openness == Openness::Records)
    {
        let Some(table) = lake.load(&names::dataset(dataset.name)).await? else {
            continue;
        };
        table
            .update_datafusion_session(&ctx.state())
            .map_err(LakeError::from)?;
        let provider = table.table_provider().await.map_err(LakeError::from)?;
        let mut shown: Vec<&str> = dataset.fields.iter().map(|f| f.name).collect();
        shown.extend([columns::COUNTY, columns::PERIOD, columns::SUBMISSION]);
        let frame = ctx
            .read_table(provider)
            .map_err(lake_err)?
            .select_columns(&shown)
            .map_err(lake_err)?;
        ctx.register_table(dataset.name, frame.into_view())
            .map_err(lake_err)?;
    }
    Ok(ctx)
}

/// Runs one analyst query within `limits`, on the query engine's own threads.
pub async fn run(
    lake: &Lake,
    tree: Arc<RegionTree>,
    sql: &str,
    limits: Limits,
) -> Result<Answer, SqlError> {
    guard::check(sql)?;
    let engine = engine()?;
    let _slot = tokio::time::timeout(limits.timeout, engine.gate.acquire())
        .await
        .map_err(|_| SqlError::Busy)?
        .map_err(|_| SqlError::Busy)?;
    let lake = lake.clone();
    let sql = sql.to_string();
    let task = engine
        .runtime
        .spawn(async move { execute(&lake, &tree, &sql, limits, engine).await });
    let abort = task.abort_handle();
    match tokio::time::timeout(limits.timeout, task).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => Err(SqlError::Invalid(format!("the query failed: {e}"))),
        Err(_) => {
            abort.abort();
            Err(SqlError::Timeout(limits.timeout))
        }
    }
}

async fn execute(
    lake: &Lake,
    tree: &RegionTree,
    sql: &str,
    limits: Limits,
    engine: &Engine,
) -> Result<Answer, SqlError> {
    let ctx = session(lake, tree, engine).await?;
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let frame = ctx.sql_with_options(sql, options).await.map_err(classify)?;
    let plan = frame.create_physical_plan().await.map_err(classify)?;
    // Every operator's output spends the task's scheduling budget, so that even a single
    // huge aggregation over a cross join yields to the executor and the deadline can stop
    // it (by default only leaves and exchanges do).
    let plan = plan
        .transform_up(|node| {
            Ok(Transformed::yes(
                Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>
            ))
        })
        .map_err(classify)?
        .data;
    let schema = plan.schema();
    let mut stream = execute_stream(plan, ctx.task_ctx()).map_err(classify)?;
    let mut batches = Vec::new();
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(classify)?;
        let room = limits.max_rows - rows;
        if batch.num_rows() > room {
            batches.push(batch.slice(0, room));
            return Ok(Answer {
                schema,
                batches,
                truncated: true,
            });
        }
        rows += batch.num_rows();
        batches.push(batch);
    }
    Ok(Answer {
        schema,
        batches,
        truncated: false,
    })
}

fn classify(e: deltalake::datafusion::error::DataFusionError) -> SqlError {
    use deltalake::datafusion::error::DataFusionError;
    match e.find_root() {
        DataFusionError::ResourcesExhausted(_) => SqlError::Memory(MEMORY_BYTES >> 20),
        _ => SqlError::Invalid(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` rows from a VALUES list, for load without table functions.
    fn rows(n: usize, alias: &str) -> String {
        let values: Vec<String> = (1..=n).map(|i| format!("({i})")).collect();
        format!("(VALUES {}) {alias}", values.join(","))
    }

    /// One test, so its queries do not wait on each other's slots.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn limits_hold() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        for sql in [
            "SELECT * FROM workers",
            "SELECT * FROM complaints",
            "SELECT * FROM '/etc/passwd'",
            "SELECT * FROM submissions",
            // Functions that build without bound are unknown to the session.
            "SELECT length(repeat('x', 2147483647))",
            "SELECT lpad('x', 2147483647)",
            "SELECT * FROM generate_series(1, 1000000000)",
            "SELECT array_repeat(1, 2147483647)",
            "SELECT string_agg(column1, ',') FROM (VALUES ('a'))",
        ] {
            let refused = run(&lake, Arc::default(), sql, Limits::default()).await;
            assert!(
                matches!(refused, Err(SqlError::Invalid(_) | SqlError::NotAQuery(_))),
                "{sql}: {refused:?}"
            );
        }
        let answer = run(
            &lake,
            Arc::default(),
            "SELECT 1 + 1 AS two, round(2.5) AS r",
            Limits::default(),
        )
        .await
        .unwrap();
        assert_eq!(answer.batches[0].num_rows(), 1);

        // The row cap cuts a long answer.
        let capped = run(
            &lake,
            Arc::default(),
            &format!("SELECT * FROM {}, {}", rows(100, "a"), rows(100, "b")),
            Limits {
                max_rows: 10,
                ..Limits::default()
            },
        )
        .await
        .unwrap();
        assert!(capped.truncated);
        assert_eq!(
            capped.batches.iter().map(|b| b.num_rows()).sum::<usize>(),
            10
        );

        // 10^10 rows of cross join: stopped by the clock, promptly.
        let slow = format!(
            "SELECT sum(a.column1 * b.column1 + c.column1 * d.column1 + e.column1) FROM {}",
            ["a", "b", "c", "d", "e"].map(|t| rows(100, t)).join(", ")
        );
        let tight = Limits {
            timeout: Duration::from_millis(500),
            max_rows: 10,
        };
        let started = std::time::Instant::now();
        let result = run(&lake, Arc::default(), &slow, tight).await;
        assert!(matches!(result, Err(SqlError::Timeout(_))), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(5));

        // Sorting 10^8 rows needs more than the pool: stopped for memory (or by the clock).
        let big = format!(
            "SELECT a.column1 + b.column1 * 100 + c.column1 * 10000 + d.column1 * 1000000 AS v FROM {} ORDER BY v DESC",
            ["a", "b", "c", "d"].map(|t| rows(100, t)).join(", ")
        );
        let result = run(&lake, Arc::default(), &big, Limits::default()).await;
        assert!(
            matches!(result, Err(SqlError::Memory(_) | SqlError::Timeout(_))),
            "{result:?}"
        );

        // Two hostile queries at once: both cut off, and the engine still answers.
        let (a, b) = tokio::join!(
            run(&lake, Arc::default(), &slow, tight),
            run(&lake, Arc::default(), &big, tight)
        );
        assert!(a.is_err() && b.is_err(), "{a:?} {b:?}");
        assert!(
            run(&lake, Arc::default(), "SELECT 1", Limits::default())
                .await
                .is_ok()
        );
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz_config(300))]

        /// Whatever passes the guard is planned and run by the engine without taking it down:
        /// an answer or an error, never a crash, and the engine answers afterwards.
        #[test]
        fn fuzz_what_passes_the_guard_runs_safely(
            pieces in proptest::collection::vec(guard::tests::sql_piece(), 0..40),
            depth in 0usize..=guard::MAX_OPERATORS,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let dir = tempfile::tempdir().unwrap();
            let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
            let limits = Limits { timeout: Duration::from_secs(5), max_rows: 100 };
            let soup = pieces.join(" ");
            let deep = format!("SELECT 1{}", "+1".repeat(depth));
            runtime.block_on(async {
                let _ = run(&lake, Arc::default(), &soup, limits).await;
                let answer = run(&lake, Arc::default(), &deep, limits).await;
                assert!(answer.is_ok(), "{deep}: {answer:?}");
            });
        }
    }
}
