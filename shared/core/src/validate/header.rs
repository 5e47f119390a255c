//! Finding the header row and matching its labels to the dataset's fields.

use crate::datasets::Dataset;
use crate::findings::{At, Findings, Problem};
use crate::sheets::Cell;

/// How many rows at the top of a sheet may hold titles, units or notes before the header.
pub const SEARCH_ROWS: usize = crate::datasets::limits::TITLE_ROWS;

/// Folds the ways people write the same label: full-width letters and digits, spaces,
/// required-markers, case, `_`/`-`, and a trailing unit in brackets (`面积（平方米）`).
pub fn normalize_label(label: &str) -> String {
    let mut s: String = label
        .chars()
        .map(to_half_width)
        .filter(|c| !c.is_whitespace() && !matches!(c, '*' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect();
    if s.ends_with(')')
        && let Some(open) = s.rfind('(')
        && open > 0
    {
        s.truncate(open);
    }
    s
}

/// Full-width ASCII forms (Ａ, １, （) to their ASCII counterparts; the ideographic space to
/// a space.
pub fn to_half_width(c: char) -> char {
    match c {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// Where each field sits in the sheet.
#[derive(Debug, Clone)]
pub struct Columns {
    /// The header's row number.
    pub row: usize,
    /// For each field of the dataset, its column index.
    pub index: Vec<Option<usize>>,
    /// For each field, the header as the submitter wrote it (or the template's when missing).
    pub label: Vec<String>,
}

fn matches_field(dataset: &Dataset, label: &str) -> Option<usize> {
    let n = normalize_label(label);
    if n.is_empty() {
        return None;
    }
    dataset
        .fields
        .iter()
        .position(|f| normalize_label(f.zh) == n || normalize_label(f.name) == n)
}

fn score(dataset: &Dataset, cells: &[Cell]) -> usize {
    cells
        .iter()
        .filter_map(|c| match c {
            Cell::Text(s) => matches_field(dataset, s),
            _ => None,
        })
        .count()
}

/// Picks the header among the first rows: the one naming most fields, at least two.
pub fn find(dataset: &Dataset, rows: &[(usize, Vec<Cell>)]) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, (_, cells)) in rows.iter().enumerate() {
        let s = score(dataset, cells);
        if s >= 2 && best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best.map(|(i, _)| i)
}

/// Maps a header row to fields, reporting missing, duplicate and unknown columns.
pub fn map(dataset: &Dataset, row: usize, cells: &[Cell], findings: &mut Findings) -> Columns {
    let mut index = vec![None; dataset.fields.len()];
    let mut label: Vec<String> = dataset.fields.iter().map(|f| f.zh.to_string()).collect();
    for (col, cell) in cells.iter().enumerate() {
        let text = cell.to_text();
        let written = text.trim();
        if written.is_empty() {
            continue;
        }
        let at = At {
            row: Some(row),
            column: Some(written),
            ..At::default()
        };
        match matches_field(dataset, written) {
            Some(f) if index[f].is_some() => findings.add(
                Problem::DuplicateColumn,
                At {
                    field: Some(dataset.fields[f].name),
                    ..at
                },
            ),
            Some(f) => {
                index[f] = Some(col);
                label[f] = written.to_string();
            }
            None => findings.add(Problem::UnknownColumn, at),
        }
    }
    for (f, field) in dataset.fields.iter().enumerate() {
        if field.required && index[f].is_none() {
            findings.add(
                Problem::MissingColumn,
                At {
                    row: Some(row),
                    column: Some(field.zh),
                    field: Some(field.name),
                    ..At::default()
                },
            );
        }
    }
    Columns { row, index, label }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::OUTLETS;

    fn text_row(labels: &[&str]) -> Vec<Cell<'static>> {
        labels
            .iter()
            .map(|s| Cell::Text(s.to_string().into()))
            .collect()
    }

    #[test]
    fn labels_fold_width_space_case_and_units() {
        assert_eq!(normalize_label(" 面积（平方米） "), normalize_label("面积"));
        assert_eq!(normalize_label("Ｏｕｔｌｅｔ＿ＩＤ"), "outletid");
        assert_eq!(normalize_label("*网点 编号"), "网点编号");
        assert_eq!(
            normalize_label("credit_code"),
            normalize_label("Credit Code")
        );
    }

    #[test]
    fn header_below_a_title_is_found() {
        let rows = vec![
            (1, text_row(&["兴安盟社区家政服务网点统计表"])),
            (2, text_row(&["单位：个、平方米、元"])),
            (3, text_row(&["网点编号", "所在社区代码", "进驻方式"])),
            (4, text_row(&["A-1", "152201001001", "独营"])),
        ];
        assert_eq!(find(&OUTLETS, &rows), Some(2));
        let mut findings = Findings::default();
        let cols = map(&OUTLETS, 3, &rows[2].1, &mut findings);
        assert_eq!(cols.index[0], Some(0));
        assert_eq!(cols.index[2], Some(1));
        // The eight other required columns are missing.
        assert_eq!(findings.summary.by_code["missing_column"], 8);
    }

    #[test]
    fn unknown_and_duplicate_columns() {
        let mut findings = Findings::default();
        map(
            &OUTLETS,
            1,
            &text_row(&["outlet_id", "网点编号", "备注"]),
            &mut findings,
        );
        assert_eq!(findings.summary.by_code["duplicate_column"], 1);
        assert_eq!(findings.summary.by_code["unknown_column"], 1);
    }
}
