//! CSV in UTF-8 (with or without BOM), GBK or GB18030, comma or tab separated, parsed record by
//! record by `csv-core` into a buffer the size of the dataset's longest row: a record that does
//! not fit is refused as it is read, so a file that is one endless line or one endless quoted
//! cell costs no more memory than one legitimate row. Blank lines are skipped for free.

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Cursor, Read};

use csv_core::ReadRecordResult;
use encoding_rs::{Encoding, GB18030, UTF_8};

use super::{Cell, Exceeded, Rows, SheetError};
use crate::datasets::Limits;

/// How much of a file is looked at to tell its encoding and separator.
const PEEK: usize = 64 * 1024;

pub(super) fn read(
    input: impl Read,
    limits: &Limits,
    each: &mut impl FnMut(usize, &[Cell<'_>]),
) -> Result<(), SheetError> {
    let mut input = input;
    let mut head = Vec::with_capacity(PEEK);
    (&mut input).take(PEEK as u64).read_to_end(&mut head)?;
    if head.contains(&0) {
        return Err(SheetError::Binary);
    }
    let encoding = detect_encoding(&head);
    let (text, _, _) = encoding.decode(&head);
    let delimiter = detect_delimiter(&text);
    let decoded: Box<dyn Read + '_> = if encoding == UTF_8 {
        // Read as it is: each record is checked as UTF-8 once it is split (an invalid byte
        // replaced, as the decoder would), so transcoding first would only copy the file
        // once more on the reading thread.
        let mut head = Cursor::new(head);
        if head.get_ref().starts_with(UTF_8_BOM) {
            head.set_position(UTF_8_BOM.len() as u64);
        }
        Box::new(head.chain(input))
    } else {
        Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding))
                .bom_override(true)
                .build(Cursor::new(head).chain(input)),
        )
    };
    let mut decoded = BufReader::with_capacity(PEEK, decoded);
    let mut parser = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
    // One row at its longest; every field needs at least one byte, so as many field ends.
    let too_long = Exceeded::Row {
        max: limits.max_row_bytes,
    };
    let mut out = vec![0u8; limits.max_row_bytes];
    let mut ends = vec![0usize; limits.max_row_bytes];
    let (mut out_len, mut ends_len) = (0, 0);
    let mut lines = Lines::default();
    let mut rows = Rows::new(limits);
    loop {
        let input = decoded.fill_buf()?;
        let (result, nin, nout, nend) =
            parser.read_record(input, &mut out[out_len..], &mut ends[ends_len..]);
        lines.consumed(&input[..nin]);
        decoded.consume(nin);
        out_len += nout;
        ends_len += nend;
        match result {
            ReadRecordResult::InputEmpty => {}
            ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull => {
                return Err(too_long.into());
            }
            ReadRecordResult::Record => {
                let record = &out[..out_len];
                let inside = record.iter().filter(|b| **b == b'\n').count();
                // Checked once for the whole record rather than cell by cell: nearly every
                // record is valid, and its cells are then borrowed as they are.
                let valid = std::str::from_utf8(record).ok();
                let mut start = 0;
                let mut cells = Vec::with_capacity(ends_len);
                for (column, &end) in ends[..ends_len].iter().enumerate() {
                    let range = start..end;
                    start = end;
                    if range.is_empty() {
                        cells.push(Cell::Empty);
                        continue;
                    }
                    // A cell ending inside a character that the next one completes (invalid
                    // bytes cut by a separator) is not on a boundary: read on its own, like a
                    // record that is not valid UTF-8, each invalid byte replaced. The limit is
                    // on the text: an invalid byte becomes U+FFFD, three bytes.
                    let text = match valid.and_then(|text| text.get(range.clone())) {
                        Some(text) => Cow::Borrowed(text),
                        None => String::from_utf8_lossy(&record[range]),
                    };
                    rows.check_cell(column, text.len())?;
                    cells.push(Cell::Text(text));
                }
                rows.deliver(lines.start_of_record(inside), &cells, each)?;
                out_len = 0;
                ends_len = 0;
            }
            ReadRecordResult::End => return Ok(()),
        }
    }
}

/// Counts line breaks in the input the parser has consumed, to give each record the line it
/// started on as Excel numbers it.
#[derive(Default)]
struct Lines {
    breaks: usize,
    last_was_break: bool,
}

impl Lines {
    fn consumed(&mut self, bytes: &[u8]) {
        self.breaks += bytes.iter().filter(|b| **b == b'\n').count();
        if let Some(last) = bytes.last() {
            self.last_was_break = *last == b'\n';
        }
    }

    /// The 1-based line on which the record just read started, when it holds `inside` line
    /// breaks within quoted cells. The parser has consumed the record and its terminator.
    fn start_of_record(&self, inside: usize) -> usize {
        1 + self.breaks - inside - usize::from(self.last_was_break)
    }
}

/// The byte order mark Excel writes at the start of a UTF-8 CSV.
const UTF_8_BOM: &[u8] = &[0xEF, 0xBB, 0xBF];

/// UTF-8 when the bytes are valid UTF-8 (after a BOM, if any), otherwise GB18030, whose
/// decoder also reads GBK and GB2312.
fn detect_encoding(head: &[u8]) -> &'static Encoding {
    if head.starts_with(UTF_8_BOM) {
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
