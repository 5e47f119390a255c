//! Rust values ⇄ Arrow, the one way: a row type declares its schema once, serde carries its
//! values through arrow-json into that schema, and back out of any batch whose columns bear
//! the field names (whatever physical type DataFusion chose for them).

use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::json::{ArrayWriter, ReaderBuilder};
use deltalake::arrow::record_batch::RecordBatch;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

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

/// A float field read back bit for bit (`#[serde(default, deserialize_with = …)]` on an
/// `Option<f64>`; `default` because a null is left out of the JSON).
/// serde_json's own number parser (without its `float_roundtrip` feature, which would rebuild
/// most of the dependency tree) may be one unit in the last place off for a 17-digit double,
/// so a published value read back could differ from the one computed; the standard
/// library's parser is exact. Only for serde_json input, as [`decode`] is.
pub fn exact<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    let Some(raw) = Option::<Box<RawValue>>::deserialize(deserializer)? else {
        return Ok(None);
    };
    match raw.get() {
        "null" => Ok(None),
        text => text.parse().map(Some).map_err(serde::de::Error::custom),
    }
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

    #[test]
    fn floats_come_back_bit_for_bit() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Value {
            #[serde(default, deserialize_with = "exact")]
            gap: Option<f64>,
        }
        let schema = Arc::new(Schema::new(vec![Field::new(
            "gap",
            DataType::Float64,
            true,
        )]));
        // 100 − 10/11·100: serde_json's default parser reads it back one unit too low.
        let rows: Vec<Value> = [Some(100.0 - 10.0 / 11.0 * 100.0), None, Some(0.1 + 0.2)]
            .into_iter()
            .chain((1..2000).map(|i| Some(100.0 - f64::from(i) / 7.0)))
            .map(|gap| Value { gap })
            .collect();
        let back: Vec<Value> = decode(&[encode(&schema, &rows).unwrap()]).unwrap();
        assert_eq!(back, rows);
    }
}
