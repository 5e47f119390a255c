//! Tables written before a column was declared: the next replace commit widens their schema,
//! so a release that adds a column (the snapshot's `quality`) needs no migration step and the
//! older files read it as null.

use deltalake::arrow::datatypes::SchemaRef;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::{Metadata, MetadataExt, StructType};
use deltalake::table::state::DeltaTableState;

use super::LakeError;

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
}
