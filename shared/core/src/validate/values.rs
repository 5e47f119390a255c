//! Reading one cell as the value its field declares, the many ways offices write it. Text is
//! borrowed from the cell whenever nothing needs folding, so a row costs no string per cell.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::NaiveDate;

use super::header::to_half_width;
use crate::datasets::{Choice, Kind};
use crate::findings::Problem;
use crate::identifiers::{self, CodeError};
use crate::privacy::Pseudonymizer;
use crate::regions::{Level, Region, RegionTree, is_community_code};
use crate::sheets::{Cell, excel_serial_date, format_number};

/// A checked value, ready for its Arrow column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Text(Cow<'a, str>),
    Bool(bool),
    Date(NaiveDate),
    Int(i64),
    /// Hundredths (cents, or 0.01 m²).
    Cents(i128),
    List(Vec<&'static str>),
    /// An ID number's keyed hash (the ID number itself goes no further than [`read`]); stored
    /// as its 32 bytes.
    Pseudonym([u8; 32]),
}

/// What a cell is checked against.
pub struct Scope<'a> {
    pub region: &'a Region,
    pub inside: &'a Inside<'a>,
    pub period_end: NaiveDate,
    /// Replaces ID numbers; a dataset with ID numbers is not checked without it.
    pub pseudonymizer: Option<&'a Pseudonymizer>,
}

/// The level of each unit inside the submitting region (itself included), by code: what the
/// region codes of a file's rows are looked up in — one hash lookup a cell, where a search of
/// the national tree compared a dozen codes.
pub type Inside<'a> = HashMap<&'a str, Level>;

pub fn inside<'a>(regions: &'a RegionTree, region: &'a Region) -> Inside<'a> {
    std::iter::once(region)
        .chain(regions.descendants(region))
        .map(|r| (r.prefix.as_str(), r.level))
        .collect()
}

/// Trimmed, inner whitespace removed, full-width letters and digits folded: how codes and
/// choices are compared. Borrowed when there is nothing to fold, as in most cells.
fn folded(text: &str) -> Cow<'_, str> {
    let text = text.trim();
    let plain = if text.is_ascii() {
        // ASCII is never full-width; its whitespace is the space and \t..=\r.
        !text.bytes().any(|b| matches!(b, b' ' | b'\t'..=b'\r'))
    } else {
        text.chars()
            .all(|c| !c.is_whitespace() && to_half_width(c) == c)
    };
    if plain {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(to_half_width)
            .filter(|c| !c.is_whitespace())
            .collect(),
    )
}

/// The cell as a code: [`folded`] text.
fn code_text<'c>(cell: &'c Cell<'_>) -> Cow<'c, str> {
    match cell {
        Cell::Text(text) => folded(text),
        other => Cow::Owned(folded(&other.text()).into_owned()),
    }
}

/// Codes are compared upper-cased; most are written so already.
fn upper(code: Cow<'_, str>) -> Cow<'_, str> {
    if code.bytes().any(|b| b.is_ascii_lowercase()) || !code.is_ascii() {
        Cow::Owned(code.to_uppercase())
    } else {
        code
    }
}

pub fn read<'c>(kind: &Kind, cell: &'c Cell<'_>, scope: &Scope<'_>) -> Result<Value<'c>, Problem> {
    match kind {
        Kind::Text { max_chars } => {
            let trim = |text: &str| text.trim_matches(|c: char| c.is_whitespace()).to_string();
            let text = match cell {
                Cell::Text(text) => Cow::Borrowed(text.trim_matches(|c: char| c.is_whitespace())),
                other => Cow::Owned(trim(&other.text())),
            };
            if text.chars().count() > *max_chars {
                return Err(Problem::TooLong { max: *max_chars });
            }
            Ok(Value::Text(text))
        }
        Kind::CreditCode => {
            let code = upper(code_text(cell));
            match identifiers::check_credit_code(&code) {
                Ok(()) => Ok(Value::Text(code)),
                Err(CodeError::Format) => Err(Problem::CreditCodeFormat),
                Err(CodeError::Checksum) => Err(Problem::CreditCodeChecksum),
            }
        }
        Kind::CountyCode => region_code(cell, Level::County, scope),
        Kind::CommunityCode => region_code(cell, Level::Village, scope),
        Kind::Bool => read_bool(cell).map(Value::Bool).ok_or(Problem::InvalidBool),
        Kind::Enum { choices } => read_choice(&cell.text(), choices)
            .map(|c| Value::Text(Cow::Borrowed(c)))
            .ok_or_else(|| Problem::InvalidChoice {
                allowed: allowed(choices),
            }),
        Kind::EnumList { choices } => {
            let text = cell.text();
            let mut codes: Vec<&'static str> = Vec::new();
            for part in text.split([';', '；', '、', ',', '，', '/', '\n']) {
                if part.trim().is_empty() {
                    continue;
                }
                let code = read_choice(part, choices).ok_or_else(|| Problem::InvalidChoice {
                    allowed: allowed(choices),
                })?;
                if !codes.contains(&code) {
                    codes.push(code);
                }
            }
            Ok(Value::List(codes))
        }
        Kind::Date => {
            let date = read_date(cell).ok_or(Problem::InvalidDate)?;
            if date > scope.period_end {
                return Err(Problem::DateAfterPeriod {
                    end: scope.period_end.to_string(),
                });
            }
            Ok(Value::Date(date))
        }
        Kind::Count { min } => {
            let n = read_integer(cell).ok_or(Problem::InvalidNumber)?;
            if n < *min {
                return Err(Problem::BelowMinimum { min: *min });
            }
            Ok(Value::Int(n))
        }
        Kind::Amount => read_cents(cell)
            .map(Value::Cents)
            .ok_or(Problem::InvalidAmount),
        Kind::IdNumber => {
            let id = upper(code_text(cell));
            match identifiers::check_id_number(&id) {
                // The validator refuses a dataset with ID numbers when there is no key.
                Ok(()) => Ok(scope
                    .pseudonymizer
                    .map_or(Value::Null, |p| Value::Pseudonym(p.digest(&id)))),
                Err(CodeError::Format) => Err(Problem::IdNumberFormat),
                Err(CodeError::Checksum) => Err(Problem::IdNumberChecksum),
            }
        }
    }
}

fn allowed(choices: &[Choice]) -> String {
    choices
        .iter()
        .map(|c| format!("{}({})", c.zh, c.code))
        .collect::<Vec<_>>()
        .join("、")
}

fn region_code<'c>(
    cell: &'c Cell<'_>,
    level: Level,
    scope: &Scope<'_>,
) -> Result<Value<'c>, Problem> {
    let code = code_text(cell);
    let digits = level.digits();
    if code.len() != digits || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::RegionCodeFormat { digits });
    }
    if !scope.region.contains(&code) {
        return Err(Problem::OutsideRegion {
            region: format!("{} {}", scope.region.code(), scope.region.name),
        });
    }
    if scope.inside.get(&*code) != Some(&level) {
        return Err(Problem::UnknownRegion);
    }
    if level == Level::Village && !is_community_code(&code) {
        return Err(Problem::NotCommunity);
    }
    Ok(Value::Text(code))
}

pub fn read_bool(cell: &Cell) -> Option<bool> {
    match cell {
        Cell::Bool(b) => Some(*b),
        Cell::Number(n) if *n == 1.0 => Some(true),
        Cell::Number(n) if *n == 0.0 => Some(false),
        _ => {
            let text = code_text(cell);
            let said = |words: [&str; 7]| words.iter().any(|w| w.eq_ignore_ascii_case(&text));
            if said(["是", "y", "yes", "true", "1", "√", "有"]) {
                Some(true)
            } else if said(["否", "n", "no", "false", "0", "×", "无"]) {
                Some(false)
            } else {
                None
            }
        }
    }
}

fn read_choice(text: &str, choices: &[Choice]) -> Option<&'static str> {
    let folded = folded(text);
    choices
        .iter()
        .find(|c| c.zh == folded || c.code.eq_ignore_ascii_case(&folded))
        .map(|c| c.code)
}

/// Dates as `2023-06-30`, `2023/6/30`, `2023.6.30`, `2023年6月30日`, a spreadsheet date
/// cell, or an Excel serial number (also when stored as text).
pub fn read_date(cell: &Cell) -> Option<NaiveDate> {
    match cell {
        Cell::Date(d) => Some(*d),
        Cell::Number(n) => excel_serial_date(*n).filter(|_| n.fract() == 0.0),
        _ => {
            let text: String = cell.to_text().trim().chars().map(to_half_width).collect();
            // A date-time written as text: keep the date part.
            let text = text.split(['T', ' ']).next().unwrap_or_default();
            for format in ["%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日"] {
                if let Ok(d) = NaiveDate::parse_from_str(text, format) {
                    return Some(d);
                }
            }
            if text.len() == 5 && text.bytes().all(|b| b.is_ascii_digit()) {
                return excel_serial_date(text.parse().ok()?);
            }
            None
        }
    }
}

/// Strips thousands separators and a trailing unit people type (`1,234`, `１２３`, `3 人`).
fn numeric_text(cell: &Cell) -> String {
    code_text(cell)
        .chars()
        .filter(|c| !matches!(c, ',' | '，' | '¥' | '￥'))
        .collect::<String>()
        .trim_end_matches(['元', '人', '个', '次', '时'])
        .to_string()
}

pub fn read_integer(cell: &Cell) -> Option<i64> {
    match cell {
        Cell::Number(n) if n.fract() == 0.0 && n.abs() < 9e15 => Some(*n as i64),
        Cell::Number(_) => None,
        _ => {
            let text = numeric_text(cell);
            text.parse::<i64>().ok().or_else(|| {
                // "12.0" as Excel sometimes exports whole numbers.
                let (whole, frac) = text.split_once('.')?;
                (frac.bytes().all(|b| b == b'0')).then(|| whole.parse().ok())?
            })
        }
    }
}

/// A non-negative amount with at most two decimals, exactly, in hundredths.
pub fn read_cents(cell: &Cell) -> Option<i128> {
    let text = match cell {
        Cell::Number(n) => {
            let cents = (n * 100.0).round();
            if *n < 0.0 || (n * 100.0 - cents).abs() > 1e-6 || cents > 1e17 {
                return None;
            }
            return Some(cents as i128);
        }
        Cell::Text(_) => numeric_text(cell),
        _ => return None,
    };
    let text = text.trim_end_matches('元');
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || whole.len() > 15
        || frac.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i128 = whole.parse().ok()?;
    let frac: i128 = format!("{frac:0<2}").parse().ok()?;
    Some(whole * 100 + frac)
}

/// Whether a cell holds an ID number anywhere in its text (a number cell as it prints).
pub fn holds_id_number(cell: &Cell) -> bool {
    match cell {
        Cell::Text(text) => !identifiers::find_id_numbers(text).is_empty(),
        Cell::Number(n) => !identifiers::find_id_numbers(&format_number(*n)).is_empty(),
        _ => false,
    }
}

/// What the report shows of a cell: never a raw ID number.
pub fn shown(kind: &Kind, cell: &Cell) -> String {
    match kind {
        Kind::IdNumber => identifiers::mask_id_number(&code_text(cell)),
        _ => match cell {
            Cell::Number(n) => format_number(*n),
            other => other.to_text(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::{MODES, SERVICES};
    use crate::regions::Prefix;

    fn t(s: &str) -> Cell<'static> {
        Cell::Text(s.to_string().into())
    }

    proptest::proptest! {
        /// The borrowed shortcut folds exactly as folding every character does.
        #[test]
        fn folding_borrows_only_what_needs_no_folding(text in "[ \t\u{b}\r\na-zA-Z0-9Ａ１　，网]{0,12}") {
            let every: String = text
                .trim()
                .chars()
                .map(to_half_width)
                .filter(|c| !c.is_whitespace())
                .collect();
            proptest::prop_assert_eq!(folded(&text), every);
        }
    }

    #[test]
    fn booleans() {
        for yes in [
            t("是"),
            t("Y"),
            t("true"),
            t(" 1 "),
            Cell::Bool(true),
            Cell::Number(1.0),
        ] {
            assert_eq!(read_bool(&yes), Some(true), "{yes:?}");
        }
        for no in [t("否"), t("n"), t("FALSE"), t("0")] {
            assert_eq!(read_bool(&no), Some(false));
        }
        assert_eq!(read_bool(&t("maybe")), None);
    }

    #[test]
    fn dates_in_every_style() {
        let d = NaiveDate::from_ymd_opt(2023, 6, 5);
        for cell in [
            t("2023-06-05"),
            t("2023/6/5"),
            t("2023年6月5日"),
            t("2023.6.5"),
            t("45082"),
            Cell::Number(45082.0),
            Cell::Date(d.unwrap()),
            t("2023-06-05 00:00:00"),
        ] {
            assert_eq!(read_date(&cell), d, "{cell:?}");
        }
        assert_eq!(read_date(&t("2023-13-01")), None);
        assert_eq!(read_date(&t("六月")), None);
    }

    #[test]
    fn numbers_and_amounts() {
        assert_eq!(read_integer(&t("1,234")), Some(1234));
        assert_eq!(read_integer(&t("１２")), Some(12));
        assert_eq!(read_integer(&t("12.0")), Some(12));
        assert_eq!(read_integer(&Cell::Number(7.0)), Some(7));
        assert_eq!(read_integer(&Cell::Number(7.5)), None);
        assert_eq!(read_integer(&t("7.5")), None);
        assert_eq!(read_cents(&t("1,234.5")), Some(123_450));
        assert_eq!(read_cents(&t("¥20000元")), Some(2_000_000));
        assert_eq!(read_cents(&Cell::Number(0.1 + 0.2)), Some(30));
        assert_eq!(read_cents(&t("1.234")), None);
        assert_eq!(read_cents(&t("-5")), None);
        assert_eq!(read_cents(&Cell::Number(-5.0)), None);
    }

    #[test]
    fn choices_by_label_or_code() {
        fn scope_free<'c>(k: &Kind, c: &'c Cell<'_>) -> Result<Value<'c>, Problem> {
            let inside = Inside::default();
            let region = Region {
                prefix: Prefix::COUNTRY,
                name: String::new(),
                level: Level::Country,
                communities: 0,
            };
            read(
                k,
                c,
                &Scope {
                    region: &region,
                    inside: &inside,
                    period_end: NaiveDate::from_ymd_opt(2023, 12, 31).unwrap(),
                    pseudonymizer: None,
                },
            )
        }
        let mode = Kind::Enum { choices: MODES };
        assert_eq!(
            scope_free(&mode, &t("嵌入")),
            Ok(Value::Text("embedded".into()))
        );
        assert_eq!(
            scope_free(&mode, &t("Online")),
            Ok(Value::Text("online".into()))
        );
        assert!(matches!(
            scope_free(&mode, &t("加盟")),
            Err(Problem::InvalidChoice { .. })
        ));
        let services = Kind::EnumList { choices: SERVICES };
        assert_eq!(
            scope_free(&services, &t("保洁、养老;meal，保洁")),
            Ok(Value::List(vec!["cleaning", "elderly_care", "meal"]))
        );
        assert_eq!(
            scope_free(&Kind::Date, &t("2024-01-01")),
            Err(Problem::DateAfterPeriod {
                end: "2023-12-31".into()
            })
        );
    }
}
