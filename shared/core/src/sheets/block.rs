//! Rows of a sheet packed into a few buffers, so that thousands of them can be handed to another
//! thread at the cost of a handful of allocations rather than a string per cell.

use std::borrow::Cow;

use chrono::NaiveDate;

use super::Cell;

/// A cell of a [`RowBlock`]: text is a range of the block's one string (a block holds far
/// less than 4 GiB: see [`RowBlock::bytes`]).
#[derive(Debug, Clone, Copy)]
enum Packed {
    Empty,
    Text { start: u32, end: u32 },
    Number(f64),
    Bool(bool),
    Date(NaiveDate),
}

/// Consecutive rows of a sheet with their row numbers.
#[derive(Debug, Default)]
pub struct RowBlock {
    numbers: Vec<usize>,
    /// Where each row's cells end in `cells`.
    ends: Vec<usize>,
    cells: Vec<Packed>,
    text: String,
}

impl RowBlock {
    pub fn push(&mut self, number: usize, cells: &[Cell<'_>]) {
        for cell in cells {
            let packed = match cell {
                Cell::Empty => Packed::Empty,
                Cell::Text(s) => {
                    let start = self.text.len() as u32;
                    self.text.push_str(s);
                    Packed::Text {
                        start,
                        end: self.text.len() as u32,
                    }
                }
                Cell::Number(n) => Packed::Number(*n),
                Cell::Bool(b) => Packed::Bool(*b),
                Cell::Date(d) => Packed::Date(*d),
            };
            self.cells.push(packed);
        }
        self.numbers.push(number);
        self.ends.push(self.cells.len());
    }

    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }

    /// Bytes the block holds, to bound it by size as well as by rows: a row may be as wide
    /// as the dataset's limits allow.
    pub fn bytes(&self) -> usize {
        self.text.len() + self.cells.len() * std::mem::size_of::<Packed>()
    }

    /// Empties the block, keeping its buffers for the next rows.
    pub fn clear(&mut self) {
        self.numbers.clear();
        self.ends.clear();
        self.cells.clear();
        self.text.clear();
    }

    /// The row number and cells of row `i` of the block.
    pub fn row(&self, i: usize) -> (usize, Vec<Cell<'_>>) {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        let cells = self.cells[start..self.ends[i]]
            .iter()
            .map(|p| self.cell(*p))
            .collect();
        (self.numbers[i], cells)
    }

    /// Calls `each` with every row's position in the block, number and cells, in order.
    pub fn each(&self, mut each: impl FnMut(usize, usize, &[Cell<'_>])) {
        let mut cells = Vec::new();
        let mut start = 0;
        for (i, (&number, &end)) in self.numbers.iter().zip(&self.ends).enumerate() {
            cells.clear();
            cells.extend(self.cells[start..end].iter().map(|p| self.cell(*p)));
            each(i, number, &cells);
            start = end;
        }
    }

    fn cell(&self, packed: Packed) -> Cell<'_> {
        match packed {
            Packed::Empty => Cell::Empty,
            Packed::Text { start, end } => {
                Cell::Text(Cow::Borrowed(&self.text[start as usize..end as usize]))
            }
            Packed::Number(n) => Cell::Number(n),
            Packed::Bool(b) => Cell::Bool(b),
            Packed::Date(d) => Cell::Date(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_as_they_went_in() {
        let rows: Vec<(usize, Vec<Cell<'static>>)> = vec![
            (
                3,
                vec![Cell::Text("网点".into()), Cell::Empty, Cell::Number(2.5)],
            ),
            (4, vec![]),
            (
                7,
                vec![
                    Cell::Bool(true),
                    Cell::Date(NaiveDate::from_ymd_opt(2023, 6, 30).unwrap()),
                    Cell::Text("".into()),
                    Cell::Text("x".into()),
                ],
            ),
        ];
        let mut block = RowBlock::default();
        for (number, cells) in &rows {
            block.push(*number, cells);
        }
        assert_eq!(block.len(), 3);
        let mut seen = Vec::new();
        block.each(|i, number, cells| {
            let owned: Vec<Cell<'static>> = cells.iter().cloned().map(Cell::into_owned).collect();
            seen.push((i, number, owned));
        });
        for (i, (number, cells)) in rows.iter().enumerate() {
            assert_eq!(seen[i], (i, *number, cells.clone()));
            assert_eq!(block.row(i), (*number, cells.clone()));
        }
        block.clear();
        assert!(block.is_empty() && block.bytes() == 0);
    }
}
