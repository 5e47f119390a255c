//! Blank templates for submitters, generated from the dataset declarations: the headers the
//! reader matches, a notes sheet describing every field, and drop-down lists for enumerations
//! so that a value typed in Excel or WPS is already a valid one.

use rust_xlsxwriter::{DataValidation, Format, Workbook, XlsxError};

use crate::datasets::{Dataset, Field, Kind};

/// Rows that get drop-downs and cell formats.
const TEMPLATE_ROWS: u32 = 10_000;

/// How a field's kind is explained to a submitter.
fn kind_zh(field: &Field) -> String {
    match field.kind {
        Kind::Text { max_chars } => format!("文本，最多 {max_chars} 字"),
        Kind::CreditCode => "18 位统一社会信用代码".into(),
        Kind::CountyCode => "6 位旗县市区代码".into(),
        Kind::CommunityCode => "12 位社区（居委会）代码".into(),
        Kind::Bool => "是 / 否".into(),
        Kind::Enum { .. } => "单选".into(),
        Kind::EnumList { .. } => "多选，用“、”或“;”分隔".into(),
        Kind::Date => "日期，如 2023-06-30".into(),
        Kind::Count { min } => format!("整数，不小于 {min}"),
        Kind::Amount => "数字，最多两位小数".into(),
        Kind::IdNumber => "18 位身份证号".into(),
    }
}

fn choices_zh(field: &Field) -> String {
    field
        .kind
        .choices()
        .iter()
        .map(|c| c.zh)
        .collect::<Vec<_>>()
        .join("、")
}

/// The CSV template: a UTF-8 BOM (so Excel shows the Chinese) and the header row.
pub fn csv(dataset: &Dataset) -> Vec<u8> {
    let header: Vec<&str> = dataset.fields.iter().map(|f| f.zh).collect();
    format!("\u{feff}{}\r\n", header.join(",")).into_bytes()
}

/// The XLSX template: the data sheet, named after the dataset, and a notes sheet.
pub fn xlsx(dataset: &Dataset) -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    let header = Format::new().set_bold().set_background_color("#DDEBF7");
    let required = Format::new().set_bold().set_background_color("#FCE4D6");
    let text = Format::new().set_num_format("@");
    let date = Format::new().set_num_format("yyyy-mm-dd");

    let sheet = book.add_worksheet();
    sheet.set_name(dataset.zh)?;
    sheet.set_freeze_panes(1, 0)?;
    for (col, field) in dataset.fields.iter().enumerate() {
        let col = col as u16;
        let format = if field.required { &required } else { &header };
        sheet.write_string_with_format(0, col, field.zh, format)?;
        sheet.set_column_width(col, (field.zh.chars().count() as f64 * 2.2).max(12.0))?;
        match field.kind {
            Kind::Date => {
                sheet.set_column_format(col, &date)?;
            }
            // Codes stay text, so Excel neither drops leading zeros nor rounds 18 digits.
            Kind::CreditCode
            | Kind::CountyCode
            | Kind::CommunityCode
            | Kind::IdNumber
            | Kind::Text { .. } => {
                sheet.set_column_format(col, &text)?;
            }
            _ => {}
        }
        let list: Vec<&str> = match field.kind {
            Kind::Bool => vec!["是", "否"],
            Kind::Enum { choices } => choices.iter().map(|c| c.zh).collect(),
            _ => continue,
        };
        let validation = DataValidation::new()
            .allow_list_strings(&list)?
            .set_input_message(field.doc_zh)?
            .set_error_message(format!("请从下拉列表中选择：{}", list.join("、")))?;
        sheet.add_data_validation(1, col, TEMPLATE_ROWS, col, &validation)?;
    }

    let notes = book.add_worksheet();
    notes.set_name("填表说明")?;
    let columns = [
        "列名",
        "英文列名",
        "是否必填",
        "类型",
        "可选值",
        "说明",
        "Description",
    ];
    for (col, title) in columns.iter().enumerate() {
        notes.write_string_with_format(0, col as u16, *title, &header)?;
    }
    for (row, field) in dataset.fields.iter().enumerate() {
        let row = row as u32 + 1;
        let cells = [
            field.zh.to_string(),
            field.name.to_string(),
            if field.required { "必填" } else { "选填" }.to_string(),
            kind_zh(field),
            choices_zh(field),
            field.doc_zh.to_string(),
            field.doc_en.to_string(),
        ];
        for (col, value) in cells.iter().enumerate() {
            notes.write_string(row, col as u16, value)?;
        }
    }
    let general = dataset.fields.len() as u32 + 2;
    notes.write_string(
        general,
        0,
        "在第一个工作表填写数据，每行一条；表头行之上可以有标题行。文件也可另存为 CSV（UTF-8 或 GBK）上传。",
    )?;
    notes.set_column_width(0, 24)?;
    notes.set_column_width(5, 48)?;
    notes.set_column_width(6, 48)?;
    book.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read};

    use calamine::{Data, Reader, Xlsx};

    use super::*;
    use crate::datasets::{ALL, OUTLETS};

    #[test]
    fn templates_carry_every_field_with_drop_downs() {
        for dataset in ALL {
            let bytes = xlsx(dataset).unwrap();
            let mut book = Xlsx::new(Cursor::new(bytes.clone())).unwrap();
            assert_eq!(book.sheet_names(), [dataset.zh, "填表说明"]);
            let range = book.worksheet_range(dataset.zh).unwrap();
            let header: Vec<String> = range
                .rows()
                .next()
                .unwrap()
                .iter()
                .map(Data::to_string)
                .collect();
            let declared: Vec<&str> = dataset.fields.iter().map(|f| f.zh).collect();
            assert_eq!(header, declared);
            let notes = book.worksheet_range("填表说明").unwrap();
            assert_eq!(notes.rows().count(), dataset.fields.len() + 3);

            // Drop-downs live in the sheet XML as list validations.
            let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
            let mut xml = String::new();
            zip.by_name("xl/worksheets/sheet1.xml")
                .unwrap()
                .read_to_string(&mut xml)
                .unwrap();
            let lists = dataset
                .fields
                .iter()
                .filter(|f| matches!(f.kind, Kind::Bool | Kind::Enum { .. }))
                .count();
            assert_eq!(
                xml.matches("type=\"list\"").count(),
                lists,
                "{}",
                dataset.name
            );
        }
        let csv = String::from_utf8(csv(&OUTLETS)).unwrap();
        assert!(csv.starts_with("\u{feff}网点编号,运营企业统一社会信用代码,"));
    }
}
