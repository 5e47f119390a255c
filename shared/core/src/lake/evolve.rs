//! Tables written by an older release. A table created before a column was declared gets it
//! at the next replace commit (its older files read it as null), so a release that adds a
//! column (the snapshot's `quality`) needs no migration step. A table created when pseudonyms
//! were stored as 64 hex characters, not as their 32 bytes, goes on holding hex: writes to it
//! spell the bytes in hex and the readers take both, so no lake's tables have to be rewritten.

use std::sync::Arc;

use deltalake::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::{self, Metadata, MetadataExt, StructType};
use deltalake::table::state::DeltaTableState;

use super::LakeError;

/// The schema a write to a table uses: the declared one, except that a column declared as
/// bytes which the stored table holds as text stays text.
pub(super) fn as_stored(declared: &SchemaRef, stored: &StructType) -> SchemaRef {
    let text = |name: &str| {
        stored
            .field(name)
            .is_some_and(|f| f.data_type() == &kernel::DataType::STRING)
    };
    let fields: Vec<Field> = declared
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Binary if text(f.name()) => f.as_ref().clone().with_data_type(DataType::Utf8),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(
        fields,
        declared.metadata().clone(),
    ))
}

/// `batch` in the types of `schema` (from [`as_stored`]): a bytes column the schema holds as
/// text is spelled in lower-case hex. Any other batch is returned as it is.
pub(super) fn to_stored(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, LakeError> {
    let spelled = |column: &ArrayRef, field: &Field| {
        column.data_type() == &DataType::Binary && field.data_type() == &DataType::Utf8
    };
    let columns = batch.columns();
    if !columns
        .iter()
        .zip(schema.fields())
        .any(|(column, field)| spelled(column, field))
    {
        return Ok(batch);
    }
    let columns: Vec<ArrayRef> = columns
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if !spelled(column, field) {
                return column.clone();
            }
            let hex: StringArray = column
                .as_binary::<i32>()
                .iter()
                .map(|bytes| bytes.map(hex::encode))
                .collect();
            Arc::new(hex) as ArrayRef
        })
        .collect();
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The table's metadata with the columns a newer release declares added, when the table was
/// created before them (its older files read them as null); `None` when it has them all. Never
/// drops a column: a table with one the schema lacks is left as it is.
pub(super) fn widened(
    snapshot: &DeltaTableState,
    schema: &SchemaRef,
) -> Result<Option<Metadata>, LakeError> {
    let stored = snapshot.schema();
    let has = |name: &str| stored.fields().any(|f| f.name() == name);
    let new = schema.fields().iter().any(|f| !has(f.name()));
    let kept = stored
        .fields()
        .all(|f| schema.fields().iter().any(|g| g.name() == f.name()));
    if !new || !kept {
        return Ok(None);
    }
    let columns: StructType = schema.as_ref().try_into_kernel()?;
    let widened = snapshot.metadata().clone().with_schema(&columns);
    Ok(Some(widened.map_err(deltalake::DeltaTableError::from)?))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use deltalake::arrow::array::{Array, Int64Array, RecordBatch, StringArray};
    use deltalake::arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::lake::Lake;

    fn schema(columns: &[&str]) -> SchemaRef {
        let mut fields = vec![Field::new("part", DataType::Utf8, false)];
        fields.extend(
            columns
                .iter()
                .map(|c| Field::new(*c, DataType::Int64, true)),
        );
        Arc::new(Schema::new(fields))
    }

    async fn replace(lake: &Lake, columns: &[&str], part: &str) {
        let schema = schema(columns);
        let mut arrays: Vec<Arc<dyn Array>> = vec![Arc::new(StringArray::from(vec![part]))];
        arrays.extend(
            columns
                .iter()
                .map(|_| Arc::new(Int64Array::from(vec![7])) as Arc<dyn Array>),
        );
        let batch = RecordBatch::try_new(schema.clone(), arrays).unwrap();
        let mut staged = lake
            .stage("tables/t", &schema, &["part".to_string()])
            .unwrap();
        staged.write(batch).await.unwrap();
        staged
            .commit_replacing(&[("part", vec![part.to_string()])], Default::default())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_column_declared_later_is_added_and_reads_null_in_older_files() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        replace(&lake, &["a"], "old").await;
        replace(&lake, &["a", "b"], "new").await;
        let ctx = lake.session(&["tables/t"]).await.unwrap().ctx;
        let batches = ctx
            .sql("SELECT part, a, b FROM t ORDER BY part")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let batch = &batches[0];
        // "new" sorts before "old": the new file has b, the old one reads it as null.
        let b = crate::lake::read::int(batch, 2).unwrap();
        assert_eq!((b.is_null(0), b.value(0), b.is_null(1)), (false, 7, true));
        // A release without the column leaves the table as it is.
        replace(&lake, &["a"], "old").await;
        let table = lake.load("tables/t").await.unwrap().unwrap();
        let names: Vec<String> = table
            .snapshot()
            .unwrap()
            .schema()
            .fields()
            .map(|f| f.name().to_string())
            .collect();
        assert_eq!(names, ["part", "a", "b"]);
    }

    /// Writes `keys` (as bytes, as the validator builds them) into table `name` with the
    /// schema a write to it uses, committed as partition `part`.
    async fn write_keys(lake: &Lake, name: &str, part: &str, keys: &[[u8; 32]]) -> SchemaRef {
        let declared = Arc::new(Schema::new(vec![
            Field::new("part", DataType::Utf8, false),
            Field::new("key", DataType::Binary, false),
        ]));
        let schema = lake.schema_to_write(name, &declared).await.unwrap();
        let batch = RecordBatch::try_new(
            declared.clone(),
            vec![
                Arc::new(StringArray::from(vec![part; keys.len()])),
                Arc::new(deltalake::arrow::array::BinaryArray::from_iter_values(keys)),
            ],
        )
        .unwrap();
        let mut staged = lake.stage(name, &schema, &["part".to_string()]).unwrap();
        staged.write(batch).await.unwrap();
        staged
            .commit_replacing(&[("part", vec![part.to_string()])], Default::default())
            .await
            .unwrap();
        schema
    }

    /// A table created when pseudonyms were stored as hex goes on holding hex, spelled as
    /// before; a new table holds the bytes.
    #[tokio::test]
    async fn a_table_of_hex_pseudonyms_goes_on_holding_hex() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let hex_schema = Arc::new(Schema::new(vec![
            Field::new("part", DataType::Utf8, false),
            Field::new("key", DataType::Utf8, false),
        ]));
        let old = RecordBatch::try_new(
            hex_schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["old"])),
                Arc::new(StringArray::from(vec![hex::encode([1u8; 32])])),
            ],
        )
        .unwrap();
        let mut staged = lake
            .stage("tables/old", &hex_schema, &["part".to_string()])
            .unwrap();
        staged.write(old).await.unwrap();
        staged
            .commit_replacing(&[("part", vec!["old".to_string()])], Default::default())
            .await
            .unwrap();

        let written = write_keys(&lake, "tables/old", "new", &[[0xab; 32]]).await;
        assert_eq!(written.field(1).data_type(), &DataType::Utf8);
        let ctx = lake.session(&["tables/old"]).await.unwrap().ctx;
        let batches = ctx
            .sql("SELECT CAST(key AS VARCHAR) FROM old ORDER BY part")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let keys = crate::lake::read::text(&batches[0], 0).unwrap();
        assert_eq!(keys.value(0), "ab".repeat(32));
        assert_eq!(keys.value(1), "01".repeat(32));

        let written = write_keys(&lake, "tables/new", "new", &[[0xab; 32]]).await;
        assert_eq!(written.field(1).data_type(), &DataType::Binary);
        let ctx = lake.session(&["tables/new"]).await.unwrap().ctx;
        let batches = ctx
            .sql("SELECT key FROM new")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let keys =
            deltalake::arrow::compute::cast(batches[0].column(0), &DataType::Binary).unwrap();
        assert_eq!(keys.as_binary::<i32>().value(0), [0xab; 32]);
    }
}
