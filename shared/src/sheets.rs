//! Turns an uploaded file into rows of cells, whatever office software wrote it: CSV in UTF-8
//! (with or without BOM), GBK or GB18030, comma or tab separated; XLSX (streamed cell by cell)
//! and legacy XLS. Rows are pushed to a callback as they are read, so memory stays bounded by
//! one row however large the file.
//!
//! Row numbers are the ones the submitter sees in Excel: 1-based, counting every physical row.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{Cursor, Read};
use std::rc::Rc;

use calamine::{DataRef, Reader as _};
use chrono::NaiveDate;
use encoding_rs::{Encoding, GB18030, UTF_8};

/// One cell as the file stores it; the validator decides what it means.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    Bool(bool),
    /// A date (or date-time) cell of a spreadsheet.
    Date(NaiveDate),
}

impl Cell {
    /// The cell as text, the way a person reads it: whole numbers without `.0`.
    pub fn to_text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(s) => s.clone(),
            Cell::Number(n) => format_number(*n),
            Cell::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
            Cell::Date(d) => d.format("%Y-%m-%d").to_string(),
        }
    }

    pub fn is_blank(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(s) => s.trim().is_empty(),
            _ => false,
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
}

/// Reads every row of `input` and hands it to `each` with its row number. For a workbook the
/// sheet named after the dataset (English or Chinese name) is read, else the first one.
pub fn read_rows(
    mut input: impl Read,
    sheet_names: &[&str],
    mut each: impl FnMut(usize, &[Cell]),
) -> Result<Format, SheetError> {
    let mut head = Vec::with_capacity(PEEK);
    (&mut input).take(PEEK as u64).read_to_end(&mut head)?;
    let format = Format::sniff(&head);
    let rest = Cursor::new(head).chain(input);
    match format {
        Format::Csv => read_csv(rest, &mut each)?,
        Format::Xlsx | Format::Xls => {
            let mut bytes = Vec::new();
            { rest }.read_to_end(&mut bytes)?;
            read_workbook(format, bytes, sheet_names, &mut each)?;
        }
    }
    Ok(format)
}

/// How much of a file is looked at to tell its format, encoding and separator.
const PEEK: usize = 64 * 1024;

fn read_csv(input: impl Read, each: &mut impl FnMut(usize, &[Cell])) -> Result<(), SheetError> {
    let mut input = input;
    let mut head = Vec::with_capacity(PEEK);
    (&mut input).take(PEEK as u64).read_to_end(&mut head)?;
    if head.contains(&0) {
        return Err(SheetError::Binary);
    }
    let encoding = detect_encoding(&head);
    let (text, _, _) = encoding.decode(&head);
    let delimiter = detect_delimiter(&text);
    let decoded = encoding_rs_io::DecodeReaderBytesBuilder::new()
        .encoding(Some(encoding))
        .bom_override(true)
        .build(Cursor::new(head).chain(input));
    let lines = Rc::new(RefCell::new(NewlineLog::default()));
    let counted = Counting {
        inner: decoded,
        log: lines.clone(),
    };
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(counted);
    let mut record = csv::StringRecord::new();
    let mut cells: Vec<Cell> = Vec::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(SheetError::Csv {
                    line,
                    message: e.to_string(),
                });
            }
        }
        // The csv crate skips blank lines but counts them into the record's start, so the
        // start line is worked out from where the record ended instead.
        let end = csv.position().byte();
        let inside: usize = record.iter().map(|f| f.matches('\n').count()).sum();
        let row = lines.borrow_mut().start_line(end, inside);
        cells.clear();
        cells.extend(record.iter().map(|s| {
            if s.is_empty() {
                Cell::Empty
            } else {
                Cell::Text(s.to_string())
            }
        }));
        each(row, &cells);
    }
    Ok(())
}

/// Offsets of the line breaks the CSV parser has been fed.
#[derive(Default)]
struct NewlineLog {
    ahead: VecDeque<u64>,
    passed: usize,
    last_passed: Option<u64>,
    read: u64,
}

impl NewlineLog {
    /// The 1-based line on which a record ending at byte `end` (exclusive) and holding
    /// `inside` line breaks within quoted cells started.
    fn start_line(&mut self, end: u64, inside: usize) -> usize {
        while self.ahead.front().is_some_and(|&o| o < end) {
            self.last_passed = self.ahead.pop_front();
            self.passed += 1;
        }
        let terminated = end > 0 && self.last_passed == Some(end - 1);
        1 + self.passed - inside - usize::from(terminated)
    }
}

struct Counting<R> {
    inner: R,
    log: Rc<RefCell<NewlineLog>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut log = self.log.borrow_mut();
        let base = log.read;
        for (i, _) in buf[..n].iter().enumerate().filter(|(_, b)| **b == b'\n') {
            log.ahead.push_back(base + i as u64);
        }
        log.read += n as u64;
        Ok(n)
    }
}

/// UTF-8 when the bytes are valid UTF-8 (a BOM is handled by the decoder), otherwise
/// GB18030, whose decoder also reads GBK and GB2312.
fn detect_encoding(head: &[u8]) -> &'static Encoding {
    if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return UTF_8;
    }
    match std::str::from_utf8(head) {
        Ok(_) => UTF_8,
        // A multi-byte character cut by the end of the peek window is still UTF-8.
        Err(e) if e.error_len().is_none() && head.len() - e.valid_up_to() < 4 => UTF_8,
        Err(_) => GB18030,
    }
}

/// Tab when the first lines hold more tabs than commas; `;` is not used, because services
/// are written `保洁;育幼` inside a comma-separated cell.
fn detect_delimiter(text: &str) -> u8 {
    let sample: String = text.lines().take(30).collect();
    let tabs = sample.matches('\t').count();
    let commas = sample.matches(',').count();
    if tabs > commas { b'\t' } else { b',' }
}

fn choose_sheet(names: &[String], wanted: &[&str]) -> Option<String> {
    wanted
        .iter()
        .find_map(|w| names.iter().find(|n| n.trim() == *w))
        .or_else(|| names.first())
        .cloned()
}

fn read_workbook(
    format: Format,
    bytes: Vec<u8>,
    wanted: &[&str],
    each: &mut impl FnMut(usize, &[Cell]),
) -> Result<(), SheetError> {
    let err = |e: &dyn std::fmt::Display| SheetError::Workbook(e.to_string());
    if format == Format::Xlsx {
        let mut book = calamine::Xlsx::new(Cursor::new(bytes)).map_err(|e| err(&e))?;
        let sheet = choose_sheet(&book.sheet_names(), wanted)
            .ok_or_else(|| SheetError::Workbook("the workbook has no sheets".into()))?;
        let mut reader = book.worksheet_cells_reader(&sheet).map_err(|e| err(&e))?;
        let mut row_cells: Vec<Cell> = Vec::new();
        let mut current: Option<u32> = None;
        while let Some(cell) = reader.next_cell().map_err(|e| err(&e))? {
            let (row, col) = cell.get_position();
            if current != Some(row) {
                if let Some(done) = current {
                    each(done as usize + 1, &row_cells);
                }
                row_cells.clear();
                current = Some(row);
            }
            let col = col as usize;
            if row_cells.len() <= col {
                row_cells.resize(col + 1, Cell::Empty);
            }
            row_cells[col] = data_ref_cell(cell.get_value());
        }
        if let Some(done) = current {
            each(done as usize + 1, &row_cells);
        }
        return Ok(());
    }
    let mut book = calamine::Xls::new(Cursor::new(bytes)).map_err(|e| err(&e))?;
    let sheet = choose_sheet(&book.sheet_names(), wanted)
        .ok_or_else(|| SheetError::Workbook("the workbook has no sheets".into()))?;
    let range = book.worksheet_range(&sheet).map_err(|e| err(&e))?;
    let (first_row, first_col) = range.start().unwrap_or((0, 0));
    let mut row_cells = Vec::new();
    for (i, row) in range.rows().enumerate() {
        row_cells.clear();
        row_cells.resize(first_col as usize, Cell::Empty);
        row_cells.extend(row.iter().map(data_cell));
        each(first_row as usize + i + 1, &row_cells);
    }
    Ok(())
}

fn data_ref_cell(value: &DataRef<'_>) -> Cell {
    match value {
        DataRef::Empty => Cell::Empty,
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
            Cell::Text(s.clone())
        }
        DataRef::SharedString(s) => Cell::Text((*s).to_string()),
        DataRef::Float(f) => Cell::Number(*f),
        DataRef::Int(i) => Cell::Number(*i as f64),
        DataRef::Bool(b) => Cell::Bool(*b),
        DataRef::DateTime(dt) => match excel_serial_date(dt.as_f64()) {
            Some(d) if dt.is_datetime() => Cell::Date(d),
            _ => Cell::Number(dt.as_f64()),
        },
        DataRef::Error(e) => Cell::Text(format!("#{e}")),
    }
}

fn data_cell(value: &calamine::Data) -> Cell {
    use calamine::Data;
    let as_ref = match value {
        Data::Int(i) => DataRef::Int(*i),
        Data::Float(f) => DataRef::Float(*f),
        Data::String(s) => DataRef::SharedString(s),
        Data::Bool(b) => DataRef::Bool(*b),
        Data::DateTime(d) => DataRef::DateTime(*d),
        Data::DateTimeIso(s) => DataRef::DateTimeIso(s.clone()),
        Data::DurationIso(s) => DataRef::DurationIso(s.clone()),
        Data::Error(e) => DataRef::Error(e.clone()),
        Data::Empty => DataRef::Empty,
    };
    data_ref_cell(&as_ref)
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
        read_rows(bytes, &[], |n, cells| {
            out.push((n, cells.iter().map(Cell::to_text).collect()))
        })
        .unwrap();
        out
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
            read_rows(&bytes[..], names, |n, cells| {
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
    fn binary_junk_is_refused() {
        let junk: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        assert!(matches!(
            read_rows(&junk[..], &[], |_, _| {}),
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
}
