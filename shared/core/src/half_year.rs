//! The 半年报: what an office (a league, a county, a province) sends upward each half-year —
//! its indicators against their targets with reporting states and changes, the areas below
//! it, and the counties that have not reported — assembled once from the published snapshot
//! and the log, and written as a printable page (the web crate) or an XLSX workbook (here).

use rust_xlsxwriter::{Format, FormatAlign, Workbook, Worksheet, XlsxError};

use crate::compliance::{self, CountyStatus};
use crate::datasets;
use crate::indicators::snapshot::{Row, Snapshot};
use crate::indicators::{CATALOGUE, Indicator, ReportingState, Unit};
use crate::periods::Period;
use crate::plausibility::Confirmed;
use crate::regions::{Level, Region, RegionTree};
use crate::submissions::Submission;

/// An office's report for a half-year.
#[derive(Debug, Clone)]
pub struct HalfYearReport {
    pub region: Region,
    pub period: Period,
    /// The region's own value of every indicator published at its level (breakdown rows
    /// after their total), each with the target it is held to and the change since the
    /// previous half-year.
    pub own: Vec<Row>,
    /// The level of the areas below (the counties of a province or league, the streets of a
    /// county), if any.
    pub area_level: Option<Level>,
    pub areas: Vec<Region>,
    /// The areas' values of [`HalfYearReport::area_indicators`], by area then indicator.
    pub area_values: Vec<Vec<Row>>,
    /// Every reporting county inside the region and what it has sent.
    pub counties: Vec<CountyStatus>,
    /// When the published values were computed.
    pub data_as_of: Option<chrono::DateTime<chrono::Utc>>,
}

impl HalfYearReport {
    pub fn build(
        snapshot: &Snapshot,
        tree: &RegionTree,
        log: &[Submission],
        confirmed: &Confirmed,
        region: &Region,
        period: Period,
    ) -> HalfYearReport {
        let own_indicators: Vec<&'static Indicator> = CATALOGUE
            .iter()
            .filter(|i| region.level <= i.finest_level())
            .collect();
        let own = snapshot
            .query(tree, &own_indicators, period, region, &[region.level])
            .rows
            .into_iter()
            .map(|row| row.with_target(region))
            .collect();
        let area_level = match region.level {
            Level::Country => Some(Level::Province),
            Level::Province | Level::City => Some(Level::County),
            Level::County => Some(Level::Street),
            Level::Street | Level::Village => None,
        };
        let areas: Vec<Region> = area_level
            .map(|level| tree.within(region, level).into_iter().cloned().collect())
            .unwrap_or_default();
        let area_indicators = area_level.map(Self::area_indicators).unwrap_or_default();
        let area_values = match area_level {
            Some(level) => {
                let rows = snapshot
                    .query(tree, &area_indicators, period, region, &[level])
                    .rows;
                areas
                    .iter()
                    .map(|area| {
                        let code = area.code();
                        area_indicators
                            .iter()
                            .map(|i| {
                                rows.iter()
                                    .find(|r| r.indicator == *i && r.region == code)
                                    .cloned()
                                    .unwrap_or_else(|| {
                                        crate::indicators::snapshot::not_reported(
                                            tree, i, period, area, None,
                                        )
                                    })
                                    .with_target(area)
                            })
                            .collect()
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        HalfYearReport {
            region: region.clone(),
            period,
            own,
            area_level,
            areas,
            area_values,
            counties: compliance::status(log, confirmed, tree, period, region),
            data_as_of: snapshot.updated(),
        }
    }

    /// The indicators shown per area: those the policy sets targets for, published at that
    /// level (every other one is on the dashboard's table of areas).
    pub fn area_indicators(level: Level) -> Vec<&'static Indicator> {
        CATALOGUE
            .iter()
            .filter(|i| !i.targets.is_empty() && i.breakdown.is_none() && level <= i.finest_level())
            .collect()
    }

    /// Counties with a dataset not (or not validly) reported.
    pub fn unreported(&self) -> impl Iterator<Item = &CountyStatus> {
        self.counties.iter().filter(|c| !c.complete)
    }

    /// The report as an XLSX workbook: one sheet per section, Chinese headers, numbers as
    /// numbers, and "未报送" where nobody reported — never a zero.
    pub fn to_xlsx(&self) -> Result<Vec<u8>, XlsxError> {
        let mut book = Workbook::new();
        let bold = Format::new().set_bold();
        let title = Format::new().set_bold().set_font_size(14);
        let number = Format::new()
            .set_num_format("#,##0.##")
            .set_align(FormatAlign::Right);

        let sheet = book.add_worksheet().set_name("主要指标")?;
        sheet.write_with_format(0, 0, self.heading(), &title)?;
        let headers = [
            "指标",
            "分组",
            "数值",
            "单位",
            "报送状态",
            "已报送县数",
            "应报送县数",
            "目标",
            "目标期限",
            "是否达标",
            "差距",
            "较上期变化",
            "核实状态",
        ];
        header_row(sheet, 2, &headers, &bold)?;
        for (i, row) in self.own.iter().enumerate() {
            let r = 3 + i as u32;
            sheet.write(r, 0, row.indicator.zh)?;
            let breakdown = row.breakdown.as_deref().unwrap_or("");
            sheet.write(
                r,
                1,
                row.indicator.breakdown_zh(breakdown).unwrap_or(breakdown),
            )?;
            value_cell(sheet, r, 2, row, &number)?;
            sheet.write(r, 3, unit_zh(row.indicator.unit))?;
            sheet.write(r, 4, row.status.zh())?;
            sheet.write(r, 5, row.counties_reported)?;
            sheet.write(r, 6, row.counties_due)?;
            optional_number(sheet, r, 7, row.target, &number)?;
            sheet.write(
                r,
                8,
                row.target_deadline
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
            )?;
            let met = match row.met {
                Some(true) => "达标",
                Some(false) => "未达标",
                None => "",
            };
            sheet.write(r, 9, met)?;
            optional_number(sheet, r, 10, row.gap, &number)?;
            optional_number(sheet, r, 11, row.change, &number)?;
            sheet.write(r, 12, row.quality.map(|q| q.zh()).unwrap_or(""))?;
        }
        sheet.set_column_width(0, 28)?;
        sheet.set_freeze_panes(3, 1)?;

        if let Some(level) = self.area_level {
            let sheet = book.add_worksheet().set_name("下级地区")?;
            let indicators = Self::area_indicators(level);
            let mut headers = vec!["地区代码", "地区"];
            headers.extend(indicators.iter().map(|i| i.zh));
            header_row(sheet, 0, &headers, &bold)?;
            for (i, (area, values)) in self.areas.iter().zip(&self.area_values).enumerate() {
                let r = 1 + i as u32;
                sheet.write(r, 0, area.code())?;
                sheet.write(r, 1, area.name.as_str())?;
                for (j, row) in values.iter().enumerate() {
                    value_cell(sheet, r, 2 + j as u16, row, &number)?;
                }
            }
            sheet.set_column_width(1, 18)?;
            sheet.set_freeze_panes(1, 2)?;
        }

        let sheet = book.add_worksheet().set_name("报送情况")?;
        let mut headers = vec![
            "旗县代码",
            "旗县（市、区）",
            "是否报齐",
            "未报送的数据",
            "待核实提示",
        ];
        headers.extend(datasets::ALL.iter().map(|d| d.zh));
        header_row(sheet, 0, &headers, &bold)?;
        for (i, county) in self.counties.iter().enumerate() {
            let r = 1 + i as u32;
            sheet.write(r, 0, county.code.as_str())?;
            sheet.write(r, 1, county.name.as_str())?;
            sheet.write(
                r,
                2,
                if county.complete {
                    "已报齐"
                } else {
                    "未报齐"
                },
            )?;
            sheet.write(r, 3, missing_names(county).join("、"))?;
            sheet.write(r, 4, county.open_findings)?;
            for (j, status) in county.datasets.iter().enumerate() {
                let text = match &status.current {
                    Some(current) if current.rows == 0 => "零报送".to_string(),
                    Some(current) => format!("{} 行", current.rows),
                    None => "未报送".to_string(),
                };
                sheet.write(r, 5 + j as u16, text)?;
            }
        }
        sheet.set_column_width(1, 18)?;
        sheet.set_column_width(3, 30)?;

        let sheet = book.add_worksheet().set_name("说明")?;
        let notes = [
            self.heading(),
            format!(
                "数据截至：{}",
                self.data_as_of
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_else(|| "尚未发布".into())
            ),
            "“未报送”表示没有任何旗县报送该项数据，不是零；“部分报送”的数值只按已报送的旗县计算。".into(),
            "“不公布”表示涉及人数过少、依规不予公布。“待核实”表示数值所依据的文件有尚未核实的合理性提示。".into(),
            "百分比指标的“较上期变化”为百分点；只在两期均已报齐时给出。".into(),
        ];
        for (i, note) in notes.iter().enumerate() {
            sheet.write(i as u32, 0, note.as_str())?;
        }
        sheet.set_column_width(0, 100)?;
        book.save_to_buffer()
    }

    /// "兴安盟家政进社区工作半年报（2023年下半年）".
    pub fn heading(&self) -> String {
        format!(
            "{}家政进社区工作半年报（{}年{}半年）",
            self.region.name,
            self.period.year,
            if self.period.half == 1 { "上" } else { "下" }
        )
    }
}

/// The Chinese names of the datasets a county has not reported.
pub fn missing_names(county: &CountyStatus) -> Vec<&'static str> {
    county
        .missing
        .iter()
        .filter_map(|name| datasets::by_name(name).map(|d| d.zh))
        .collect()
}

pub fn unit_zh(unit: Unit) -> &'static str {
    match unit {
        Unit::Count => "个",
        Unit::Percent => "%",
        Unit::PerHundred => "每百个",
    }
}

fn header_row(
    sheet: &mut Worksheet,
    row: u32,
    headers: &[&str],
    bold: &Format,
) -> Result<(), XlsxError> {
    for (i, header) in headers.iter().enumerate() {
        sheet.write_with_format(row, i as u16, *header, bold)?;
    }
    Ok(())
}

/// A value as a number; or why there is none.
fn value_cell(
    sheet: &mut Worksheet,
    row: u32,
    col: u16,
    value: &Row,
    number: &Format,
) -> Result<(), XlsxError> {
    match (value.status, value.suppressed, value.value) {
        (ReportingState::NotReported, ..) => sheet.write(row, col, "未报送")?,
        (_, true, _) => sheet.write(row, col, "不公布")?,
        (_, false, Some(v)) => sheet.write_with_format(row, col, v, number)?,
        (_, false, None) => sheet.write(row, col, "")?,
    };
    Ok(())
}

fn optional_number(
    sheet: &mut Worksheet,
    row: u32,
    col: u16,
    value: Option<f64>,
    number: &Format,
) -> Result<(), XlsxError> {
    if let Some(v) = value {
        sheet.write_with_format(row, col, v, number)?;
    }
    Ok(())
}
