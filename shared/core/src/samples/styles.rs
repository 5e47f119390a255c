//! Writing generated sheets the ways offices send them: Chinese headers and labels, a title
//! row, XLSX date cells or three date styles in CSV, UTF-8 or GBK.

use super::synth::{Datum, Sheet};
use crate::datasets::{Choice, Dataset, Kind};

/// How a file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// UTF-8 CSV with a BOM, Chinese headers and labels, dates as 2023/6/5.
    CsvUtf8,
    /// GBK CSV as WPS saves it, Chinese headers, dates as 2023年6月5日.
    CsvGbk,
    /// UTF-8 CSV, English headers and codes, ISO dates.
    CsvEnglish,
    /// XLSX with a title row above the headers and date cells.
    Xlsx,
}

fn label(kind: &Kind, code: &str) -> String {
    kind.choices()
        .iter()
        .find(|c: &&Choice| c.code == code)
        .map_or(code, |c| c.zh)
        .to_string()
}

fn text_of(kind: &Kind, datum: &Datum, style: Style) -> String {
    let english = style == Style::CsvEnglish;
    match datum {
        Datum::Blank => String::new(),
        Datum::Text(s) => s.clone(),
        Datum::Bool(b) => match (english, b) {
            (true, true) => "true".into(),
            (true, false) => "false".into(),
            (false, true) => "是".into(),
            (false, false) => "否".into(),
        },
        Datum::Choice(c) if english => (*c).to_string(),
        Datum::Choice(c) => label(kind, c),
        Datum::Choices(cs) if english => cs.join(";"),
        Datum::Choices(cs) => cs
            .iter()
            .map(|c| label(kind, c))
            .collect::<Vec<_>>()
            .join("、"),
        Datum::Date(d) => match style {
            Style::CsvGbk => d.format("%Y年%-m月%-d日").to_string(),
            Style::CsvUtf8 => d.format("%Y/%-m/%-d").to_string(),
            _ => d.format("%Y-%m-%d").to_string(),
        },
        Datum::Int(n) => n.to_string(),
        Datum::Cents(c) if c % 100 == 0 => (c / 100).to_string(),
        Datum::Cents(c) => format!("{}.{:02}", c / 100, c % 100),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    #[error("xlsx: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
}

/// The bytes of the file a county office would send.
pub fn write(sheet: &Sheet, style: Style, title: &str) -> Result<Vec<u8>, WriteError> {
    if style == Style::Xlsx {
        return write_xlsx(sheet, title);
    }
    let mut out = Vec::new();
    write_csv(sheet.dataset, sheet.rows.iter().cloned(), style, &mut out)?;
    Ok(match style {
        Style::CsvGbk => {
            let text = String::from_utf8(out).expect("csv of strings is UTF-8");
            encoding_rs::GBK.encode(&text).0.into_owned()
        }
        Style::CsvUtf8 => [&[0xEF, 0xBB, 0xBF][..], &out].concat(),
        _ => out,
    })
}

/// Writes rows as UTF-8 CSV in a style's headers and value forms, one row at a time.
pub fn write_csv(
    dataset: &Dataset,
    rows: impl Iterator<Item = Vec<Datum>>,
    style: Style,
    out: impl std::io::Write,
) -> Result<(), WriteError> {
    let fields = dataset.fields;
    let mut csv = csv::Writer::from_writer(out);
    let header: Vec<&str> = fields
        .iter()
        .map(|f| {
            if style == Style::CsvEnglish {
                f.name
            } else {
                f.zh
            }
        })
        .collect();
    csv.write_record(&header)?;
    for row in rows {
        csv.write_record(
            fields
                .iter()
                .zip(&row)
                .map(|(f, d)| text_of(&f.kind, d, style)),
        )?;
    }
    csv.flush().map_err(csv::Error::from)?;
    Ok(())
}

fn write_xlsx(sheet: &Sheet, title: &str) -> Result<Vec<u8>, WriteError> {
    use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook};
    let fields = sheet.dataset.fields;
    let mut book = Workbook::new();
    // A fixed creation time keeps the generated files byte-for-byte reproducible.
    book.set_properties(
        &DocProperties::new().set_creation_datetime(&ExcelDateTime::from_ymd(2024, 1, 10)?),
    );
    let ws = book.add_worksheet();
    ws.set_name(sheet.dataset.zh)?;
    let bold = Format::new().set_bold();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    ws.merge_range(0, 0, 0, (fields.len() - 1) as u16, title, &bold)?;
    for (c, f) in fields.iter().enumerate() {
        ws.write_string_with_format(1, c as u16, f.zh, &bold)?;
    }
    for (r, row) in sheet.rows.iter().enumerate() {
        let r = r as u32 + 2;
        for (c, (f, d)) in fields.iter().zip(row).enumerate() {
            let c = c as u16;
            match d {
                Datum::Blank => {}
                Datum::Date(d) => {
                    let excel = ExcelDateTime::from_ymd(
                        d.format("%Y").to_string().parse().unwrap_or(1900),
                        d.format("%m").to_string().parse().unwrap_or(1),
                        d.format("%d").to_string().parse().unwrap_or(1),
                    )?;
                    ws.write_datetime_with_format(r, c, &excel, &date)?;
                }
                Datum::Int(n) => {
                    ws.write_number(r, c, *n as f64)?;
                }
                Datum::Cents(n) => {
                    ws.write_number(r, c, *n as f64 / 100.0)?;
                }
                other => {
                    ws.write_string(r, c, text_of(&f.kind, other, Style::Xlsx))?;
                }
            }
        }
    }
    Ok(book.save_to_buffer()?)
}
