//! [`PEOPLE_SET`]: the distinct person numbers of every group of a query, gathered at once
//! in compact sets and returned as those sets, so that the levels above the groups can be
//! counted as unions of them.

use std::sync::Arc;

use deltalake::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, BooleanArray, UInt32Array};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Field, FieldRef, UInt32Type};
use deltalake::datafusion::common::{DataFusionError, ScalarValue};
use deltalake::datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use deltalake::datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use super::PEOPLE_SET;

/// The aggregate, over the numbers [`super::PERSON`] gives.
pub(super) fn udaf() -> AggregateUDF {
    AggregateUDF::from(PeopleSet {
        signature: Signature::exact(vec![DataType::UInt32], Volatility::Immutable),
    })
}

/// [`PEOPLE_SET`] as DataFusion plans it. Grouped, it keeps every group's set in one
/// [`Sets`]: with one accumulator per group, DataFusion would sort each batch by group and
/// copy every group's rows out before adding them (a street of a million workers' file per
/// group, several sets each).
#[derive(Debug, PartialEq, Eq, Hash)]
struct PeopleSet {
    signature: Signature,
}

impl AggregateUDFImpl for PeopleSet {
    fn name(&self) -> &str {
        PEOPLE_SET
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The set, encoded as [`Members::encode`] writes it.
    fn return_type(&self, _: &[DataType]) -> Result<DataType, DataFusionError> {
        Ok(DataType::Binary)
    }

    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>, DataFusionError> {
        Ok(Box::new(OneSet::default()))
    }

    fn state_fields(&self, _: StateFieldsArgs) -> Result<Vec<FieldRef>, DataFusionError> {
        Ok(vec![Arc::new(Field::new(
            "members",
            DataType::Binary,
            true,
        ))])
    }

    fn groups_accumulator_supported(&self, _: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>, DataFusionError> {
        Ok(Box::new(Sets::default()))
    }
}

/// A set of person numbers: a list while it is small (sorted and deduplicated whenever it
/// has doubled), a bitmap once the bitmap would be smaller than the list.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::indicators) enum Members {
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

    pub fn len(&mut self) -> usize {
        self.settle();
        match self {
            Members::List { numbers, .. } => numbers.len(),
            Members::Bits(words) => words.iter().map(|w| w.count_ones() as usize).sum(),
        }
    }

    pub fn union(&mut self, other: Members) {
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

    /// The state passed between the partial and the final aggregation, and the aggregate's
    /// value: a tag byte, then the settled list as `u32` or the bitmap as `u64`, little-endian.
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

    pub fn decode(state: &[u8]) -> Result<Members, DataFusionError> {
        let bad = || DataFusionError::Internal(format!("{PEOPLE_SET}: a malformed state"));
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

/// The accumulator of [`PEOPLE_SET`] for one group.
#[derive(Debug, Default)]
struct OneSet {
    members: Members,
}

impl Accumulator for OneSet {
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
        Ok(ScalarValue::Binary(Some(self.members.encode())))
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

/// The sets of every group of a query, by group index.
#[derive(Debug, Default)]
struct Sets {
    groups: Vec<Members>,
    /// What the sets hold, kept as they change: DataFusion asks after every batch.
    bytes: usize,
}

impl Sets {
    /// Applies `each` to the set of every row's group (rows `filter` leaves out skipped),
    /// keeping the byte count.
    fn each_row(
        &mut self,
        group_indices: &[usize],
        filter: Option<&BooleanArray>,
        total_num_groups: usize,
        mut each: impl FnMut(usize, &mut Members) -> Result<(), DataFusionError>,
    ) -> Result<(), DataFusionError> {
        if self.groups.len() < total_num_groups {
            self.groups.resize_with(total_num_groups, Members::default);
        }
        for (row, &group) in group_indices.iter().enumerate() {
            if filter.is_some_and(|f| !f.is_valid(row) || !f.value(row)) {
                continue;
            }
            let members = &mut self.groups[group];
            let before = members.bytes();
            each(row, members)?;
            self.bytes = self.bytes - before + members.bytes();
        }
        Ok(())
    }

    /// The sets `emit_to` asks for, taken out (the rest renumbered from 0, as DataFusion
    /// expects).
    fn take(&mut self, emit_to: EmitTo) -> Vec<Members> {
        let taken = emit_to.take_needed(&mut self.groups);
        self.bytes -= taken.iter().map(Members::bytes).sum::<usize>();
        taken
    }
}

impl GroupsAccumulator for Sets {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<(), DataFusionError> {
        let Some(values) = values.first() else {
            return Ok(());
        };
        let numbers = cast(values, &DataType::UInt32)?;
        let numbers: &UInt32Array = numbers.as_primitive::<UInt32Type>();
        self.each_row(
            group_indices,
            opt_filter,
            total_num_groups,
            |row, members| {
                if numbers.is_valid(row) {
                    members.insert(numbers.value(row));
                }
                Ok(())
            },
        )
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef, DataFusionError> {
        let sets: BinaryArray = self
            .take(emit_to)
            .iter_mut()
            .map(|members| Some(members.encode()))
            .collect();
        Ok(Arc::new(sets))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>, DataFusionError> {
        Ok(vec![self.evaluate(emit_to)?])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<(), DataFusionError> {
        let Some(states) = values.first() else {
            return Ok(());
        };
        let states: &BinaryArray = states.as_binary::<i32>();
        self.each_row(group_indices, None, total_num_groups, |row, members| {
            if states.is_valid(row) {
                members.union(Members::decode(states.value(row))?);
            }
            Ok(())
        })
    }

    /// Each row as a group of its own: the set of its one number, or an empty one.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>, DataFusionError> {
        let Some(values) = values.first() else {
            return Ok(vec![Arc::new(BinaryArray::from_iter_values(
                std::iter::empty::<&[u8]>(),
            ))]);
        };
        let numbers = cast(values, &DataType::UInt32)?;
        let numbers: &UInt32Array = numbers.as_primitive::<UInt32Type>();
        let states: BinaryArray = (0..numbers.len())
            .map(|row| {
                let mut members = Members::default();
                let kept = opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row));
                if kept && numbers.is_valid(row) {
                    members.insert(numbers.value(row));
                }
                Some(members.encode())
            })
            .collect();
        Ok(vec![Arc::new(states)])
    }

    fn size(&self) -> usize {
        self.groups.capacity() * std::mem::size_of::<Members>() + self.bytes
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

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

    /// Each group's distinct numbers among rows the filter keeps.
    fn expected(rows: &[(usize, Option<u32>, bool)], groups: usize) -> Vec<i64> {
        let mut sets = vec![BTreeSet::new(); groups];
        for &(group, number, kept) in rows {
            if let (Some(n), true) = (number, kept) {
                sets[group].insert(n);
            }
        }
        sets.iter().map(|s| s.len() as i64).collect()
    }

    /// The size of each set an evaluation returned.
    fn counts_of(array: &ArrayRef) -> Vec<i64> {
        array
            .as_binary::<i32>()
            .iter()
            .map(|set| Members::decode(set.unwrap()).unwrap().len() as i64)
            .collect()
    }

    proptest! {
        /// Grouped, in batches, with a filter, through partial states merged again or rows
        /// turned into states: every group counts its distinct numbers, and emitting the
        /// first groups renumbers the rest.
        #[test]
        fn every_group_counts_exactly(
            rows in proptest::collection::vec((0usize..6, proptest::option::of(0u32..3_000), any::<bool>()), 1..4_000),
            batch in 1usize..700,
            first in 0usize..6,
        ) {
            const GROUPS: usize = 6;
            let want = expected(&rows, GROUPS);
            let mut direct = Sets::default();
            let mut partial = Sets::default();
            let mut merged = Sets::default();
            let mut converted = Sets::default();
            for chunk in rows.chunks(batch) {
                let groups: Vec<usize> = chunk.iter().map(|r| r.0).collect();
                let numbers: ArrayRef = Arc::new(chunk.iter().map(|r| r.1).collect::<UInt32Array>());
                let filter: BooleanArray = chunk.iter().map(|r| Some(r.2)).collect();
                direct.update_batch(std::slice::from_ref(&numbers), &groups, Some(&filter), GROUPS).unwrap();
                partial.update_batch(std::slice::from_ref(&numbers), &groups, Some(&filter), GROUPS).unwrap();
                let states = converted.convert_to_state(&[numbers], Some(&filter)).unwrap();
                converted.merge_batch(&states, &groups, GROUPS).unwrap();
            }
            prop_assert!(direct.size() >= direct.groups.iter().map(Members::bytes).sum::<usize>());
            let states = partial.state(EmitTo::All).unwrap();
            let all: Vec<usize> = (0..GROUPS).collect();
            merged.merge_batch(&states, &all, GROUPS).unwrap();
            prop_assert_eq!(partial.size(), 0);
            let mut got = counts_of(&direct.evaluate(EmitTo::First(first)).unwrap());
            got.extend(counts_of(&direct.evaluate(EmitTo::All).unwrap()));
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(counts_of(&merged.evaluate(EmitTo::All).unwrap()), want.clone());
            prop_assert_eq!(counts_of(&converted.evaluate(EmitTo::All).unwrap()), want);
        }
    }
}
