//! What one file of a dataset may hold, derived from its declaration and never from what the
//! file claims about itself. The readers check these before they allocate what a file
//! announces, the API before it reads a body, the upload URL before S3 takes one.

use serde::Serialize;

use super::{Dataset, Kind};

/// Columns a sheet may have beyond the declared fields: a 序号 column, notes, a checker's mark.
pub const EXTRA_COLUMNS: usize = 8;
/// Bytes a fixed-form value can take as text, with room for spaces and a unit
/// (`2023年12月31日 23:59:59`, `1,234,567.89元`, an 18-character code).
const FIXED_FIELD_BYTES: usize = 32;
/// A cell may hold twice its widest field, and never less than this (titles, notes).
const MIN_CELL_BYTES: usize = 4 * 1024;
/// Rows above the header a sheet may spend on titles, units or notes: the validator looks
/// for the header this far down.
pub const TITLE_ROWS: usize = 20;
/// Characters an Excel cell can hold at most, by the format's own specification.
const EXCEL_CELL_CHARS: usize = 32_767;
/// Markup an XLSX sheet spends on one cell (`<c r="XFD1048576" s="12" t="s"><v>…</v></c>`)
/// and one row.
const XML_CELL_BYTES: u64 = 64;
const XML_ROW_BYTES: u64 = 48;
/// The workbook's other parts (styles, theme, relationships, properties) together.
const XML_OTHER_PARTS_BYTES: u64 = 16 << 20;
/// Distinct strings a file may bring per data row, on top of a fixed allowance: an ID,
/// a name, a code and a note each differing from row to row.
const STRINGS_PER_ROW: usize = 4;
const STRINGS_ALLOWANCE: usize = 1 << 16;
/// Bytes of `sharedStrings.xml` per string on average, markup included.
const BYTES_PER_STRING: u64 = 48;
/// What one held string costs beyond its text (the `String` and its allocation).
const STRING_OVERHEAD: u64 = 64;
/// What one key fingerprint costs the validator (a `u128` and a row number in a hash map).
const KEY_BYTES: u64 = 48;
/// Buffers that do not grow with the file: a Parquet row group being written, the blocks of
/// rows being checked and their batches, decompression windows.
const WORKING_BYTES: u64 = 128 << 20;

/// Hard limits for one file of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Limits {
    /// Data rows (the declaration's `max_rows`).
    pub max_rows: usize,
    /// Rows read in all, title rows above the header included.
    pub max_sheet_rows: usize,
    /// The last column that may hold a value (1-based): declared fields plus a margin.
    pub max_columns: usize,
    /// Bytes of text in one cell (UTF-8).
    pub max_cell_bytes: usize,
    /// Bytes of one CSV record, separators and quotes included.
    pub max_row_bytes: usize,
    /// Bytes of the file as uploaded.
    pub max_file_bytes: u64,
    /// Bytes an XLSX workbook unpacks to, all parts together.
    pub max_unpacked_bytes: u64,
    /// Longest run of XML between two markup boundaries: the text of the longest cell Excel
    /// itself can write, escaped.
    pub max_xml_run_bytes: usize,
    /// Strings in an XLSX shared-strings table, and the table's unpacked bytes.
    pub max_strings: usize,
    pub max_strings_bytes: u64,
    /// Unpacked size over packed size of any part of a workbook larger than 1 MiB.
    pub max_compression_ratio: u64,
    /// Resident memory one file may add while it is read and checked: the shared strings a
    /// workbook may bring (each with its allocation), the rows kept while the header is
    /// looked for, the validator's key fingerprints, and a fixed allowance for the reader's
    /// and the Parquet writer's buffers.
    pub max_memory_bytes: u64,
}

/// Parts below this size may compress as well as they like.
pub const RATIO_EXEMPT_BYTES: u64 = 1 << 20;
/// Deflate reaches 1,032:1 on a run of one byte; sheets of real data stay far below this.
const MAX_COMPRESSION_RATIO: u64 = 200;
/// Parts in a workbook: a workbook with a dozen sheets has about 40.
pub const MAX_PARTS: usize = 1_000;

/// The widest a value of this kind can legitimately be, as text.
fn field_bytes(kind: &Kind) -> usize {
    match kind {
        Kind::Text { max_chars } => max_chars * 4,
        Kind::Enum { choices } => choices
            .iter()
            .map(|c| c.zh.len().max(c.code.len()))
            .max()
            .unwrap_or(0)
            .max(FIXED_FIELD_BYTES),
        // Every choice once, each with a separator.
        Kind::EnumList { choices } => choices
            .iter()
            .map(|c| c.zh.len().max(c.code.len()) + 3)
            .sum::<usize>()
            .max(FIXED_FIELD_BYTES),
        Kind::CreditCode
        | Kind::CountyCode
        | Kind::CommunityCode
        | Kind::Bool
        | Kind::Date
        | Kind::Count { .. }
        | Kind::Amount
        | Kind::IdNumber => FIXED_FIELD_BYTES,
    }
}

impl Dataset {
    /// The limits of one file of this dataset.
    pub fn limits(&self) -> Limits {
        let widest = self
            .fields
            .iter()
            .map(|f| field_bytes(&f.kind))
            .max()
            .unwrap_or(0);
        let max_cell_bytes = (2 * widest).max(MIN_CELL_BYTES);
        let max_columns = self.fields.len() + EXTRA_COLUMNS;
        // A full row of the template as CSV: every field at its widest, separators, a line end,
        // and a short value in each extra column.
        let row_bytes: usize = self
            .fields
            .iter()
            .map(|f| field_bytes(&f.kind) + 1)
            .sum::<usize>()
            + EXTRA_COLUMNS * 8
            + 2;
        let max_sheet_rows = self.max_rows + TITLE_ROWS + 1;
        let title_bytes = (TITLE_ROWS + 1) * max_columns * max_cell_bytes;
        let max_file_bytes = (self.max_rows * row_bytes + title_bytes) as u64;
        let max_strings = self.max_rows * STRINGS_PER_ROW + STRINGS_ALLOWANCE;
        let max_strings_bytes = max_strings as u64 * BYTES_PER_STRING;
        let sheet_bytes =
            max_sheet_rows as u64 * (max_columns as u64 * XML_CELL_BYTES + XML_ROW_BYTES);
        Limits {
            max_rows: self.max_rows,
            max_sheet_rows,
            max_columns,
            max_cell_bytes,
            max_row_bytes: max_columns * (max_cell_bytes + 3),
            max_file_bytes,
            max_unpacked_bytes: sheet_bytes
                + max_strings_bytes
                + max_file_bytes
                + XML_OTHER_PARTS_BYTES,
            max_xml_run_bytes: EXCEL_CELL_CHARS * 3 * 2,
            max_strings,
            max_strings_bytes,
            max_compression_ratio: MAX_COMPRESSION_RATIO,
            max_memory_bytes: max_strings as u64 * STRING_OVERHEAD
                + max_strings_bytes
                + (max_columns * (max_cell_bytes + 3) * (TITLE_ROWS + 2)) as u64
                + self.max_rows as u64 * KEY_BYTES
                + WORKING_BYTES,
        }
    }
}

/// The largest file any dataset accepts: the bound for a body whose dataset is not known yet.
pub fn largest_file_bytes() -> u64 {
    super::ALL
        .iter()
        .map(|d| d.limits().max_file_bytes)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::{ALL, WORKERS};

    #[test]
    fn limits_follow_the_declarations() {
        for d in ALL {
            let l = d.limits();
            assert_eq!(l.max_columns, d.fields.len() + EXTRA_COLUMNS);
            assert!(l.max_cell_bytes >= MIN_CELL_BYTES);
            // Every declared text fits in a cell.
            for f in d.fields {
                if let Kind::Text { max_chars } = f.kind {
                    assert!(max_chars * 4 <= l.max_cell_bytes, "{}.{}", d.name, f.name);
                }
            }
            assert!(l.max_row_bytes >= l.max_columns * l.max_cell_bytes);
            assert!(l.max_file_bytes > (d.max_rows * 20) as u64);
            assert!(l.max_unpacked_bytes > l.max_file_bytes);
        }
        // A million-row workers CSV of realistic width (about 100 bytes a row) fits.
        assert!(WORKERS.limits().max_file_bytes > 1_000_000 * 100);
        assert!(largest_file_bytes() >= WORKERS.limits().max_file_bytes);
    }
}
