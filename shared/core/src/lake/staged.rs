//! Writes that become visible in one commit: data files staged first, then committed with
//! the removal of the files they replace, decided against the table as it is at the commit.

use std::collections::HashMap;

use deltalake::DeltaTableError;
use deltalake::arrow::array::Scalar;
use deltalake::arrow::compute::kernels::cmp::eq;
use deltalake::arrow::datatypes::{DataType, SchemaRef};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::scalars::ScalarExt;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, LogicalFileView};
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::parquet::schema::types::ColumnPath;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter, WriteMode};
use indexmap::IndexMap;

use super::{Lake, LakeError, evolve};

/// Rows per Parquet row group: bounds the writer's buffer on a million-row upload.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Commits between two checkpoints. Every load of a table replays the commits since the last
/// checkpoint, and our tables take one small commit per submission: at Delta's default of 100,
/// a deadline day's loads read up to a hundred log entries each (one request apiece on S3).
pub(super) const CHECKPOINT_INTERVAL: u64 = 10;

/// How many times a commit is retried against concurrent writers of the same partitions.
const COMMIT_ATTEMPTS: usize = 8;

/// Commits this process had to redo because a concurrent writer of the same partitions won.
static COMMIT_RETRIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many replace commits this process has retried after losing a race: what contention
/// costs on a deadline day (reported by the deadline-day benchmark).
pub fn commit_retries() -> u64 {
    COMMIT_RETRIES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Partition values a commit covers: column → accepted values.
pub type Scope<'a> = [(&'a str, Vec<String>)];

/// A current data file of a table, as a commit plans against it.
pub struct StoredFile(LogicalFileView);

impl StoredFile {
    /// Its path inside the table.
    pub fn path(&self) -> String {
        self.0.path().into_owned()
    }

    /// The rows it holds, as its add action's statistics say (none for a file written
    /// without them).
    pub fn rows(&self) -> Option<usize> {
        self.0.num_records()
    }

    /// One of its partition values.
    pub fn partition(&self, column: &str) -> Option<String> {
        self.0.partition_values_map().remove(column).flatten()
    }

    /// One of the tags it was sealed with ([`StagedWrite::seal`]); none for a file written
    /// otherwise.
    pub fn tag(&self, key: &str) -> Option<String> {
        // The kernel's file view exposes tags only through the whole add action.
        #[allow(deprecated)]
        let add = self.0.add_action();
        add.tags?.remove(key).flatten()
    }
}

impl Lake {
    /// Starts a write whose files become visible only when committed. The table itself is
    /// created only at the first commit, so a rejected first file leaves no trace.
    pub fn stage(
        &self,
        name: &str,
        schema: &SchemaRef,
        partitions: &[String],
    ) -> Result<StagedWrite, LakeError> {
        let writer = RecordBatchWriter::try_new(
            self.table_url(name).as_str(),
            schema.clone(),
            Some(partitions.to_vec()),
            Some(self.options.clone()),
        )?
        .with_writer_properties(writer_properties(schema, &[]));
        Ok(StagedWrite {
            lake: self.clone(),
            name: name.to_string(),
            schema: schema.clone(),
            writer,
            sealed: Vec::new(),
            partitions: partitions.to_vec(),
            staged_point: None,
        })
    }

    /// The current files of a table inside `scope` (none before its first commit).
    pub async fn files(&self, name: &str, scope: &Scope<'_>) -> Result<Vec<StoredFile>, LakeError> {
        let Some(table) = self.load(name).await? else {
            return Ok(Vec::new());
        };
        Ok(in_scope(table.snapshot()?, scope))
    }
}

/// How staged files are written. `random` columns hold unique, uniformly random values
/// (keyed hashes): a dictionary finds nothing to share in them and min/max statistics prune
/// nothing, so both are off there — for a million pseudonyms, a tenth of the writer's work.
/// Stored as bytes, they are not compressed either: random bytes do not compress, and trying
/// costs more than the rest of the file. (Their hex compresses to about the bytes' size.)
fn writer_properties(schema: &SchemaRef, random: &[&str]) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    for column in random {
        let path = ColumnPath::from(*column);
        builder = builder
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_statistics_enabled(path.clone(), EnabledStatistics::None);
        let bytes = schema
            .field_with_name(column)
            .is_ok_and(|f| f.data_type() == &DataType::Binary);
        if bytes {
            builder = builder.set_column_compression(path, Compression::UNCOMPRESSED);
        }
    }
    builder.build()
}

/// Whether every row of `batch` has the same, non-null, value in each partition column.
fn one_partition(batch: &RecordBatch, partitions: &[String]) -> bool {
    batch.num_rows() > 0
        && !partitions.is_empty()
        && partitions.iter().all(|name| {
            batch.column_by_name(name).is_some_and(|column| {
                let first = Scalar::new(column.slice(0, 1));
                eq(column, &first).is_ok_and(|same| same.true_count() == column.len())
            })
        })
}

pub(super) fn in_scope(
    snapshot: &deltalake::table::state::DeltaTableState,
    scope: &Scope<'_>,
) -> Vec<StoredFile> {
    snapshot
        .log_data()
        .iter()
        .map(StoredFile)
        .filter(|file| {
            scope.iter().all(|(column, accepted)| {
                file.partition(column)
                    .is_some_and(|v| accepted.contains(&v))
            })
        })
        .collect()
}

/// Data files written but not yet part of the table: a commit makes them visible in one
/// atomic step, `abort` (or a crash) leaves them as unreferenced files that readers never see.
pub struct StagedWrite {
    lake: Lake,
    name: String,
    schema: SchemaRef,
    writer: RecordBatchWriter,
    /// Files closed by [`StagedWrite::seal`], with their tags.
    sealed: Vec<Add>,
    partitions: Vec<String>,
    /// The failpoint between writing the files and committing them.
    staged_point: Option<&'static str>,
}

impl StagedWrite {
    /// The same write, with `columns` stored as unique random values (see
    /// [`writer_properties`]). Before the first row is written.
    pub fn with_random_columns(mut self, columns: &[&str]) -> StagedWrite {
        self.writer = self
            .writer
            .with_writer_properties(writer_properties(&self.schema, columns));
        self
    }

    pub async fn write(&mut self, batch: RecordBatch) -> Result<(), LakeError> {
        let batch = evolve::to_stored(batch, &self.schema)?;
        // A batch of one partition (every batch of a county's file) goes straight to it: the
        // writer's own split sorts the batch and copies every column to learn the same thing.
        // The values are gathered here, not by `one_partition`: deltalake does not export its
        // `Scalar` type, so only `write_partition`'s signature can name it.
        if one_partition(&batch, &self.partitions) {
            let values = self
                .partitions
                .iter()
                .map(|name| {
                    let column = batch.column_by_name(name)?;
                    ScalarExt::from_array(column.as_ref(), 0).map(|value| (name.clone(), value))
                })
                .collect::<Option<IndexMap<_, _>>>();
            if let Some(values) = values {
                // Boxed: the future is deep enough to overflow the compiler's layout limit
                // in the binaries that await it.
                Box::pin(
                    self.writer
                        .write_partition(batch, &values, WriteMode::Default),
                )
                .await?;
                return Ok(());
            }
        }
        self.writer.write(batch).await?;
        Ok(())
    }

    /// Closes what was written since the last seal as files of their own, tagged: a later
    /// commit can tell what they hold from the log alone, without reading them.
    pub async fn seal(&mut self, tags: &[(&str, &str)]) -> Result<(), LakeError> {
        for mut add in self.writer.flush().await? {
            let own = add.tags.get_or_insert_with(HashMap::new);
            own.extend(
                tags.iter()
                    .map(|(k, v)| (k.to_string(), Some(v.to_string()))),
            );
            self.sealed.push(add);
        }
        Ok(())
    }

    /// Every file written, sealed or not, as add actions (for a commit of the caller's own).
    pub(super) async fn into_adds(mut self) -> Result<Vec<Add>, LakeError> {
        let mut adds = std::mem::take(&mut self.sealed);
        adds.extend(self.writer.flush().await?);
        Ok(adds)
    }

    pub fn abort(mut self) {
        self.writer.reset();
    }

    /// Names the failpoint hit once the files are written and before they are committed.
    pub fn failing_at(mut self, point: &'static str) -> StagedWrite {
        self.staged_point = Some(point);
        self
    }

    /// Commits the staged files, removing every current file whose partition values match
    /// `replace` (column → accepted values). Returns the new table version.
    ///
    /// Writers of other partitions never conflict (Delta's conflict checker sees the
    /// predicate); a writer of the same partitions that wins the race makes this one reload
    /// and recompute what it replaces, so the last commit wins whole.
    pub async fn commit_replacing(
        self,
        replace: &Scope<'_>,
        metadata: serde_json::Map<String, serde_json::Value>,
    ) -> Result<i64, LakeError> {
        self.commit_planned(replace, |files| Ok(vec![true; files.len()]), metadata)
            .await
    }

    /// Commits the staged files, removing the current files inside `scope` that `plan`
    /// marks. The plan runs against the table as it is at each attempt and fails with
    /// [`LakeError::Moved`] when the table has changed in a way the staged files do not
    /// cover: nothing is committed then, and the caller stages again.
    pub async fn commit_planned(
        self,
        scope: &Scope<'_>,
        plan: impl Fn(&[StoredFile]) -> Result<Vec<bool>, LakeError>,
        metadata: serde_json::Map<String, serde_json::Value>,
    ) -> Result<i64, LakeError> {
        let (lake, name, schema, partitions, point) = (
            self.lake.clone(),
            self.name.clone(),
            self.schema.clone(),
            self.partitions.clone(),
            self.staged_point,
        );
        let adds = self.into_adds().await?;
        if let Some(point) = point {
            crate::failpoints::hit(point);
        }
        let predicate = scope
            .iter()
            .map(|(column, values)| {
                let list: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
                format!("{column} IN ({})", list.join(", "))
            })
            .collect::<Vec<_>>()
            .join(" AND ");
        let mut table = lake.ensure(&name, &schema, &partitions).await?;
        for _ in 0..COMMIT_ATTEMPTS {
            table.update_state().await?;
            let snapshot = table.snapshot()?;
            let files = in_scope(snapshot, scope);
            let removed = plan(&files)?;
            let mut actions: Vec<Action> = files
                .iter()
                .zip(removed)
                .filter(|(_, removed)| *removed)
                .map(|(file, _)| Action::Remove(file.0.remove_action(true)))
                .collect();
            actions.extend(adds.iter().cloned().map(Action::Add));
            if let Some(metadata) = evolve::widened(snapshot, &schema)? {
                actions.push(Action::Metadata(metadata));
            }
            let operation = DeltaOperation::Write {
                mode: SaveMode::Overwrite,
                partition_by: Some(partitions.clone()),
                predicate: Some(predicate.clone()),
            };
            let result =
                CommitBuilder::from(CommitProperties::default().with_metadata(metadata.clone()))
                    .with_actions(actions)
                    .build(Some(snapshot), table.log_store(), operation)
                    .await;
            match result {
                Ok(done) => return Ok(done.version() as i64),
                Err(DeltaTableError::Transaction { source }) => {
                    COMMIT_RETRIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(table = %name, error = %source, "commit conflict, retrying");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(LakeError::Contended {
            table: name,
            attempts: COMMIT_ATTEMPTS,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use deltalake::arrow::array::{Int64Array, StringArray};
    use deltalake::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(schema: &SchemaRef, parts: &[Option<&str>], values: &[i64]) -> RecordBatch {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(parts.to_vec())),
                Arc::new(Int64Array::from(values.to_vec())),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_batch_is_of_one_partition_only_when_every_row_says_so() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("part", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
        ]));
        let part = ["part".to_string()];
        let one = batch(&schema, &[Some("a"), Some("a")], &[1, 2]);
        assert!(one_partition(&one, &part));
        assert!(!one_partition(&one, &[]));
        assert!(!one_partition(&one.slice(0, 0), &part));
        for mixed in [
            batch(&schema, &[Some("a"), Some("b")], &[1, 2]),
            batch(&schema, &[Some("a"), None], &[1, 2]),
            batch(&schema, &[None, None], &[1, 2]),
        ] {
            assert!(!one_partition(&mixed, &part));
        }
    }

    /// A batch of one partition, written straight to it, lands where the writer's own split
    /// puts the same rows of a mixed batch.
    #[tokio::test]
    async fn batches_of_one_partition_and_of_several_land_alike() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("part", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ]));
        let mut staged = lake.stage("tables/t", &schema, &["part".into()]).unwrap();
        staged
            .write(batch(&schema, &[Some("a"), Some("a")], &[1, 2]))
            .await
            .unwrap();
        staged
            .write(batch(&schema, &[Some("b"), Some("a")], &[3, 4]))
            .await
            .unwrap();
        let scope = [("part", vec!["a".to_string(), "b".to_string()])];
        staged
            .commit_replacing(&scope, Default::default())
            .await
            .unwrap();
        let files = lake.files("tables/t", &scope).await.unwrap();
        let mut parts: Vec<_> = files.iter().filter_map(|f| f.partition("part")).collect();
        parts.sort();
        parts.dedup();
        assert_eq!(parts, ["a", "b"]);
        let ctx = lake.session(&["tables/t"]).await.unwrap().ctx;
        let rows = ctx
            .sql("SELECT part, SUM(n) AS n FROM t GROUP BY part ORDER BY part")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let sums = crate::lake::read::int(&rows[0], 1).unwrap();
        assert_eq!(sums.values().to_vec(), [7, 3]);
    }

    /// A random column is written without a dictionary or statistics, and without compression
    /// when it holds bytes; the others keep all three, and every row is there.
    #[tokio::test]
    async fn a_random_column_is_written_plain() {
        use deltalake::parquet::basic::Encoding;
        use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};

        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("part", DataType::Utf8, false),
            Field::new("key", DataType::Utf8, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("digest", DataType::Binary, false),
        ]));
        let rows = 10_000;
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["a"; rows])),
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| format!("{i:064x}")),
                )),
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| ["x", "y"][i % 2]),
                )),
                Arc::new(deltalake::arrow::array::BinaryArray::from_iter_values(
                    (0..rows).map(|i| (i as u64).to_le_bytes().repeat(4)),
                )),
            ],
        )
        .unwrap();
        let mut staged = lake
            .stage("tables/t", &schema, &["part".into()])
            .unwrap()
            .with_random_columns(&["key", "digest"]);
        staged.write(batch).await.unwrap();
        let scope = [("part", vec!["a".to_string()])];
        staged
            .commit_replacing(&scope, Default::default())
            .await
            .unwrap();

        let files = lake.files("tables/t", &scope).await.unwrap();
        let [file] = files.as_slice() else {
            panic!("one file: {}", files.len())
        };
        assert_eq!(file.rows(), Some(rows));
        let path = dir.path().join("tables/t").join(file.path());
        let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
        for group in reader.metadata().row_groups() {
            let (key, kind, digest) = (group.column(0), group.column(1), group.column(2));
            assert_eq!(key.column_path().string(), "key");
            assert_eq!(digest.column_path().string(), "digest");
            for random in [key, digest] {
                assert!(random.statistics().is_none());
                assert!(!random.encodings().any(|e| e == Encoding::RLE_DICTIONARY));
            }
            assert!(kind.statistics().is_some());
            assert!(kind.encodings().any(|e| e == Encoding::RLE_DICTIONARY));
            // Random bytes are not compressed; their hex, and everything else, is.
            assert_eq!(digest.compression(), Compression::UNCOMPRESSED);
            assert!(matches!(key.compression(), Compression::ZSTD(_)));
            assert!(matches!(kind.compression(), Compression::ZSTD(_)));
        }
    }
}
