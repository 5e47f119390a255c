//! Exact distinct counts of people on compact keys.
//!
//! Indicators about workers count people by their pseudonym (64 hex characters), in five
//! grouping sets and up to five conditions each. DataFusion's `COUNT(DISTINCT …)` keeps one
//! hash set per group and aggregate, so a million workers cost twenty sets of a million keys
//! (over 1 GB with the sort that numbered them). Here each pseudonym is numbered once as it is
//! read ([`person`], a dense `u32` per distinct pseudonym of the query) and the counts keep
//! [`Members`]: a list of numbers while a group is small, a bitmap (one bit per person of the
//! period) once that is smaller. Exact — one number per distinct pseudonym — in a fraction of
//! the memory.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::{Arc, Mutex, PoisonError};

use deltalake::arrow::array::{ArrayRef, AsArray, BinaryArray, UInt32Array};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::DataType;
use deltalake::datafusion::common::{DataFusionError, ScalarValue};
use deltalake::datafusion::logical_expr::{
    Accumulator, ColumnarValue, Volatility, create_udaf, create_udf,
};
use deltalake::datafusion::prelude::SessionContext;

use crate::privacy::Leading;

/// The scalar function numbering pseudonyms.
pub(super) const PERSON: &str = "person";
/// The aggregate counting distinct person numbers.
pub(super) const COUNT_PEOPLE: &str = "count_people";

/// Registers [`PERSON`] (with numbering of its own, so numbers are per query) and
/// [`COUNT_PEOPLE`] on the session.
pub(super) fn register(ctx: &SessionContext) {
    let numbers = Arc::new(Mutex::new(Numbers::default()));
    ctx.register_udf(create_udf(
        PERSON,
        // As the lake's tables are read (deltalake forces view types): declared as `Utf8`,
        // the plan would copy every pseudonym into a new array before numbering it.
        vec![DataType::Utf8View],
        DataType::UInt32,
        // The numbering depends on the order rows arrive in; never folded or reordered.
        Volatility::Volatile,
        Arc::new(move |args: &[ColumnarValue]| number(&numbers, args)),
    ));
    ctx.register_udaf(create_udaf(
        COUNT_PEOPLE,
        vec![DataType::UInt32],
        Arc::new(DataType::Int64),
        Volatility::Immutable,
        Arc::new(|_| Ok(Box::new(Count::default()))),
        Arc::new(vec![DataType::Binary]),
    ));
}

/// A people query's measure with each `COUNT(DISTINCT …)` counted by [`COUNT_PEOPLE`]: the
/// catalogue declares people counts over the person key, which the query has numbered.
pub(super) fn counted(sql: &str) -> String {
    sql.replace("COUNT(DISTINCT ", &format!("{COUNT_PEOPLE}("))
}

/// One number per distinct pseudonym, in the order they are first read.
#[derive(Default)]
struct Numbers {
    /// Pseudonyms as the 32 bytes their hex spells.
    pseudonyms: HashMap<[u8; 32], u32, BuildHasherDefault<Leading>>,
    /// Any other key, kept whole (exact for any text, compact for the normal case).
    others: HashMap<String, u32>,
    next: u32,
}

impl Numbers {
    fn of(&mut self, key: &str) -> Result<u32, DataFusionError> {
        let next = self.next;
        let number = match pseudonym_bytes(key) {
            Some(bytes) => *self.pseudonyms.entry(bytes).or_insert(next),
            None => *self.others.entry(key.to_string()).or_insert(next),
        };
        if number == next {
            self.next = next.checked_add(1).ok_or_else(|| {
                DataFusionError::ResourcesExhausted("more than 2^32 people in a period".into())
            })?;
        }
        Ok(number)
    }
}

/// The 32 bytes 64 lower-case hex digits spell, read in one pass (this runs for every row of
/// a period's workers). Lower-case only: another spelling of the same bytes is another key,
/// as it is to `COUNT(DISTINCT …)`.
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
    let keys = cast(&arg.to_array(1)?, &DataType::Utf8View)?;
    let keys = keys.as_string_view();
    let mut numbers = numbers.lock().unwrap_or_else(PoisonError::into_inner);
    let out = keys
        .iter()
        .map(|key| key.map(|k| numbers.of(k)).transpose())
        .collect::<Result<UInt32Array, _>>()?;
    Ok(match arg {
        ColumnarValue::Scalar(_) => ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?),
        ColumnarValue::Array(_) => ColumnarValue::Array(Arc::new(out)),
    })
}

/// A set of person numbers: a list while it is small (sorted and deduplicated whenever it
/// has doubled), a bitmap once the bitmap would be smaller than the list.
#[derive(Debug, Clone, PartialEq)]
enum Members {
    List {
        numbers: Vec<u32>,
        /// Length after the last sort: the list is sorted and distinct up to here.
        settled: usize,
    },
    Bits(Vec<u64>),
}

impl Default for Members {
    fn default() -> Self {
        Members::List {
            numbers: Vec::new(),
            settled: 0,
        }
    }
}

/// A list is settled again once it holds this many more numbers (or twice as many).
const SETTLE_AFTER: usize = 1024;

impl Members {
    fn insert(&mut self, number: u32) {
        match self {
            Members::List { numbers, settled } => {
                numbers.push(number);
                if numbers.len() >= (*settled * 2).max(SETTLE_AFTER) {
                    self.settle();
                }
            }
            Members::Bits(words) => set_bit(words, number),
        }
    }

    /// Sorts and deduplicates a list, and turns it into a bitmap if that is smaller.
    fn settle(&mut self) {
        let Members::List { numbers, settled } = self else {
            return;
        };
        numbers.sort_unstable();
        numbers.dedup();
        *settled = numbers.len();
        let highest = numbers.last().copied().unwrap_or(0);
        let words = highest as usize / 64 + 1;
        // Bytes: 4 per listed number against 8 per bitmap word.
        if numbers.len() * 4 > words * 8 {
            let mut bits = vec![0u64; words];
            for &n in numbers.iter() {
                set_bit(&mut bits, n);
            }
            *self = Members::Bits(bits);
        } else {
            numbers.shrink_to(numbers.len() * 2);
        }
    }

    fn len(&mut self) -> usize {
        self.settle();
        match self {
            Members::List { numbers, .. } => numbers.len(),
            Members::Bits(words) => words.iter().map(|w| w.count_ones() as usize).sum(),
        }
    }

    fn union(&mut self, other: Members) {
        match other {
            Members::List { numbers, .. } => numbers.into_iter().for_each(|n| self.insert(n)),
            Members::Bits(theirs) => {
                if let Members::List { numbers, .. } = self {
                    let mine = std::mem::take(numbers);
                    *self = Members::Bits(theirs);
                    mine.into_iter().for_each(|n| self.insert(n));
                } else if let Members::Bits(words) = self {
                    if words.len() < theirs.len() {
                        words.resize(theirs.len(), 0);
                    }
                    words.iter_mut().zip(theirs).for_each(|(w, t)| *w |= t);
                }
            }
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Members::List { numbers, .. } => numbers.capacity() * 4,
            Members::Bits(words) => words.capacity() * 8,
        }
    }

    /// The state passed between the partial and the final aggregation: a tag byte, then the
    /// settled list as `u32` or the bitmap as `u64`, little-endian.
    fn encode(&mut self) -> Vec<u8> {
        self.settle();
        match self {
            Members::List { numbers, .. } => std::iter::once(0u8)
                .chain(numbers.iter().flat_map(|n| n.to_le_bytes()))
                .collect(),
            Members::Bits(words) => std::iter::once(1u8)
                .chain(words.iter().flat_map(|w| w.to_le_bytes()))
                .collect(),
        }
    }

    fn decode(state: &[u8]) -> Result<Members, DataFusionError> {
        let bad = || DataFusionError::Internal(format!("{COUNT_PEOPLE}: a malformed state"));
        match state.split_first() {
            None => Ok(Members::default()),
            Some((0, rest)) if rest.len() % 4 == 0 => {
                let numbers: Vec<u32> = rest
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                Ok(Members::List {
                    settled: numbers.len(),
                    numbers,
                })
            }
            Some((1, rest)) if rest.len() % 8 == 0 => Ok(Members::Bits(
                rest.chunks_exact(8)
                    .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            )),
            Some(_) => Err(bad()),
        }
    }
}

fn set_bit(words: &mut Vec<u64>, number: u32) {
    let (word, bit) = (number as usize / 64, number % 64);
    if word >= words.len() {
        words.resize(word + 1, 0);
    }
    words[word] |= 1 << bit;
}

/// The accumulator of [`COUNT_PEOPLE`] for one group.
#[derive(Debug, Default)]
struct Count {
    members: Members,
}

impl Accumulator for Count {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<(), DataFusionError> {
        let Some(values) = values.first() else {
            return Ok(());
        };
        let numbers = cast(values, &DataType::UInt32)?;
        let numbers = numbers.as_primitive::<deltalake::arrow::datatypes::UInt32Type>();
        numbers
            .iter()
            .flatten()
            .for_each(|n| self.members.insert(n));
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue, DataFusionError> {
        Ok(ScalarValue::Int64(Some(self.members.len() as i64)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.members.bytes()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>, DataFusionError> {
        Ok(vec![ScalarValue::Binary(Some(self.members.encode()))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<(), DataFusionError> {
        let Some(states) = states.first() else {
            return Ok(());
        };
        let states: &BinaryArray = states.as_binary::<i32>();
        for state in states.iter().flatten() {
            self.members.union(Members::decode(state)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use deltalake::arrow::datatypes::Int64Type;

    use proptest::prelude::*;

    use super::*;

    fn members(numbers: &[u32]) -> Members {
        let mut m = Members::default();
        numbers.iter().for_each(|&n| m.insert(n));
        m
    }

    proptest! {
        /// Whatever the numbers and however they are split between partial aggregations,
        /// the count is the number of distinct numbers.
        #[test]
        fn counts_exactly(numbers in proptest::collection::vec(0u32..5_000, 0..6_000), split in 0usize..6_000) {
            let distinct = numbers.iter().collect::<BTreeSet<_>>().len();
            prop_assert_eq!(members(&numbers).len(), distinct);
            let split = split.min(numbers.len());
            let (a, b) = numbers.split_at(split);
            let mut whole = members(a);
            let mut other = members(b);
            whole.union(Members::decode(&other.encode()).unwrap());
            prop_assert_eq!(whole.len(), distinct);
        }
    }

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
    fn a_crowded_set_becomes_a_bitmap_and_a_sparse_one_stays_a_list() {
        let mut crowded = members(&(0..100_000).collect::<Vec<_>>());
        assert!(matches!(crowded, Members::Bits(_)));
        assert_eq!(crowded.len(), 100_000);
        // A bit per person, give or take the vector's growth.
        assert!(crowded.bytes() <= 2 * 100_000 / 8 + 64);
        let mut sparse = members(&(0..100).map(|n| n * 1_000_000).collect::<Vec<_>>());
        assert!(matches!(sparse, Members::List { .. }));
        assert_eq!(sparse.len(), 100);
    }

    #[test]
    fn a_pseudonym_is_numbered_once_and_other_keys_exactly() {
        let mut numbers = Numbers::default();
        let a = "ab".repeat(32);
        assert_eq!(numbers.of(&a).unwrap(), 0);
        assert_eq!(numbers.of("not hex").unwrap(), 1);
        assert_eq!(numbers.of(&a).unwrap(), 0);
        assert_eq!(numbers.of("not hex").unwrap(), 1);
        // Another spelling is another key, as it is to COUNT(DISTINCT …).
        assert_eq!(numbers.of(&"AB".repeat(32)).unwrap(), 2);
        assert_eq!(numbers.of(&"cd".repeat(32)).unwrap(), 3);
    }

    /// Over a table of the lake, pseudonyms reach the numbering as they are read: no cast in
    /// the plan copying each of them first.
    #[tokio::test]
    async fn pseudonyms_are_numbered_as_the_lake_reads_them() {
        use deltalake::arrow::array::{RecordBatch, StringArray};
        use deltalake::arrow::datatypes::{Field, Schema};

        let dir = tempfile::tempdir().unwrap();
        let lake = crate::lake::Lake::open(dir.path().to_str().unwrap()).unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("county", DataType::Utf8, false),
            Field::new("id_number", DataType::Utf8, false),
        ]));
        let keys = ["ab".repeat(32), "cd".repeat(32), "ab".repeat(32)];
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["152201"; 3])),
                Arc::new(StringArray::from_iter_values(&keys)),
            ],
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
        register(&ctx);
        let query = format!("SELECT {COUNT_PEOPLE}({PERSON}(id_number)) FROM workers");
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
        let counted = counted[0].column(0).as_primitive::<Int64Type>().value(0);
        assert_eq!(counted, 2);
    }
}
