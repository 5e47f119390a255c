//! Compaction of a small append-only table (the submission log): its one-row files rewritten
//! into one, safely against other processes compacting it at the same time.

use deltalake::DeltaTable;
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Transaction};
use deltalake::protocol::DeltaOperation;

use super::{Lake, LakeError, register};

/// The application-transaction id every compaction commits with.
const COMPACTION_APP_ID: &str = "jiazheng.compact";

impl Lake {
    /// Rewrites the table's files into one when it has more than `max_files`; returns whether
    /// a compaction was committed. Rows appended meanwhile are kept: only the files read are
    /// removed, with `dataChange = false`, so appends never conflict with a compaction.
    ///
    /// Two compactions must never both commit: each removes the same files and adds their
    /// rows again, so both landing doubles every row (a deadline day of 8 processes grew a log
    /// of 500 decisions to 1.4 million rows that way through deltalake's OPTIMIZE). Delta's
    /// conflict checker lets concurrent `dataChange = false` removes of one file pass, and
    /// OPTIMIZE drops application transactions from its commit; so each compaction here
    /// commits one under a shared id, and of any compactions that read the same version
    /// only the first lands — a later one sees the id in a winning commit and fails with
    /// `ConcurrentTransaction`.
    ///
    /// `table` is the table `name` as the caller last loaded or wrote it (no second load).
    pub async fn compact(
        &self,
        name: &str,
        table: &DeltaTable,
        schema: &SchemaRef,
        max_files: usize,
    ) -> Result<bool, LakeError> {
        let snapshot = table.snapshot()?.clone();
        let files = snapshot.log_data().num_files();
        if files <= max_files {
            return Ok(false);
        }
        let ctx = SessionContext::new();
        register(&ctx, name, table).await?;
        let short = name.rsplit('/').next().unwrap_or(name);
        let columns: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| format!("\"{}\"", f.name()))
            .collect();
        let batches = ctx
            .sql(&format!("SELECT {} FROM {short}", columns.join(", ")))
            .await?
            .collect()
            .await?;

        let mut staged = self.stage(name, schema, &[])?;
        for batch in batches {
            let columns = batch
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(column, field)| cast(column, field.data_type()))
                .collect::<Result<Vec<_>, _>>()?;
            staged
                .write(RecordBatch::try_new(schema.clone(), columns)?)
                .await?;
        }
        let adds = staged.into_adds().await?;
        let mut actions: Vec<Action> = snapshot
            .log_data()
            .iter()
            .map(|file| Action::Remove(file.remove_action(false)))
            .collect();
        actions.extend(adds.into_iter().map(|mut add| {
            add.data_change = false;
            Action::Add(add)
        }));
        let read = snapshot.version();
        let claim = Transaction::new(COMPACTION_APP_ID, read as i64);
        let operation = DeltaOperation::Optimize {
            predicate: None,
            target_size: 0,
        };
        let result =
            CommitBuilder::from(CommitProperties::default().with_application_transaction(claim))
                .with_actions(actions)
                .build(Some(&snapshot), table.log_store(), operation)
                .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) => {
                // The rewritten file stays unreferenced, as after a crash. Usually another
                // process compacted first (`ConcurrentTransaction`); the error says if not.
                tracing::info!(table = name, %error, files, "table not compacted");
                Ok(false)
            }
        }
    }
}
