//! Findings: the validation report a submitter gets back: every problem with the row and column as they
//! see them in Excel, a stable code and a message in Chinese and English.
//!
//! All problem codes and their messages live in [`Problem`]; nothing else spells them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::datasets::Dataset;
use crate::periods::Period;
use crate::plausibility::Finding;
use crate::sheets::Exceeded;

/// How many problems a report lists in full; the summary still counts every one.
pub const MAX_LISTED: usize = 1000;
/// Longest cell value a report repeats back.
const MAX_VALUE_CHARS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Rejects the whole file.
    Error,
    /// Reported, but the file is still accepted.
    Warning,
}

/// Everything that can be wrong with a file, a row or a cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    UnreadableFile(String),
    LegacyXls,
    Limit(Exceeded),
    IdNumberOutOfPlace,
    EmptyFile,
    NoHeader,
    MissingColumn,
    DuplicateColumn,
    UnknownColumn,
    Required,
    TooLong { max: usize },
    InvalidBool,
    InvalidChoice { allowed: String },
    InvalidDate,
    DateAfterPeriod { end: String },
    InvalidNumber,
    BelowMinimum { min: i64 },
    InvalidAmount,
    CreditCodeFormat,
    CreditCodeChecksum,
    RegionCodeFormat { digits: usize },
    UnknownRegion,
    OutsideRegion { region: String },
    NotCommunity,
    IdNumberFormat,
    IdNumberChecksum,
    DuplicateKey { first_row: usize },
    SumExceedsTotal { parts: String, total: String },
    UnknownEnterprise,
    NoEnterprisesYet,
    NilReturn,
    // A plausibility rule's finding: valid, but worth a statistician's look.
    Implausible(Box<Finding>),
}

impl Problem {
    /// The stable code clients and tests match on.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::UnreadableFile(_) => "unreadable_file",
            Problem::LegacyXls => "legacy_xls",
            Problem::Limit(limit) => match limit {
                Exceeded::Rows { .. } => "too_many_rows",
                Exceeded::Columns { .. } => "too_many_columns",
                Exceeded::Cell { .. } => "cell_too_long",
                Exceeded::Row { .. } => "row_too_long",
                Exceeded::File { .. } => "file_too_large",
                Exceeded::Unpacked { .. } | Exceeded::Parts { .. } | Exceeded::Strings { .. } => {
                    "workbook_too_large"
                }
                Exceeded::Ratio { .. } => "workbook_compression",
                Exceeded::Doctype => "workbook_markup",
            },
            Problem::IdNumberOutOfPlace => "id_number_out_of_place",
            Problem::EmptyFile => "empty_file",
            Problem::NoHeader => "no_header",
            Problem::MissingColumn => "missing_column",
            Problem::DuplicateColumn => "duplicate_column",
            Problem::UnknownColumn => "unknown_column",
            Problem::Required => "required",
            Problem::TooLong { .. } => "too_long",
            Problem::InvalidBool => "invalid_bool",
            Problem::InvalidChoice { .. } => "invalid_choice",
            Problem::InvalidDate => "invalid_date",
            Problem::DateAfterPeriod { .. } => "date_after_period",
            Problem::InvalidNumber => "invalid_number",
            Problem::BelowMinimum { .. } => "below_minimum",
            Problem::InvalidAmount => "invalid_amount",
            Problem::CreditCodeFormat => "credit_code_format",
            Problem::CreditCodeChecksum => "credit_code_checksum",
            Problem::RegionCodeFormat { .. } => "region_code_format",
            Problem::UnknownRegion => "unknown_region",
            Problem::OutsideRegion { .. } => "outside_region",
            Problem::NotCommunity => "not_community",
            Problem::IdNumberFormat => "id_number_format",
            Problem::IdNumberChecksum => "id_number_checksum",
            Problem::DuplicateKey { .. } => "duplicate_key",
            Problem::SumExceedsTotal { .. } => "sum_exceeds_total",
            Problem::UnknownEnterprise => "unknown_enterprise",
            Problem::NoEnterprisesYet => "no_enterprises_yet",
            Problem::NilReturn => "nil_return",
            Problem::Implausible(finding) => finding.rule.code,
        }
    }

    pub fn severity(&self) -> Severity {
        match self {
            Problem::UnknownColumn
            | Problem::UnknownEnterprise
            | Problem::NoEnterprisesYet
            | Problem::NilReturn
            | Problem::Implausible(_) => Severity::Warning,
            _ => Severity::Error,
        }
    }

    pub fn message_zh(&self) -> String {
        match self {
            Problem::UnreadableFile(why) => {
                format!("无法读取文件，请另存为 CSV 或 XLSX 后重新上传（{why}）")
            }
            Problem::LegacyXls => {
                "不接受旧版 Excel（.xls）文件，请在 Excel 中另存为 .xlsx 或 CSV 后重新上传".into()
            }
            Problem::Limit(limit) => format!("文件超出本数据集的上限：{}", limit_zh(limit)),
            Problem::IdNumberOutOfPlace => {
                "该单元格含有身份证号；身份证号只能填在“身份证号”列".into()
            }
            Problem::EmptyFile => "文件中没有数据行".into(),
            Problem::NoHeader => "前 20 行中找不到表头，请使用模板的中文表头".into(),
            Problem::MissingColumn => "缺少必填列".into(),
            Problem::DuplicateColumn => "该列重复出现".into(),
            Problem::UnknownColumn => "无法识别的列，已忽略".into(),
            Problem::Required => "必填项为空".into(),
            Problem::TooLong { max } => format!("内容过长，最多 {max} 个字符"),
            Problem::InvalidBool => "请填写“是”或“否”".into(),
            Problem::InvalidChoice { allowed } => format!("不是允许的取值，可选：{allowed}"),
            Problem::InvalidDate => {
                "日期无法识别，请写成 2023-06-30、2023/6/30 或 2023年6月30日".into()
            }
            Problem::DateAfterPeriod { end } => format!("日期晚于报告期末（{end}）"),
            Problem::InvalidNumber => "应为整数".into(),
            Problem::BelowMinimum { min } => format!("不能小于 {min}"),
            Problem::InvalidAmount => "应为不小于 0 的数字，最多两位小数".into(),
            Problem::CreditCodeFormat => {
                "统一社会信用代码应为 18 位数字或大写字母（不含 I、O、S、V、Z）".into()
            }
            Problem::CreditCodeChecksum => "统一社会信用代码校验位不正确，请核对".into(),
            Problem::RegionCodeFormat { digits } => format!("区划代码应为 {digits} 位数字"),
            Problem::UnknownRegion => "区划代码不存在（统计用区划代码 2023）".into(),
            Problem::OutsideRegion { region } => format!("该代码不在报送地区（{region}）范围内"),
            Problem::NotCommunity => {
                "该代码是村民委员会，不是社区（居委会代码末三位为 001–199）".into()
            }
            Problem::IdNumberFormat => "身份证号应为 18 位，最后一位可为 X，出生日期须有效".into(),
            Problem::IdNumberChecksum => "身份证号校验位不正确".into(),
            Problem::DuplicateKey { first_row } => format!("与第 {first_row} 行重复"),
            Problem::SumExceedsTotal { parts, total } => format!("{parts} 合计超过{total}"),
            Problem::UnknownEnterprise => "该企业不在本期已报送的家政企业名单中".into(),
            Problem::NoEnterprisesYet => {
                "本期尚无已报送的家政企业名单，暂未核对企业代码；请先报送家政企业".into()
            }
            Problem::NilReturn => {
                "零报送：表头正确、没有数据行，已按“本期无此项数据”接收，并替换此前报送的数据"
                    .into()
            }
            Problem::Implausible(finding) => finding.rule.message_zh(),
        }
    }

    /// What a value was compared with, for the findings that compare.
    pub fn comparison(&self) -> Option<String> {
        match self {
            Problem::Implausible(finding) => Some(finding.comparison.clone()),
            _ => None,
        }
    }

    pub fn message_en(&self) -> String {
        match self {
            Problem::UnreadableFile(why) => {
                format!("The file cannot be read; save it as CSV or XLSX and upload again ({why})")
            }
            Problem::LegacyXls => "Legacy Excel (.xls) files are not accepted; save the file as .xlsx or CSV in Excel and upload again".into(),
            Problem::Limit(limit) => {
                format!("The file goes past this dataset's limit: {limit}")
            }
            Problem::IdNumberOutOfPlace => "This cell holds an ID number; ID numbers belong only in the ID number column".into(),
            Problem::EmptyFile => "The file has no data rows".into(),
            Problem::NoHeader => {
                "No header row among the first 20 rows; use the template's headers".into()
            }
            Problem::MissingColumn => "A required column is missing".into(),
            Problem::DuplicateColumn => "This column appears twice".into(),
            Problem::UnknownColumn => "Unrecognised column, ignored".into(),
            Problem::Required => "A required value is empty".into(),
            Problem::TooLong { max } => format!("Too long: at most {max} characters"),
            Problem::InvalidBool => "Write 是 or 否 (yes or no)".into(),
            Problem::InvalidChoice { allowed } => {
                format!("Not an allowed value; choose one of: {allowed}")
            }
            Problem::InvalidDate => {
                "Unrecognised date; write 2023-06-30, 2023/6/30 or 2023年6月30日".into()
            }
            Problem::DateAfterPeriod { end } => format!("Date after the end of the period ({end})"),
            Problem::InvalidNumber => "Must be a whole number".into(),
            Problem::BelowMinimum { min } => format!("Must be at least {min}"),
            Problem::InvalidAmount => {
                "Must be a number of at least 0 with at most two decimals".into()
            }
            Problem::CreditCodeFormat => {
                "A credit code is 18 digits or capital letters (no I, O, S, V, Z)".into()
            }
            Problem::CreditCodeChecksum => {
                "Wrong check character in the unified social credit code".into()
            }
            Problem::RegionCodeFormat { digits } => {
                format!("A region code here has {digits} digits")
            }
            Problem::UnknownRegion => "No such region code (NBS division codes 2023)".into(),
            Problem::OutsideRegion { region } => {
                format!("The code lies outside the submitting region ({region})")
            }
            Problem::NotCommunity => {
                "A villagers' committee, not a community (community codes end in 001–199)".into()
            }
            Problem::IdNumberFormat => {
                "An ID number has 18 characters, the last may be X, with a valid birth date".into()
            }
            Problem::IdNumberChecksum => "Wrong check character in the ID number".into(),
            Problem::DuplicateKey { first_row } => format!("Duplicate of row {first_row}"),
            Problem::SumExceedsTotal { parts, total } => {
                format!("The sum of {parts} exceeds {total}")
            }
            Problem::UnknownEnterprise => {
                "This enterprise is not among the enterprises reported for the period".into()
            }
            Problem::NoEnterprisesYet => "No enterprises are reported for the period yet, so credit codes were not cross-checked; submit the enterprises first".into(),
            Problem::NilReturn => "Nil return: the template's header and no data rows, accepted as \"none this period\"; it replaces any earlier file".into(),
            Problem::Implausible(finding) => finding.rule.message_en(),
        }
    }
}

/// A limit in Chinese, as [`Exceeded`] says it in English.
fn limit_zh(limit: &Exceeded) -> String {
    match limit {
        Exceeded::Rows { max } => format!("数据行超过 {max} 行"),
        Exceeded::Columns { max } => format!("第 {max} 列之后还有内容"),
        Exceeded::Cell { max } => format!("有单元格超过 {max} 字节"),
        Exceeded::Row { max } => format!("有一行超过 {max} 字节"),
        Exceeded::File { max } => format!("文件超过 {max} 字节"),
        Exceeded::Unpacked { max } => format!("工作簿解压后超过 {max} 字节"),
        Exceeded::Ratio { max } => format!("工作簿中有部件的压缩比超过 {max}:1"),
        Exceeded::Parts { max } => format!("工作簿部件超过 {max} 个"),
        Exceeded::Strings { max } => format!("共享字符串超过 {max} 个"),
        Exceeded::Doctype => "工作簿含有 DTD 或实体声明".into(),
    }
}

/// One problem as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Issue {
    /// Row number as the spreadsheet shows it (1-based, title rows included); absent for
    /// problems of the whole file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<usize>,
    /// The column header as the submitter wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// The canonical field name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// What a plausibility finding compared the value with: the previous period's value or
    /// count, the league's range, the other county.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<String>,
    pub code: String,
    pub severity: Severity,
    pub message_zh: String,
    pub message_en: String,
}

/// Where a problem was found.
#[derive(Debug, Clone, Default)]
pub struct At<'a> {
    pub row: Option<usize>,
    pub column: Option<&'a str>,
    pub field: Option<&'a str>,
    /// The value as shown back; callers mask personal data before it gets here.
    pub value: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Accepted,
    Rejected,
}

/// Counts of every problem, including those beyond the listed ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Summary {
    pub rows: u64,
    pub errors: u64,
    pub warnings: u64,
    pub by_code: BTreeMap<String, u64>,
    /// True when more problems exist than are listed.
    pub truncated: bool,
}

/// Collects problems while a file is read; bounded in memory however bad the file is.
#[derive(Debug, Default)]
pub struct Findings {
    pub summary: Summary,
    pub issues: Vec<Issue>,
}

impl Findings {
    pub fn add(&mut self, problem: Problem, at: At<'_>) {
        let severity = problem.severity();
        match severity {
            Severity::Error => self.summary.errors += 1,
            Severity::Warning => self.summary.warnings += 1,
        }
        *self
            .summary
            .by_code
            .entry(problem.code().to_string())
            .or_default() += 1;
        if self.issues.len() >= MAX_LISTED {
            self.summary.truncated = true;
            return;
        }
        // Whatever column a value came from, an ID number in it is masked here.
        let masked = |text: &str| crate::identifiers::mask_id_numbers(text).into_owned();
        self.issues.push(Issue {
            row: at.row,
            column: at.column.map(|c| shorten(&masked(c))),
            field: at.field.map(str::to_string),
            value: at.value.map(|v| shorten(&masked(v))),
            comparison: problem.comparison().map(|c| shorten(&masked(&c))),
            code: problem.code().to_string(),
            severity,
            message_zh: problem.message_zh(),
            message_en: problem.message_en(),
        });
    }

    pub fn has_errors(&self) -> bool {
        self.summary.errors > 0
    }

    /// Adds the findings of a later part of the file (a block of rows checked apart).
    pub fn absorb(&mut self, later: Findings) {
        let summary = &mut self.summary;
        summary.rows += later.summary.rows;
        summary.errors += later.summary.errors;
        summary.warnings += later.summary.warnings;
        for (code, n) in later.summary.by_code {
            *summary.by_code.entry(code).or_default() += n;
        }
        summary.truncated |= later.summary.truncated;
        let room = MAX_LISTED.saturating_sub(self.issues.len());
        if later.issues.len() > room {
            summary.truncated = true;
        }
        self.issues.extend(later.issues.into_iter().take(room));
    }
}

fn shorten(value: &str) -> String {
    if value.chars().count() <= MAX_VALUE_CHARS {
        value.to_string()
    } else {
        let mut s: String = value.chars().take(MAX_VALUE_CHARS).collect();
        s.push('…');
        s
    }
}

/// The report of one submission, stored beside it and returned by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Report {
    pub submission_id: String,
    #[serde(serialize_with = "crate::datasets::serialize_name")]
    #[schema(value_type = String, example = "outlets")]
    pub dataset: &'static Dataset,
    #[serde(deserialize_with = "crate::periods::stored")]
    #[schema(value_type = String, example = "2023H2")]
    pub period: Period,
    pub region: String,
    pub file_name: String,
    pub status: Status,
    /// Row number of the header row in the sheet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_row: Option<usize>,
    /// The dataset table version an accepted file's rows were committed at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_version: Option<i64>,
    pub summary: Summary,
    pub issues: Vec<Issue>,
}

impl Report {
    fn issue_cells(issue: &Issue) -> [String; 7] {
        [
            issue.row.map(|r| r.to_string()).unwrap_or_default(),
            issue.column.clone().unwrap_or_default(),
            issue.value.clone().unwrap_or_default(),
            issue.code.clone(),
            issue.message_zh.clone(),
            issue.message_en.clone(),
            issue.comparison.clone().unwrap_or_default(),
        ]
    }

    const HEADERS: [&'static str; 7] = [
        "行 Row",
        "列 Column",
        "值 Value",
        "代码 Code",
        "问题",
        "Problem",
        "对照 Compared with",
    ];

    /// The problems as a CSV a submitter opens in Excel next to their file (UTF-8 with BOM;
    /// values that look like formulas are prefixed with `'` so they never run).
    pub fn to_csv(&self) -> Vec<u8> {
        let mut out = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
        let mut write = || -> Result<(), csv::Error> {
            out.write_record(Self::HEADERS)?;
            for issue in &self.issues {
                out.write_record(
                    Self::issue_cells(issue).map(|v| crate::sheets::inert(&v).into_owned()),
                )?;
            }
            out.flush()?;
            Ok(())
        };
        // Writing into memory cannot fail.
        let _ = write();
        out.into_inner().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_is_bounded_but_counts_are_true() {
        let mut f = Findings::default();
        for row in 0..(MAX_LISTED + 500) {
            f.add(
                Problem::Required,
                At {
                    row: Some(row + 2),
                    ..At::default()
                },
            );
        }
        f.add(Problem::UnknownColumn, At::default());
        assert_eq!(f.issues.len(), MAX_LISTED);
        assert_eq!(f.summary.errors, (MAX_LISTED + 500) as u64);
        assert_eq!(f.summary.warnings, 1);
        assert_eq!(f.summary.by_code["required"], (MAX_LISTED + 500) as u64);
        assert!(f.summary.truncated);
    }

    #[test]
    fn long_values_are_cut() {
        let mut f = Findings::default();
        let long = "长".repeat(500);
        f.add(
            Problem::TooLong { max: 200 },
            At {
                value: Some(&long),
                ..At::default()
            },
        );
        assert_eq!(
            f.issues[0].value.as_ref().unwrap().chars().count(),
            MAX_VALUE_CHARS + 1
        );
    }

    #[test]
    fn the_csv_report_never_carries_a_formula() {
        let mut f = Findings::default();
        for value in ["=HYPERLINK(\"x\")", "\t=1+1", "\r@SUM(A1)", "-2", "普通"] {
            f.add(
                Problem::Required,
                At {
                    value: Some(value),
                    ..At::default()
                },
            );
        }
        let report = Report {
            submission_id: "s".into(),
            dataset: &crate::datasets::OUTLETS,
            period: "2023H2".parse().unwrap(),
            region: "152201".into(),
            file_name: "f.csv".into(),
            status: Status::Rejected,
            header_row: None,
            table_version: None,
            summary: f.summary,
            issues: f.issues,
        };
        let csv = report.to_csv();
        let mut reader = csv::Reader::from_reader(&csv[3..]);
        let values: Vec<String> = reader
            .records()
            .map(|r| r.unwrap()[2].to_string())
            .collect();
        assert_eq!(
            values,
            [
                "'=HYPERLINK(\"x\")",
                "'\t=1+1",
                "'\r@SUM(A1)",
                "'-2",
                "普通"
            ]
        );
    }
}
