//! Rust values ⇄ Arrow, the one way: a row type declares its schema once, serde carries its
//! values through arrow-json into that schema, and back out of any batch whose columns bear
//! the field names (whatever physical type DataFusion chose for them).

use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::json::{ArrayWriter, ReaderBuilder};
use deltalake::arrow::record_batch::RecordBatch;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::LakeError;

/// The rows as one batch of `schema`; fields the schema lacks are left out.
pub fn encode<T: Serialize>(schema: &SchemaRef, rows: &[T]) -> Result<RecordBatch, LakeError> {
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.len().max(1))
        .build_decoder()?;
    decoder.serialize(rows)?;
    Ok(decoder
        .flush()?
        .unwrap_or_else(|| RecordBatch::new_empty(schema.clone())))
}

/// The batches' rows as values of `T`; a null or missing column reads as `T`'s default for
/// the field (`Option` fields as `None`).
pub fn decode<T: DeserializeOwned>(batches: &[RecordBatch]) -> Result<Vec<T>, LakeError> {
    let mut writer = ArrayWriter::new(Vec::new());
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    let json = writer.into_inner();
    if json.is_empty() {
        return Ok(Vec::new());
    }
    Ok(serde_json::from_slice(&json)?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use deltalake::arrow::datatypes::{DataType, Field, Schema};
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Row {
        name: String,
        opened: Option<String>,
        count: u32,
        tags: Vec<String>,
        #[serde(skip)]
        private: u32,
    }

    #[test]
    fn round_trips_through_the_declared_types() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("opened", DataType::Date32, true),
            Field::new("count", DataType::Int64, false),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, false))),
                false,
            ),
        ]));
        let rows = vec![
            Row {
                name: "乌兰浩特市".into(),
                opened: Some("2023-07-01".into()),
                count: 3,
                tags: vec!["a".into(), "b".into()],
                private: 7,
            },
            Row {
                name: "阿尔山市".into(),
                opened: None,
                count: 0,
                tags: vec![],
                private: 0,
            },
        ];
        let batch = encode(&schema, &rows).unwrap();
        assert_eq!(batch.schema(), schema);
        assert_eq!(batch.num_rows(), 2);
        let back: Vec<Row> = decode(&[batch]).unwrap();
        assert_eq!(back[0].opened.as_deref(), Some("2023-07-01"));
        assert_eq!(
            back[0].private, 0,
            "a skipped field is neither stored nor read"
        );
        assert_eq!(back[1], rows[1]);
        assert_eq!(back[0].tags, ["a", "b"]);
    }
}
