//! Turns an uploaded file into rows of cells, whatever office software wrote it: CSV in UTF-8
//! (with or without BOM), GBK or GB18030, comma or tab separated ([`csv`]); XLSX streamed cell
//! by cell ([`xlsx`]). Legacy `.xls` is refused: its parser trusts the sizes the file declares.
//! Rows are pushed to a callback as they are read, so memory stays bounded by one row however
//! large the file, and every row, column and cell is held to the dataset's [`Limits`].
//!
//! Row numbers are the ones the submitter sees in Excel: 1-based, counting every physical row.

mod block;
mod csv;
mod xlsx;

use std::borrow::Cow;
use std::io::{Cursor, Read, Write};

use chrono::NaiveDate;

pub use block::RowBlock;

use crate::datasets::Limits;

/// One cell as the file stores it; the validator decides what it means. A CSV cell's text is
/// borrowed from the reader's record buffer, so reading a row allocates no string per cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Empty,
    Text(Cow<'a, str>),
    Number(f64),
    Bool(bool),
    /// A date (or date-time) cell of a spreadsheet.
    Date(NaiveDate),
}

impl Cell<'_> {
    /// The cell as text, the way a person reads it: whole numbers without `.0`. Borrowed for
    /// a text cell.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Cell::Empty => Cow::Borrowed(""),
            Cell::Text(s) => Cow::Borrowed(s),
            Cell::Number(n) => Cow::Owned(format_number(*n)),
            Cell::Bool(b) => Cow::Borrowed(if *b { "TRUE" } else { "FALSE" }),
            Cell::Date(d) => Cow::Owned(d.format("%Y-%m-%d").to_string()),
        }
    }

    /// [`Cell::text`] as an owned string.
    pub fn to_text(&self) -> String {
        self.text().into_owned()
    }

    /// The cell with its text copied out of the reader's buffer, to be kept past the row.
    pub fn into_owned(self) -> Cell<'static> {
        match self {
            Cell::Empty => Cell::Empty,
            Cell::Text(s) => Cell::Text(Cow::Owned(s.into_owned())),
            Cell::Number(n) => Cell::Number(n),
            Cell::Bool(b) => Cell::Bool(b),
            Cell::Date(d) => Cell::Date(d),
        }
    }

    pub fn is_blank(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(s) => s.trim().is_empty(),
            _ => false,
        }
    }

    /// Bytes of text the cell holds; numbers and dates are short.
    fn text_len(&self) -> usize {
        match self {
            Cell::Text(s) => s.len(),
            _ => 0,
        }
    }
}

/// Formats a spreadsheet number as text: integers exactly, others as Rust prints them.
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// What kind of file the bytes are, told by their first bytes rather than the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
    Xls,
}

impl Format {
    pub fn sniff(head: &[u8]) -> Format {
        if head.starts_with(b"PK\x03\x04") {
            Format::Xlsx
        } else if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
            Format::Xls
        } else {
            Format::Csv
        }
    }

    /// The extension a raw upload of this format is stored under.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
            Format::Xls => "xls",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SheetError {
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("CSV line {line}: {message}")]
    Csv { line: u64, message: String },
    #[error("spreadsheet: {0}")]
    Workbook(String),
    #[error("binary data, not a CSV or Excel file")]
    Binary,
    #[error("a legacy .xls workbook")]
    LegacyXls,
    #[error(transparent)]
    Limit(#[from] Exceeded),
}

/// A limit of the dataset that the file goes past; the file is rejected with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Exceeded {
    #[error("more than {max} data rows")]
    Rows { max: usize },
    #[error("a value beyond column {max}")]
    Columns { max: usize },
    #[error("a cell of more than {max} bytes")]
    Cell { max: usize },
    #[error("a CSV record of more than {max} bytes")]
    Row { max: usize },
    #[error("more than {max} bytes")]
    File { max: u64 },
    #[error("a workbook that unpacks to more than {max} bytes")]
    Unpacked { max: u64 },
    #[error("a workbook part compressed more than {max}:1")]
    Ratio { max: u64 },
    #[error("a workbook of more than {max} parts")]
    Parts { max: usize },
    #[error("more than {max} shared strings")]
    Strings { max: usize },
    #[error("a DTD or entity declaration in the workbook")]
    Doctype,
}

/// Counts and checks the rows a reader delivers.
struct Rows {
    limits: Limits,
    delivered: usize,
}

impl Rows {
    fn new(limits: &Limits) -> Rows {
        Rows {
            limits: *limits,
            delivered: 0,
        }
    }

    /// A non-empty cell at `column` (0-based) of `bytes` bytes of text.
    fn check_cell(&self, column: usize, bytes: usize) -> Result<(), Exceeded> {
        if column >= self.limits.max_columns {
            return Err(Exceeded::Columns {
                max: self.limits.max_columns,
            });
        }
        if bytes > self.limits.max_cell_bytes {
            return Err(Exceeded::Cell {
                max: self.limits.max_cell_bytes,
            });
        }
        Ok(())
    }

    /// Hands a row on, trailing empty cells dropped; blank rows cost nothing and are not
    /// counted.
    fn deliver(
        &mut self,
        number: usize,
        cells: &[Cell<'_>],
        each: &mut impl FnMut(usize, &[Cell<'_>]),
    ) -> Result<(), Exceeded> {
        let used = cells
            .iter()
            .rposition(|c| !c.is_blank())
            .map_or(0, |i| i + 1);
        if used > 0 {
            self.delivered += 1;
            if self.delivered > self.limits.max_sheet_rows {
                return Err(Exceeded::Rows {
                    max: self.limits.max_rows,
                });
            }
        }
        each(number, &cells[..used]);
        Ok(())
    }
}

/// Reads every row of `input` and hands it to `each` with its row number. For a workbook the
/// sheet named after the dataset (English or Chinese name) is read, else the first one. A
/// workbook is spooled to an anonymous temporary file first (the zip directory is at its
/// end), never held in memory.
pub fn read_rows(
    mut input: impl Read,
    sheet_names: &[&str],
    limits: &Limits,
    mut each: impl FnMut(usize, &[Cell<'_>]),
) -> Result<Format, SheetError> {
    let mut head = Vec::with_capacity(PEEK);
    (&mut input).take(PEEK as u64).read_to_end(&mut head)?;
    let format = Format::sniff(&head);
    let rest = Cursor::new(head).chain(input);
    match format {
        Format::Csv => csv::read(rest, limits, &mut each)?,
        Format::Xls => return Err(SheetError::LegacyXls),
        Format::Xlsx => {
            let mut spool = tempfile::tempfile()?;
            let copied = std::io::copy(&mut rest.take(limits.max_file_bytes + 1), &mut spool)?;
            if copied > limits.max_file_bytes {
                return Err(Exceeded::File {
                    max: limits.max_file_bytes,
                }
                .into());
            }
            spool.flush()?;
            xlsx::read(spool, sheet_names, limits, &mut each)?;
        }
    }
    Ok(format)
}

/// How much of a file is looked at to tell its format.
const PEEK: usize = 8;

/// Text as it may go into a CSV cell someone opens in a spreadsheet: a value that would be
/// read as a formula (`=`, `+`, `-`, `@`, or a leading tab or carriage return, which Excel
/// skips before looking) gets a `'` in front, so it shows as text and never runs. Every CSV
/// the service writes passes its text cells through here.
pub fn inert(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Converts an Excel serial day number (1900 date system) to a date.
pub fn excel_serial_date(serial: f64) -> Option<NaiveDate> {
    if !(1.0..2_958_466.0).contains(&serial) {
        return None;
    }
    // Day 60 is Excel's fictitious 1900-02-29; serials after it count from 1899-12-30.
    let base = NaiveDate::from_ymd_opt(1899, 12, 30)?;
    let days = serial.floor() as i64;
    let days = if days < 60 { days + 1 } else { days };
    base.checked_add_signed(chrono::Duration::days(days))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(bytes: &[u8]) -> Vec<(usize, Vec<String>)> {
        let mut out = Vec::new();
        read_rows(
            bytes,
            &[],
            &crate::datasets::OUTLETS.limits(),
            |n, cells| out.push((n, cells.iter().map(Cell::to_text).collect())),
        )
        .unwrap();
        out
    }

    proptest::proptest! {
        /// UTF-8 is read without a decoder: a file whose first 64 KiB are UTF-8 but which has
        /// invalid bytes further on reads exactly as decoding the whole file first would,
        /// each invalid sequence replaced by U+FFFD, with or without a BOM. (A quote between
        /// two invalid bytes is the one difference: the decoder replaces the bytes on each side
        /// of it, this reader the cell's bytes once the quotes are gone — garbage either way.)
        #[test]
        fn invalid_utf8_after_the_peek_reads_as_the_decoder_would(
            tail in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(b"ab,\n\r\xE4\xB8\xAD\xF0\x80\xFF".to_vec()),
                    proptest::num::u8::ANY,
                ],
                0..200,
            ),
            bom in proptest::bool::ANY,
        ) {
            let tail: Vec<u8> = tail.into_iter().filter(|b| *b != b'"').collect();
            let mut bytes = if bom { vec![0xEF, 0xBB, 0xBF] } else { Vec::new() };
            bytes.extend_from_slice("网点编号,所在社区代码\n".as_bytes());
            while bytes.len() < 70 * 1024 {
                bytes.extend_from_slice("A1,152201001001\n".as_bytes());
            }
            bytes.extend_from_slice(&tail);
            let (decoded, _, _) = encoding_rs::UTF_8.decode(&bytes);
            let limits = crate::datasets::OUTLETS.limits();
            let read = |input: &[u8]| {
                let mut out = Vec::new();
                let result = read_rows(input, &[], &limits, |n, cells| {
                    out.push((n, cells.iter().map(Cell::to_text).collect::<Vec<String>>()))
                });
                (result.map_err(|e| e.to_string()), out)
            };
            proptest::prop_assert_eq!(read(&bytes), read(decoded.as_bytes()));
        }
    }

    /// A character cut by a separator: each half of `中` in a cell of its own. The record's
    /// cells put end to end are valid UTF-8, but neither cell is; each reads as U+FFFD.
    #[test]
    fn a_character_cut_by_a_separator_is_two_invalid_cells() {
        let mut bytes = vec![b'\n'; 65 * 1024];
        bytes.extend_from_slice(b"\xE4\xB8,\xAD\n");
        assert_eq!(
            rows(&bytes),
            [(65 * 1024 + 1, vec!["\u{FFFD}".to_string(); 2])]
        );
    }

    #[test]
    fn utf8_with_bom_and_gbk_read_the_same() {
        let text = "网点编号,所在社区代码\nA1,152201001001\n";
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(text.as_bytes());
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        assert_eq!(rows(&bom), rows(text.as_bytes()));
        assert_eq!(rows(&gbk), rows(text.as_bytes()));
        assert_eq!(rows(text.as_bytes())[0].1[0], "网点编号");
    }

    #[test]
    fn gb18030_four_byte_characters_are_detected_and_kept() {
        // 𠀀 (U+20000) and 㐀 (U+3400) are outside GBK: GB18030 writes the first in four bytes.
        let text = "机构名称,备注\n𠀀家政服务中心,㐀\n";
        let (bytes, _, unmappable) = encoding_rs::GB18030.encode(text);
        assert!(!unmappable);
        assert!(bytes.windows(4).any(|w| w == [0x95, 0x32, 0x82, 0x36]));
        assert_eq!(rows(&bytes), rows(text.as_bytes()));
        assert_eq!(rows(&bytes)[1].1[0], "𠀀家政服务中心");
    }

    #[test]
    fn the_sheet_named_after_the_dataset_wins_over_the_first() {
        let outlets = crate::datasets::by_name("outlets").unwrap();
        let mut book = rust_xlsxwriter::Workbook::new();
        let notes = book.add_worksheet();
        notes.set_name("填表说明").unwrap();
        notes.write(0, 0, "请勿修改表头").unwrap();
        let data = book.add_worksheet();
        data.set_name(outlets.zh).unwrap();
        data.write(0, 0, "网点编号").unwrap();
        data.write(1, 0, "A1").unwrap();
        let bytes = book.save_to_buffer().unwrap();
        let read = |names: &[&str]| {
            let mut out = Vec::new();
            read_rows(&bytes[..], names, &outlets.limits(), |n, cells| {
                out.push((n, cells.iter().map(Cell::to_text).collect::<Vec<_>>()))
            })
            .unwrap();
            out
        };
        assert_eq!(
            read(&[outlets.name, outlets.zh]),
            [
                (1, vec!["网点编号".to_string()]),
                (2, vec!["A1".to_string()])
            ]
        );
        // Without a sheet of that name, the first one is read.
        assert_eq!(read(&["shops"])[0].1, ["请勿修改表头"]);
    }

    #[test]
    fn tabs_and_multiline_cells_keep_excel_row_numbers() {
        let r = rows("标题\n\na\tb\n\"x\ny\"\t2\nz\t3\n".as_bytes());
        let numbers: Vec<_> = r.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [1, 3, 4, 6]);
        assert_eq!(r[2].1, ["x\ny", "2"]);
        // Windows line ends, blank lines and no final line end.
        let r = rows("a,1\r\n\r\n\r\nb,2\r\n\"c\r\nd\",3\r\n\r\ne,4".as_bytes());
        let numbers: Vec<_> = r.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [1, 4, 5, 8]);
    }

    #[test]
    fn csv_rows_and_cells_are_bounded_while_read() {
        let limits = crate::datasets::OUTLETS.limits();
        let read = |bytes: &[u8]| read_rows(bytes, &[], &limits, |_, _| {}).map(|_| ());
        // Blank lines cost nothing, however many.
        let mut blank = b"a,b\n".to_vec();
        blank.extend(std::iter::repeat_n(b'\n', 3 * limits.max_row_bytes));
        blank.extend(b"c,d\n");
        assert!(read(&blank).is_ok());
        // A row, or a quoted cell of line breaks, longer than the longest row is refused.
        let long_row = vec![b','; limits.max_row_bytes + 1];
        let mut long_cell = b"\"".to_vec();
        long_cell.extend(std::iter::repeat_n(b'\n', limits.max_row_bytes + 1));
        long_cell.push(b'"');
        for bytes in [long_row, long_cell] {
            assert!(matches!(
                read(&bytes),
                Err(SheetError::Limit(Exceeded::Row { .. }))
            ));
        }
        // A value beyond the last column, a cell longer than a cell may be.
        let wide = format!("{}x\n", ",".repeat(limits.max_columns));
        assert!(matches!(
            read(wide.as_bytes()),
            Err(SheetError::Limit(Exceeded::Columns { .. }))
        ));
        let fat = format!("{}\n", "y".repeat(limits.max_cell_bytes + 1));
        assert!(matches!(
            read(fat.as_bytes()),
            Err(SheetError::Limit(Exceeded::Cell { .. }))
        ));
        // The limit is on the text: after 64 KiB of UTF-8, a cell of invalid bytes at the
        // limit reads as three times as many bytes of U+FFFD, and is refused; a third of it fits.
        let invalid = |n: usize| {
            let mut bytes = vec![b'\n'; 65 * 1024];
            bytes.extend(std::iter::repeat_n(0xFF, n));
            bytes.push(b'\n');
            bytes
        };
        assert!(matches!(
            read(&invalid(limits.max_cell_bytes)),
            Err(SheetError::Limit(Exceeded::Cell { .. }))
        ));
        assert!(read(&invalid(limits.max_cell_bytes / 3)).is_ok());
        // Trailing empty columns are not values.
        let trailing = format!("a,b{}\n", ",".repeat(limits.max_columns * 3));
        assert!(read(trailing.as_bytes()).is_ok());
    }

    #[test]
    fn binary_junk_is_refused() {
        let junk: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        assert!(matches!(
            read_rows(
                &junk[..],
                &[],
                &crate::datasets::OUTLETS.limits(),
                |_, _| {}
            ),
            Err(SheetError::Binary)
        ));
    }

    #[test]
    fn excel_serials() {
        assert_eq!(
            excel_serial_date(45107.0),
            NaiveDate::from_ymd_opt(2023, 6, 30)
        );
        assert_eq!(excel_serial_date(1.0), NaiveDate::from_ymd_opt(1900, 1, 1));
        assert_eq!(excel_serial_date(61.0), NaiveDate::from_ymd_opt(1900, 3, 1));
        assert_eq!(excel_serial_date(-3.0), None);
    }

    /// Limits small enough that random input reaches them.
    fn tight() -> Limits {
        let mut limits = crate::datasets::OUTLETS.limits();
        limits.max_rows = 5;
        limits.max_sheet_rows = 8;
        limits.max_columns = 6;
        limits.max_cell_bytes = 24;
        limits.max_row_bytes = 6 * 27;
        limits.max_xml_run_bytes = 64;
        limits.max_strings = 20;
        limits.max_strings_bytes = 4096;
        limits.max_unpacked_bytes = 64 * 1024;
        limits
    }

    /// What a reader delivered, checked against the limits as it came.
    fn read_checked(bytes: &[u8], limits: &Limits) -> Result<usize, String> {
        let mut counted = 0;
        let mut broken = None;
        let _ = read_rows(bytes, &[], limits, |_, cells| {
            if cells.iter().any(|c| !c.is_blank()) {
                counted += 1;
            }
            if cells.len() > limits.max_columns {
                broken = Some(format!("{} columns", cells.len()));
            }
            if let Some(c) = cells.iter().find(|c| c.text_len() > limits.max_cell_bytes) {
                broken = Some(format!("a cell of {} bytes", c.text_len()));
            }
        });
        match broken {
            Some(why) => Err(why),
            None if counted > limits.max_sheet_rows => Err(format!("{counted} rows")),
            None => Ok(counted),
        }
    }

    /// Pieces of sheet XML, valid and hostile, for the workbook fuzzer.
    fn xml_piece() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            (1u32..40).prop_map(|r| format!("<row r=\"{r}\">")),
            Just("</row>".to_string()),
            ("[A-Z]{1,4}", 0u64..5_000_000_000)
                .prop_map(|(c, r)| format!("<c r=\"{c}{r}\" t=\"inlineStr\"><is><t>")),
            Just("</t></is></c>".to_string()),
            (0u32..30).prop_map(|i| format!("<c t=\"s\"><v>{i}</v></c>")),
            "[a-z0-9网点编号 ]{0,40}",
            Just("<![CDATA[".to_string()),
            Just("]]>".to_string()),
            Just("<!--".to_string()),
            Just("-->".to_string()),
            Just("<!DOCTYPE x>".to_string()),
            Just("&amp;&lt;&#x4e00;&bad;".to_string()),
            Just("<x y=\">\">".to_string()),
            Just("<f t=\"shared\" si=\"4294967295\"/>".to_string()),
        ]
    }

    fn workbook(sheet: &str, strings: &str) -> Vec<u8> {
        use std::io::Write as _;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        let ns = "xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"";
        let rels = "xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"";
        let office = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
        let parts = [
            (
                "_rels/.rels".to_string(),
                format!(
                    "<Relationships {rels}><Relationship Id=\"rId1\" Type=\"{office}/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>"
                ),
            ),
            (
                "xl/workbook.xml".into(),
                format!(
                    "<workbook {ns} xmlns:r=\"{office}\"><sheets><sheet name=\"s\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>"
                ),
            ),
            (
                "xl/_rels/workbook.xml.rels".into(),
                format!(
                    "<Relationships {rels}><Relationship Id=\"rId1\" Type=\"{office}/worksheet\" Target=\"worksheets/sheet1.xml\"/><Relationship Id=\"rId2\" Type=\"{office}/sharedStrings\" Target=\"sharedStrings.xml\"/></Relationships>"
                ),
            ),
            (
                "xl/worksheets/sheet1.xml".into(),
                format!("<worksheet {ns}><sheetData>{sheet}</sheetData></worksheet>"),
            ),
            (
                "xl/sharedStrings.xml".into(),
                format!("<sst {ns}>{strings}</sst>"),
            ),
        ];
        for (name, content) in parts {
            zip.start_file(name, options).unwrap();
            zip.write_all(content.as_bytes()).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz_config(2000))]

        /// Any bytes, read as CSV or (behind a zip signature) as a workbook: no panic, and
        /// nothing delivered past a limit.
        #[test]
        fn fuzz_any_bytes_stay_within_limits(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
            as_zip in proptest::prelude::any::<bool>(),
        ) {
            let mut input = bytes;
            if as_zip {
                input.splice(0..0, *b"PK\x03\x04");
            }
            proptest::prop_assert!(read_checked(&input, &tight()).is_ok());
        }

        /// CSV made of the characters that matter to the parser.
        #[test]
        fn fuzz_csv_shapes_stay_within_limits(text in "[a,\"\r\n\t网 ]{0,600}") {
            proptest::prop_assert!(read_checked(text.as_bytes(), &tight()).is_ok());
        }

        /// Workbooks whose sheet and shared strings are soups of valid and hostile XML.
        #[test]
        fn fuzz_workbooks_stay_within_limits(
            sheet in proptest::collection::vec(xml_piece(), 0..60),
            strings in proptest::collection::vec(xml_piece(), 0..20),
        ) {
            let strings: String = strings.iter().map(|s| format!("<si><t>{s}</t></si>")).collect();
            let book = workbook(&sheet.concat(), &strings);
            proptest::prop_assert!(read_checked(&book, &tight()).is_ok());
        }
    }
}
