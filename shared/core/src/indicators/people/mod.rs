//! Exact distinct counts of people on compact keys.
//!
//! Indicators about workers count people by their pseudonym (32 bytes; 64 hex characters in a
//! table created before pseudonyms were stored as bytes), at five levels and under up to five
//! conditions each. DataFusion's `COUNT(DISTINCT …)` keeps one hash set per group and
//! aggregate, so a million workers cost twenty sets of a million keys
//! (over 1 GB with the sort that numbered them). Here each pseudonym is numbered once as it is
//! read ([`PERSON`], a dense `u32` per distinct pseudonym of the query), and [`PEOPLE_SET`]
//! ([`count`]) gathers each group's numbers in a list while it is small, a bitmap (one bit per
//! person of the period) once that is smaller, and returns the set itself: the query groups by
//! street only, and each level above is counted as the union of the sets below it
//! (`measures::upward`). Exact — one number per distinct pseudonym — in a fraction of the
//! memory, and each row aggregated once instead of once per level.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use deltalake::arrow::array::{ArrayRef, AsArray, UInt32Array};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::DataType;
use deltalake::datafusion::common::{DataFusionError, ScalarValue};
use deltalake::datafusion::logical_expr::{
    ColumnarValue, ScalarUDF, Signature, SimpleScalarUDF, TypeSignature, Volatility,
};
use deltalake::datafusion::prelude::SessionContext;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

mod count;

pub(super) use count::Members;

/// The scalar function numbering pseudonyms.
pub(super) const PERSON: &str = "person";
/// The aggregate gathering distinct person numbers into a set ([`Members`], encoded).
pub(super) const PEOPLE_SET: &str = "people_set";

/// Registers [`PERSON`] (with numbering of its own, so numbers are per query) and
/// [`PEOPLE_SET`] on the session. The numbering starts with room for `people` pseudonyms:
/// grown from empty, a million of them cost twice the time, rehashing as the table doubles.
pub(super) fn register(ctx: &SessionContext, people: usize) {
    let numbers = Arc::new(Mutex::new(Numbers::with_room(people)));
    // As the lake's tables are read (deltalake forces view types): declared as `Binary`, the
    // plan would copy every pseudonym into a new array before numbering it. Text is a table
    // written before pseudonyms were stored as bytes (see `lake::evolve`).
    let read_as = [DataType::BinaryView, DataType::Utf8View]
        .into_iter()
        .map(|t| TypeSignature::Exact(vec![t]))
        .collect();
    ctx.register_udf(ScalarUDF::from(SimpleScalarUDF::new_with_signature(
        PERSON,
        // The numbering depends on the order rows arrive in; never folded or reordered.
        Signature::one_of(read_as, Volatility::Volatile),
        DataType::UInt32,
        Arc::new(move |args: &[ColumnarValue]| number(&numbers, args)),
    )));
    ctx.register_udaf(count::udaf());
}

/// A people count as the catalogue declares it (`COUNT(DISTINCT …)` over the person key, which
/// the query has numbered) as the set [`PEOPLE_SET`] gathers; `None` for anything but one such
/// count as the whole expression.
pub(super) fn set_of(aggregate: &str) -> Option<String> {
    let counted = aggregate.trim().strip_prefix("COUNT(DISTINCT ")?;
    // The parenthesis closing the count must be the expression's last character.
    let mut depth = 1usize;
    for (at, c) in counted.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            return (at + 1 == counted.len()).then(|| format!("{PEOPLE_SET}({counted}"));
        }
    }
    None
}

/// One number per distinct pseudonym, in the order they are first read.
///
/// Each of a million rows looks its pseudonym up at a random place, so the table searched is
/// kept small: it holds only 4-byte positions into `pseudonyms`, which grows by appending.
/// For a million people that is 10 MB searched (small enough for the processor's cache)
/// instead of the 75 MB a map holding the keys would be.
#[derive(Default)]
struct Numbers {
    /// Where each pseudonym is in `pseudonyms`, found by its leading bytes (uniformly random
    /// already: a keyed hash).
    index: HashTable<u32>,
    /// Pseudonyms' 32 bytes, with their numbers, in the order read.
    pseudonyms: Vec<([u8; 32], u32)>,
    /// Any other key, kept whole (exact for any value, compact for the normal case).
    others: HashMap<Vec<u8>, u32>,
    next: u32,
}

/// A key as it is numbered.
enum Key<'a> {
    Pseudonym([u8; 32]),
    Other(&'a [u8]),
}

impl<'a> Key<'a> {
    /// A stored pseudonym: its 32 bytes.
    fn of_bytes(key: &'a [u8]) -> Key<'a> {
        <[u8; 32]>::try_from(key).map_or(Key::Other(key), Key::Pseudonym)
    }

    /// A pseudonym stored as text: the bytes its hex spells.
    fn of_text(key: &'a str) -> Key<'a> {
        pseudonym_bytes(key).map_or(Key::Other(key.as_bytes()), Key::Pseudonym)
    }
}

/// A pseudonym's place in [`Numbers::index`].
fn leading(pseudonym: &[u8; 32]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&pseudonym[..8]);
    u64::from_le_bytes(word)
}

impl Numbers {
    fn with_room(people: usize) -> Numbers {
        let mut numbers = Numbers::default();
        // Only a head start: if the room cannot be had, the table grows as it fills.
        if numbers.index.try_reserve(people, |_| 0).is_ok() {
            let _ = numbers.pseudonyms.try_reserve(people);
        }
        numbers
    }

    fn of(&mut self, key: Key<'_>) -> Result<u32, DataFusionError> {
        let next = self.next;
        let number = match key {
            Key::Pseudonym(bytes) => {
                let pseudonyms = &self.pseudonyms;
                let entry = self.index.entry(
                    leading(&bytes),
                    |&at| pseudonyms[at as usize].0 == bytes,
                    |&at| leading(&pseudonyms[at as usize].0),
                );
                match entry {
                    Entry::Occupied(found) => self.pseudonyms[*found.get() as usize].1,
                    Entry::Vacant(slot) => {
                        let at = u32::try_from(self.pseudonyms.len()).map_err(|_| too_many())?;
                        slot.insert(at);
                        self.pseudonyms.push((bytes, next));
                        next
                    }
                }
            }
            Key::Other(key) => *self.others.entry(key.to_vec()).or_insert(next),
        };
        if number == next {
            self.next = next.checked_add(1).ok_or_else(too_many)?;
        }
        Ok(number)
    }
}

fn too_many() -> DataFusionError {
    DataFusionError::ResourcesExhausted("more than 2^32 people in a period".into())
}

/// The 32 bytes 64 lower-case hex digits spell, read in one pass (this runs for every row of
/// a period's workers in a table that stores them as text). Lower-case only: another spelling
/// of the same bytes is another key, as it is to `COUNT(DISTINCT …)`.
fn pseudonym_bytes(key: &str) -> Option<[u8; 32]> {
    /// Each byte's value as a lower-case hex digit; 0x10 for any other byte.
    const DIGIT: [u8; 256] = {
        let mut table = [0x10u8; 256];
        let mut i = 0;
        while i < 10 {
            table[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            table[b'a' as usize + i] = 10 + i as u8;
            i += 1;
        }
        table
    };
    let hex: &[u8; 64] = key.as_bytes().try_into().ok()?;
    let mut bytes = [0u8; 32];
    let mut invalid = 0u8;
    for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
        let (high, low) = (DIGIT[usize::from(pair[0])], DIGIT[usize::from(pair[1])]);
        invalid |= high | low;
        *byte = (high << 4) | low;
    }
    (invalid & 0x10 == 0).then_some(bytes)
}

fn number(
    numbers: &Mutex<Numbers>,
    args: &[ColumnarValue],
) -> Result<ColumnarValue, DataFusionError> {
    let [arg] = args else {
        return Err(DataFusionError::Plan(format!(
            "{PERSON} takes one argument"
        )));
    };
    let keys: ArrayRef = arg.to_array(1)?;
    let mut numbers = numbers.lock().unwrap_or_else(PoisonError::into_inner);
    let out = if keys.data_type() == &DataType::Utf8View {
        keys.as_string_view()
            .iter()
            .map(|key| key.map(|k| numbers.of(Key::of_text(k))).transpose())
            .collect::<Result<UInt32Array, _>>()?
    } else {
        let keys = cast(&keys, &DataType::BinaryView)?;
        keys.as_binary_view()
            .iter()
            .map(|key| key.map(|k| numbers.of(Key::of_bytes(k))).transpose())
            .collect::<Result<UInt32Array, _>>()?
    };
    Ok(match arg {
        ColumnarValue::Scalar(_) => ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?),
        ColumnarValue::Array(_) => ColumnarValue::Array(Arc::new(out)),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// A key is read as a pseudonym exactly when it is 64 lower-case hex digits, to the
        /// bytes they spell.
        #[test]
        fn pseudonyms_are_read_as_hex_spells_them(
            bytes in proptest::array::uniform32(any::<u8>()),
            at in 0usize..64,
            other in any::<char>(),
        ) {
            let hex = hex::encode(bytes);
            prop_assert_eq!(pseudonym_bytes(&hex), Some(bytes));
            let mut changed: Vec<char> = hex.chars().collect();
            changed[at] = other;
            let changed: String = changed.into_iter().collect();
            let lower_hex = changed.len() == 64
                && changed.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            prop_assert_eq!(pseudonym_bytes(&changed).is_some(), lower_hex);
            prop_assert_eq!(pseudonym_bytes(&hex.to_uppercase()).is_some(), hex == hex.to_uppercase());
            prop_assert_eq!(pseudonym_bytes(&hex[..62]), None);
        }
    }

    #[test]
    fn a_pseudonym_is_numbered_once_and_other_keys_exactly() {
        let mut numbers = Numbers::default();
        let a = "ab".repeat(32);
        assert_eq!(numbers.of(Key::of_text(&a)).unwrap(), 0);
        assert_eq!(numbers.of(Key::of_text("not hex")).unwrap(), 1);
        assert_eq!(numbers.of(Key::of_text(&a)).unwrap(), 0);
        assert_eq!(numbers.of(Key::of_text("not hex")).unwrap(), 1);
        // Another spelling is another key, as it is to COUNT(DISTINCT …).
        assert_eq!(numbers.of(Key::of_text(&"AB".repeat(32))).unwrap(), 2);
        assert_eq!(numbers.of(Key::of_text(&"cd".repeat(32))).unwrap(), 3);
        // Stored as bytes, the same pseudonym is the same person; other lengths are kept whole.
        assert_eq!(numbers.of(Key::of_bytes(&[0xab; 32])).unwrap(), 0);
        assert_eq!(numbers.of(Key::of_bytes(&[0xab; 31])).unwrap(), 4);
        assert_eq!(numbers.of(Key::of_bytes(&[0xab; 31])).unwrap(), 4);
    }

    /// Over a table of the lake, pseudonyms reach the numbering as they are read — as bytes,
    /// or as hex in a table of an older release: no cast in the plan copying each of them first.
    #[tokio::test]
    async fn pseudonyms_are_numbered_as_the_lake_reads_them() {
        use deltalake::arrow::array::{BinaryArray, RecordBatch, StringArray};
        use deltalake::arrow::datatypes::{Field, Schema};

        let people = [[0xab; 32], [0xcd; 32], [0xab; 32]];
        let as_bytes: ArrayRef = Arc::new(BinaryArray::from_iter_values(people));
        let as_hex: ArrayRef = Arc::new(StringArray::from_iter_values(people.map(hex::encode)));
        for keys in [as_bytes, as_hex] {
            let dir = tempfile::tempdir().unwrap();
            let lake = crate::lake::Lake::open(dir.path().to_str().unwrap()).unwrap();
            let schema = Arc::new(Schema::new(vec![
                Field::new("county", DataType::Utf8, false),
                Field::new("id_number", keys.data_type().clone(), false),
            ]));
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(StringArray::from(vec!["152201"; 3])), keys],
            )
            .unwrap();
            let mut staged = lake
                .stage("tables/workers", &schema, &["county".into()])
                .unwrap();
            staged.write(batch).await.unwrap();
            let scope = [("county", vec!["152201".to_string()])];
            staged
                .commit_replacing(&scope, Default::default())
                .await
                .unwrap();
            let ctx = lake.session(&["tables/workers"]).await.unwrap().ctx;
            register(&ctx, 0);
            let query = format!("SELECT {PEOPLE_SET}({PERSON}(id_number)) FROM workers");
            let plan = ctx
                .sql(&format!("EXPLAIN {query}"))
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            let plan = deltalake::arrow::util::pretty::pretty_format_batches(&plan)
                .unwrap()
                .to_string();
            assert!(plan.contains("person(workers.id_number)"), "{plan}");
            assert!(!plan.contains("CAST("), "{plan}");
            let counted = ctx.sql(&query).await.unwrap().collect().await.unwrap();
            let set = counted[0].column(0).as_binary::<i32>().value(0);
            assert_eq!(Members::decode(set).unwrap().len(), 2);
        }
    }
}
