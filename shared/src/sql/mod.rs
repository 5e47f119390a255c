//! Read-only SQL for analysts over the published views: the indicator snapshot, the region
//! tree (no village-level units) and the open datasets' records. No personal data is
//! reachable: `workers` and `complaints` records, the submission log and raw files are not in
//! the catalogue at all.
//!
//! One SELECT, nothing else (parsed and checked before planning, and DataFusion's own SQL
//! options forbid DDL, DML and statements); a memory pool without spilling to disk; a time
//! limit; a cap on the rows returned.

use std::time::Duration;

use deltalake::arrow::record_batch::RecordBatch;
use deltalake::datafusion::common::tree_node::{Transformed, TreeNode};
use deltalake::datafusion::execution::context::SQLOptions;
use deltalake::datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use deltalake::datafusion::execution::runtime_env::RuntimeEnvBuilder;
use deltalake::datafusion::physical_plan::coop::CooperativeExec;
use deltalake::datafusion::physical_plan::{ExecutionPlan, execute_stream};
use deltalake::datafusion::prelude::{SessionConfig, SessionContext, col, lit};
use deltalake::datafusion::sql::parser::{DFParser, Statement as DfStatement};
use deltalake::datafusion::sql::sqlparser::ast::Statement;
use futures::StreamExt;
use std::sync::Arc;

use crate::datasets::{self, Openness, columns};
use crate::lake::{Lake, LakeError, names};
use crate::regions::Level;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    pub memory_bytes: usize,
    pub max_rows: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(10),
            memory_bytes: 256 << 20,
            max_rows: 10_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("only one SELECT query is allowed: {0}")]
    NotAQuery(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the query took longer than {0:?} and was stopped")]
    Timeout(Duration),
    #[error("the query needed more than {0} MiB of memory and was stopped")]
    Memory(usize),
    #[error(transparent)]
    Lake(#[from] LakeError),
}

/// The rows a query returned, and whether the cap cut them.
#[derive(Debug)]
pub struct Answer {
    pub batches: Vec<RecordBatch>,
    pub truncated: bool,
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

/// Accepts exactly one query statement.
fn check(sql: &str) -> Result<(), SqlError> {
    let statements = DFParser::parse_sql(sql).map_err(|e| SqlError::Invalid(e.to_string()))?;
    match statements.iter().collect::<Vec<_>>()[..] {
        [DfStatement::Statement(statement)] if matches!(**statement, Statement::Query(_)) => Ok(()),
        [] => Err(SqlError::NotAQuery("the query is empty".into())),
        [_] => Err(SqlError::NotAQuery("this statement is not a SELECT".into())),
        _ => Err(SqlError::NotAQuery(format!(
            "{} statements",
            statements.len()
        ))),
    }
}

async fn session(lake: &Lake, limits: &Limits) -> Result<SessionContext, SqlError> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(limits.memory_bytes, 1.0)
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
        .build_arc()
        .map_err(|e| SqlError::Invalid(e.to_string()))?;
    let config = SessionConfig::new().with_target_partitions(2);
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    let lake_err =
        |e: deltalake::datafusion::error::DataFusionError| SqlError::Lake(LakeError::from(e));

    // Each view reads a provider that is not itself in the catalogue, so only the listed
    // columns can be named.
    if let Some(table) = lake.load(names::INDICATOR_VALUES).await? {
        table
            .update_datafusion_session(&ctx.state())
            .map_err(LakeError::from)?;
        let provider = table.table_provider().await.map_err(LakeError::from)?;
        let frame = ctx.read_table(provider).map_err(lake_err)?;
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

/// Runs one analyst query within `limits`.
pub async fn run(lake: &Lake, sql: &str, limits: Limits) -> Result<Answer, SqlError> {
    check(sql)?;
    let ctx = session(lake, &limits).await?;
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let work = async {
        let frame = ctx
            .sql_with_options(sql, options)
            .await
            .map_err(|e| classify(e, &limits))?;
        let plan = frame
            .create_physical_plan()
            .await
            .map_err(|e| classify(e, &limits))?;
        // Every operator's output spends the task's scheduling budget, so that even a single
        // huge aggregation over a cross join yields to the executor and the time limit can
        // stop it (by default only leaves and exchanges do).
        let plan = plan
            .transform_up(|node| {
                Ok(Transformed::yes(
                    Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>
                ))
            })
            .map_err(|e| classify(e, &limits))?
            .data;
        let mut stream = execute_stream(plan, ctx.task_ctx()).map_err(|e| classify(e, &limits))?;
        let mut batches = Vec::new();
        let mut rows = 0;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| classify(e, &limits))?;
            let room = limits.max_rows - rows;
            if batch.num_rows() > room {
                batches.push(batch.slice(0, room));
                return Ok(Answer {
                    batches,
                    truncated: true,
                });
            }
            rows += batch.num_rows();
            batches.push(batch);
        }
        Ok(Answer {
            batches,
            truncated: false,
        })
    };
    tokio::time::timeout(limits.timeout, work)
        .await
        .map_err(|_| SqlError::Timeout(limits.timeout))?
}

fn classify(e: deltalake::datafusion::error::DataFusionError, limits: &Limits) -> SqlError {
    use deltalake::datafusion::error::DataFusionError;
    match e.find_root() {
        DataFusionError::ResourcesExhausted(_) => SqlError::Memory(limits.memory_bytes >> 20),
        _ => SqlError::Invalid(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_select() {
        assert!(check("SELECT 1").is_ok());
        assert!(check("WITH a AS (SELECT 1) SELECT * FROM a").is_ok());
        for bad in [
            "",
            "SELECT 1; SELECT 2",
            "DROP TABLE outlets",
            "INSERT INTO outlets VALUES (1)",
            "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
            "COPY (SELECT 1) TO '/tmp/x.csv'",
            "SET datafusion.execution.target_partitions = 1",
            "EXPLAIN SELECT 1",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn files_and_closed_data_are_out_of_reach() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        for sql in [
            "SELECT * FROM workers",
            "SELECT * FROM complaints",
            "SELECT * FROM '/etc/passwd'",
            "SELECT * FROM submissions",
        ] {
            assert!(run(&lake, sql, Limits::default()).await.is_err(), "{sql}");
        }
        let answer = run(&lake, "SELECT 1 + 1 AS two", Limits::default())
            .await
            .unwrap();
        assert_eq!(answer.batches[0].num_rows(), 1);
    }

    #[tokio::test]
    async fn runaway_queries_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let capped = run(
            &lake,
            "SELECT * FROM generate_series(1, 1000000)",
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
        let tight = Limits {
            timeout: Duration::from_millis(300),
            memory_bytes: 8 << 20,
            max_rows: 10,
        };
        let slow = run(
            &lake,
            "SELECT sum(a.value * b.value + c.value) FROM generate_series(1, 3000) a CROSS JOIN generate_series(1, 3000) b CROSS JOIN generate_series(1, 300) c",
            tight,
        )
        .await;
        assert!(
            matches!(slow, Err(SqlError::Timeout(_)) | Err(SqlError::Memory(_))),
            "{slow:?}"
        );
        // With memory to spare, the same query is stopped by the clock.
        let roomy = Limits {
            memory_bytes: 512 << 20,
            ..tight
        };
        let started = std::time::Instant::now();
        let slow = run(
            &lake,
            "SELECT sum(a.value * b.value + c.value) FROM generate_series(1, 3000) a CROSS JOIN generate_series(1, 3000) b CROSS JOIN generate_series(1, 300) c",
            roomy,
        )
        .await;
        assert!(matches!(slow, Err(SqlError::Timeout(_))), "{slow:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let big = run(
            &lake,
            "SELECT a.value FROM generate_series(1, 2000000) a ORDER BY a.value DESC",
            tight,
        )
        .await;
        assert!(
            matches!(big, Err(SqlError::Memory(_)) | Err(SqlError::Timeout(_))),
            "{big:?}"
        );
    }
}
