//! XLSX, streamed cell by cell by calamine, after the workbook has been checked against the
//! dataset's limits without trusting anything it says about itself.
//!
//! calamine reserves what a workbook announces (the shared-strings count) and buffers every
//! XML text and tag whole, so before it sees the file: the number of parts, their sizes and
//! compression ratios are checked from the zip directory (the zip reader then refuses to
//! unpack a part past its declared size), and every XML part is scanned once, in constant
//! memory, for runs of text or markup longer than any cell can be, for DTDs (entity bombs),
//! and for the shared-strings count. Only then are the cells read, each checked as it comes.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};

use calamine::{DataRef, Reader as _};

use super::{Cell, Exceeded, Rows, SheetError, excel_serial_date};
use crate::datasets::Limits;
use crate::datasets::limits::{MAX_PARTS, RATIO_EXEMPT_BYTES};

pub(super) fn read(
    mut file: File,
    wanted: &[&str],
    limits: &Limits,
    each: &mut impl FnMut(usize, &[Cell<'_>]),
) -> Result<(), SheetError> {
    check(&mut file, limits)?;
    file.seek(SeekFrom::Start(0))?;
    // A malformed workbook must not take the process down if calamine panics on it.
    catch_unwind(AssertUnwindSafe(|| read_cells(file, wanted, limits, each))).unwrap_or_else(|_| {
        Err(SheetError::Workbook(
            "the workbook is malformed and could not be read".into(),
        ))
    })
}

fn read_cells(
    file: File,
    wanted: &[&str],
    limits: &Limits,
    each: &mut impl FnMut(usize, &[Cell<'_>]),
) -> Result<(), SheetError> {
    let err = |e: &dyn std::fmt::Display| SheetError::Workbook(e.to_string());
    let mut book = calamine::Xlsx::new(BufReader::new(file)).map_err(|e| err(&e))?;
    let sheet = choose_sheet(&book.sheet_names(), wanted)
        .ok_or_else(|| SheetError::Workbook("the workbook has no sheets".into()))?;
    let mut reader = book.worksheet_cells_reader(&sheet).map_err(|e| err(&e))?;
    let mut rows = Rows::new(limits);
    let mut row_cells: Vec<Cell<'_>> = Vec::new();
    let mut current: Option<u32> = None;
    while let Some(cell) = reader.next_cell().map_err(|e| err(&e))? {
        let (row, col) = cell.get_position();
        if current != Some(row) {
            if let Some(done) = current {
                rows.deliver(done as usize + 1, &row_cells, each)?;
            }
            row_cells.clear();
            current = Some(row);
        }
        let value = data_ref_cell(cell.get_value());
        if value == Cell::Empty {
            continue;
        }
        let col = col as usize;
        rows.check_cell(col, value.text_len())?;
        if row_cells.len() <= col {
            row_cells.resize(col + 1, Cell::Empty);
        }
        row_cells[col] = value;
    }
    if let Some(done) = current {
        rows.deliver(done as usize + 1, &row_cells, each)?;
    }
    Ok(())
}

/// Checks the workbook's directory and XML against the limits, in constant memory.
fn check(file: &mut File, limits: &Limits) -> Result<(), SheetError> {
    let unreadable = |e: &dyn std::fmt::Display| SheetError::Workbook(e.to_string());
    let mut zip = zip::ZipArchive::new(&mut *file).map_err(|e| unreadable(&e))?;
    if zip.len() > MAX_PARTS {
        return Err(Exceeded::Parts { max: MAX_PARTS }.into());
    }
    let mut unpacked: u64 = 0;
    for index in 0..zip.len() {
        let part = zip.by_index(index).map_err(|e| unreadable(&e))?;
        let size = part.size();
        unpacked = unpacked.saturating_add(size);
        if unpacked > limits.max_unpacked_bytes {
            return Err(Exceeded::Unpacked {
                max: limits.max_unpacked_bytes,
            }
            .into());
        }
        let packed = part.compressed_size().max(1);
        if size > RATIO_EXEMPT_BYTES && size / packed > limits.max_compression_ratio {
            return Err(Exceeded::Ratio {
                max: limits.max_compression_ratio,
            }
            .into());
        }
        let name = part
            .name()
            .map_err(|e| unreadable(&e))?
            .to_ascii_lowercase();
        if !(name.ends_with(".xml") || name.ends_with(".rels")) {
            continue;
        }
        let shared_strings = name.ends_with("sharedstrings.xml");
        if shared_strings && size > limits.max_strings_bytes {
            return Err(Exceeded::Strings {
                max: limits.max_strings,
            }
            .into());
        }
        let mut scan = XmlScan::new(limits, shared_strings);
        let mut buf = vec![0u8; 64 * 1024];
        let mut part = part;
        loop {
            let n = part.read(&mut buf).map_err(|e| unreadable(&e))?;
            if n == 0 {
                break;
            }
            scan.feed(&buf[..n])?;
        }
    }
    Ok(())
}

/// Where the scanner is in the XML.
#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Text,
    /// Inside `<…>`, outside quotes.
    Tag,
    Quoted(u8),
    /// Inside a comment, CDATA section or processing instruction, until its terminator.
    Until(&'static [u8]),
}

/// Scans XML in constant memory: how long the text or markup runs that a pull parser would
/// buffer whole are, whether a DTD is declared, and how many shared strings there are.
struct XmlScan {
    state: State,
    run: usize,
    max_run: usize,
    /// The first bytes of the current tag, enough to tell its kind.
    name: Vec<u8>,
    /// The whole `<sst …>` tag, whose attributes announce the string count.
    sst: Option<Vec<u8>>,
    shared_strings: bool,
    strings: usize,
    max_strings: usize,
}

const NAME_BYTES: usize = 9;

impl XmlScan {
    fn new(limits: &Limits, shared_strings: bool) -> XmlScan {
        XmlScan {
            state: State::Text,
            run: 0,
            max_run: limits.max_xml_run_bytes,
            name: Vec::with_capacity(NAME_BYTES),
            sst: None,
            shared_strings,
            strings: 0,
            max_strings: limits.max_strings,
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> Result<(), Exceeded> {
        for &b in bytes {
            self.run += 1;
            if self.run > self.max_run {
                return Err(Exceeded::Cell { max: self.max_run });
            }
            match self.state {
                State::Text => {
                    if b == b'<' {
                        self.state = State::Tag;
                        self.run = 1;
                        self.name.clear();
                    }
                }
                State::Quoted(q) => {
                    self.keep_sst(b);
                    if b == q {
                        self.state = State::Tag;
                    }
                }
                State::Until(end) => {
                    if self.name.len() == end.len() {
                        self.name.remove(0);
                    }
                    self.name.push(b);
                    if self.name == end {
                        self.state = State::Text;
                        self.run = 0;
                    }
                }
                State::Tag => self.tag_byte(b)?,
            }
        }
        Ok(())
    }

    fn tag_byte(&mut self, b: u8) -> Result<(), Exceeded> {
        if self.name.len() < NAME_BYTES {
            self.name.push(b);
            let end: Option<&'static [u8]> = match self.name.as_slice() {
                b"!--" => Some(b"-->"),
                b"![CDATA[" => Some(b"]]>"),
                b"?" => Some(b"?>"),
                name if name.eq_ignore_ascii_case(b"!DOCTYPE") || name == b"!ENTITY" => {
                    return Err(Exceeded::Doctype);
                }
                _ => None,
            };
            if let Some(end) = end {
                self.until(end);
                return Ok(());
            }
        }
        self.keep_sst(b);
        match b {
            b'"' | b'\'' => self.state = State::Quoted(b),
            b'>' => {
                self.end_tag()?;
                self.state = State::Text;
                self.run = 0;
            }
            _ => {}
        }
        Ok(())
    }

    fn until(&mut self, end: &'static [u8]) {
        self.state = State::Until(end);
        self.name.clear();
    }

    /// Keeps the bytes of the `<sst …>` tag (bounded by the run limit).
    fn keep_sst(&mut self, b: u8) {
        if !self.shared_strings {
            return;
        }
        match &mut self.sst {
            None if local(&self.name) == b"sst" => self.sst = Some(b"<sst".to_vec()),
            Some(sst) if !sst.ends_with(b">") => sst.push(b),
            _ => {}
        }
    }

    fn end_tag(&mut self) -> Result<(), Exceeded> {
        if !self.shared_strings {
            return Ok(());
        }
        let name = local(&self.name);
        let is = |tag: &[u8]| {
            name.starts_with(tag)
                && name
                    .get(tag.len())
                    .is_none_or(|c| c.is_ascii_whitespace() || *c == b'>' || *c == b'/')
        };
        if is(b"si") {
            self.strings += 1;
        } else if is(b"sst")
            && let Some(sst) = &self.sst
        {
            for attribute in [&b"count"[..], b"uniqueCount"] {
                if announced(sst, attribute).is_some_and(|n| n > self.max_strings as u64) {
                    return Err(Exceeded::Strings {
                        max: self.max_strings,
                    });
                }
            }
        }
        if self.strings > self.max_strings {
            return Err(Exceeded::Strings {
                max: self.max_strings,
            });
        }
        Ok(())
    }
}

/// A tag's name without its namespace prefix (`x:si` is `si` to calamine too).
fn local(name: &[u8]) -> &[u8] {
    let end = name
        .iter()
        .position(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/')
        .unwrap_or(name.len());
    match name[..end].iter().position(|b| *b == b':') {
        Some(colon) => &name[colon + 1..],
        None => name,
    }
}

/// The number an attribute of a tag announces (`uniqueCount="12"`); saturates when it does not
/// fit, so an absurd claim reads as too large rather than as absent.
fn announced(tag: &[u8], name: &[u8]) -> Option<u64> {
    let mut at = 0;
    while let Some(found) = tag[at..].windows(name.len()).position(|w| w == name) {
        let start = at + found;
        at = start + name.len();
        let preceded = start == 0 || tag[start - 1].is_ascii_whitespace();
        let rest = &tag[at..];
        let rest = rest.strip_prefix(b"=").map(|r| {
            r.strip_prefix(b"\"")
                .or_else(|| r.strip_prefix(b"'"))
                .unwrap_or(r)
        });
        if let (true, Some(rest)) = (preceded, rest) {
            let digits = rest.iter().take_while(|b| b.is_ascii_digit());
            return Some(digits.fold(0u64, |n, d| {
                n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
            }));
        }
    }
    None
}

fn choose_sheet(names: &[String], wanted: &[&str]) -> Option<String> {
    wanted
        .iter()
        .find_map(|w| names.iter().find(|n| n.trim() == *w))
        .or_else(|| names.first())
        .cloned()
}

/// A cell of the workbook; a shared string is borrowed from the workbook's table.
fn data_ref_cell<'a>(value: &DataRef<'a>) -> Cell<'a> {
    match value {
        DataRef::Empty => Cell::Empty,
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
            Cell::Text(s.clone().into())
        }
        DataRef::SharedString(s) => Cell::Text((*s).into()),
        DataRef::Float(f) => Cell::Number(*f),
        DataRef::Int(i) => Cell::Number(*i as f64),
        DataRef::Bool(b) => Cell::Bool(*b),
        DataRef::DateTime(dt) => match excel_serial_date(dt.as_f64()) {
            Some(d) if dt.is_datetime() => Cell::Date(d),
            _ => Cell::Number(dt.as_f64()),
        },
        DataRef::Error(e) => Cell::Text(format!("#{e}").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::OUTLETS;

    fn scan(xml: &str, shared: bool) -> Result<(), Exceeded> {
        let limits = OUTLETS.limits();
        let mut scan = XmlScan::new(&limits, shared);
        // Fed in small pieces, so state carries across reads.
        for piece in xml.as_bytes().chunks(7) {
            scan.feed(piece)?;
        }
        Ok(())
    }

    #[test]
    fn ordinary_xml_passes() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="3" uniqueCount="2"><si><t>网点编号</t></si><!-- a > comment --><si><t><![CDATA[a<b>c]]></t></si></sst>"#;
        assert_eq!(scan(xml, true), Ok(()));
    }

    #[test]
    fn announced_counts_and_string_runs_are_bounded() {
        let limits = OUTLETS.limits();
        let claim = format!(
            r#"<sst xmlns="x" uniqueCount="{}"><si><t>a</t></si></sst>"#,
            u64::MAX
        );
        assert_eq!(
            scan(&claim, true),
            Err(Exceeded::Strings {
                max: limits.max_strings
            })
        );
        let long = format!(
            "<si><t>{}</t></si>",
            "x".repeat(limits.max_xml_run_bytes + 1)
        );
        assert!(matches!(scan(&long, true), Err(Exceeded::Cell { .. })));
        // A tag whose quoted attribute hides '>' characters still counts as one run.
        let tag = format!(r#"<c r="A1" x="{}">"#, ">".repeat(limits.max_xml_run_bytes));
        assert!(matches!(scan(&tag, false), Err(Exceeded::Cell { .. })));
        let doctype = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><sst/>"#;
        assert_eq!(scan(doctype, true), Err(Exceeded::Doctype));
    }

    #[test]
    fn announced_reads_attributes_only() {
        assert_eq!(
            announced(br#"<sst count="5" uniqueCount='7'>"#, b"count"),
            Some(5)
        );
        assert_eq!(
            announced(br#"<sst count="5" uniqueCount='7'>"#, b"uniqueCount"),
            Some(7)
        );
        assert_eq!(announced(br#"<sst xcount="5">"#, b"count"), None);
        assert_eq!(
            announced(br#"<sst count="99999999999999999999999">"#, b"count"),
            Some(u64::MAX)
        );
    }
}
