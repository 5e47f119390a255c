//! Realistic synthetic submissions, generated deterministically from the real region tree:
//! the shipped sample files, the tests' fixtures and the benchmarks all come from here.
//!
//! Rows are produced as [`Sheet`]s of canonical values and written the ways offices send
//! them: Chinese headers and labels, a title row, XLSX date cells or three date styles in
//! CSV, UTF-8 or GBK.

use chrono::NaiveDate;

use crate::datasets::{self, Choice, Dataset, Kind};
use crate::identifiers::{credit_check_char, id_check_char};
use crate::periods::Period;
use crate::regions::{Level, Region, RegionTree, is_community_code};

/// A small deterministic generator (SplitMix64): same seed, same files.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn seeded(parts: &[&str]) -> Rng {
        let mut seed = 0xcbf2_9ce4_8422_2325u64;
        for byte in parts.join("/").bytes() {
            seed = (seed ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
        Rng::new(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn choose<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// A value as generated, before it is written in some office's style.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    Blank,
    Text(String),
    Bool(bool),
    /// An enum code; written as its Chinese label.
    Choice(&'static str),
    Choices(Vec<&'static str>),
    Date(NaiveDate),
    Int(i64),
    /// Hundredths.
    Cents(i64),
}

/// Rows of one dataset, values in field order.
#[derive(Debug, Clone)]
pub struct Sheet {
    pub dataset: &'static Dataset,
    pub rows: Vec<Vec<Datum>>,
}

impl Sheet {
    /// The value of `field` in row `i`.
    pub fn get(&self, i: usize, field: &str) -> &Datum {
        let col = self
            .dataset
            .fields
            .iter()
            .position(|f| f.name == field)
            .expect("field of the dataset");
        &self.rows[i][col]
    }
}

/// A credit code registered in `county`, valid under GB 32100.
pub fn credit_code(rng: &mut Rng, county: &str) -> String {
    const ORG: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    let mut body = format!("91{county}");
    for _ in 0..9 {
        body.push(ORG[rng.below(ORG.len())] as char);
    }
    let check = credit_check_char(&body).expect("valid body");
    body.push(check);
    body
}

/// A resident ID number of someone born in `county`, valid under GB 11643.
pub fn id_number(rng: &mut Rng, county: &str) -> String {
    let birth = NaiveDate::from_ymd_opt(1965, 1, 1).expect("date")
        + chrono::Duration::days(rng.below(365 * 35) as i64);
    let body = format!("{county}{}{:03}", birth.format("%Y%m%d"), rng.below(1000));
    let check = id_check_char(&body).expect("valid body");
    format!("{body}{check}")
}

const BRANDS: &[&str] = &[
    "安心",
    "巾帼",
    "北疆亮姐",
    "草原",
    "惠民",
    "好帮手",
    "红石榴",
    "暖阳",
    "邻里",
    "兴安",
    "阿尔山",
    "蒙源",
    "康宁",
    "优家",
    "福满堂",
    "金牌月嫂",
    "洁美",
    "乐龄",
];

const SUFFIXES: &[&str] = &[
    "家政服务有限公司",
    "家庭服务有限责任公司",
    "母婴护理服务有限公司",
    "养老服务有限公司",
    "保洁服务有限公司",
];

/// 科尔沁右翼前旗 → 科右前旗, as firms name themselves; other names unchanged.
fn short_name(county: &str) -> String {
    county.replace("科尔沁右翼", "科右")
}

/// The communities of a county, in code order.
pub fn communities<'t>(tree: &'t RegionTree, county: &'t Region) -> Vec<&'t Region> {
    tree.descendants(county)
        .filter(|r| r.level == Level::Village && is_community_code(&r.prefix))
        .collect()
}

/// The enterprises of a county for a period. Later periods keep earlier enterprises and add
/// a few, as real registers grow.
pub fn enterprises(county: &Region, period: Period, rng_seed: &str) -> Sheet {
    let mut rng = Rng::seeded(&[rng_seed, "enterprises", &county.prefix]);
    let base = 4 + rng.below(6);
    let growth = (period.year - 2023) as usize * 2 + usize::from(period.half == 2);
    let mut rows = Vec::new();
    let first_brand = rng.below(BRANDS.len());
    for i in 0..base + growth {
        let brand = BRANDS[(first_brand + i) % BRANDS.len()];
        let kind = SUFFIXES[(first_brand + i) % SUFFIXES.len()];
        let industry = if rng.chance(0.15) {
            "certified"
        } else if rng.chance(0.2) {
            "cultivation"
        } else {
            "none"
        };
        rows.push(vec![
            Datum::Text(credit_code(&mut rng, &county.prefix)),
            Datum::Text(format!("{}{brand}{kind}", short_name(&county.name))),
            Datum::Text(county.prefix.to_string()),
            Datum::Bool(rng.chance(0.4)),
            Datum::Bool(rng.chance(0.25)),
            Datum::Choice(industry),
            Datum::Bool(rng.chance(0.1)),
        ]);
    }
    Sheet {
        dataset: &datasets::ENTERPRISES,
        rows,
    }
}

/// Outlets in a share of the county's communities, operated by its enterprises.
pub fn outlets(
    tree: &RegionTree,
    county: &Region,
    period: Period,
    operators: &Sheet,
    rng_seed: &str,
) -> Sheet {
    let mut rng = Rng::seeded(&[rng_seed, "outlets", &county.prefix, &period.to_string()]);
    let coverage = 0.55 + 0.1 * f64::from(period.half) + rng.below(20) as f64 / 100.0;
    let codes = credit_codes(operators);
    let mut rows = Vec::new();
    for community in communities(tree, county) {
        if !rng.chance(coverage.min(1.0)) {
            continue;
        }
        for _ in 0..1 + usize::from(rng.chance(0.3)) {
            let mode = *rng.pick(&[
                "standalone",
                "embedded",
                "embedded",
                "partnership",
                "online",
            ]);
            let carrier = match mode {
                "online" => "platform",
                "standalone" => "own_premises",
                _ => *rng.pick(&[
                    "community_center",
                    "day_care",
                    "nursery",
                    "meal_point",
                    "supermarket",
                    "property",
                ]),
            };
            let mut services: Vec<&'static str> = Vec::new();
            for _ in 0..1 + rng.below(3) {
                let s = rng.pick(datasets::SERVICES).code;
                if !services.contains(&s) {
                    services.push(s);
                }
            }
            let opened = period.end() - chrono::Duration::days(rng.below(900) as i64);
            let online = mode == "online";
            rows.push(vec![
                Datum::Text(format!("{}-W{:03}", county.prefix, rows.len() + 1)),
                Datum::Text(rng.pick(&codes).clone()),
                Datum::Text(community.prefix.to_string()),
                Datum::Choice(mode),
                Datum::Choice(carrier),
                Datum::Choices(services),
                Datum::Date(opened),
                if online {
                    Datum::Blank
                } else {
                    Datum::Cents(2000 + rng.below(20_000) as i64 * 5)
                },
                Datum::Bool(!online && rng.chance(0.5)),
                Datum::Bool(!online && rng.chance(0.7)),
                Datum::Bool(rng.chance(0.3)),
                if rng.chance(0.4) {
                    Datum::Cents(rng.below(500) as i64 * 10_000)
                } else {
                    Datum::Blank
                },
                Datum::Bool(rng.chance(0.2)),
            ]);
        }
    }
    Sheet {
        dataset: &datasets::OUTLETS,
        rows,
    }
}

/// Credit codes of the enterprises in a sheet.
fn credit_codes(enterprises: &Sheet) -> Vec<String> {
    (0..enterprises.rows.len())
        .filter_map(|i| match enterprises.get(i, "credit_code") {
            Datum::Text(code) => Some(code.clone()),
            _ => None,
        })
        .collect()
}

fn choice_codes(choices: &'static [Choice]) -> Vec<&'static str> {
    choices.iter().map(|c| c.code).collect()
}

/// Training sessions held in the county's communities during the period.
pub fn trainings(tree: &RegionTree, county: &Region, period: Period, rng_seed: &str) -> Sheet {
    let mut rng = Rng::seeded(&[rng_seed, "trainings", &county.prefix, &period.to_string()]);
    let communities = communities(tree, county);
    let organizers = choice_codes(datasets::ORGANIZERS);
    let mut rows = Vec::new();
    for i in 0..communities.len() / 3 + 1 {
        let community = rng.pick(&communities);
        let trainees = 8 + rng.below(40) as i64;
        let primary = rng.below(trainees as usize / 2 + 1) as i64;
        let intermediate = rng.below((trainees - primary) as usize / 3 + 1) as i64;
        let advanced = rng
            .below(3)
            .min((trainees - primary - intermediate) as usize) as i64;
        let start = period.start() + chrono::Duration::days(rng.below(170) as i64);
        rows.push(vec![
            Datum::Text(format!("{}-P{:03}", county.prefix, i + 1)),
            Datum::Text(community.prefix.to_string()),
            Datum::Choice(rng.choose(&organizers)),
            Datum::Date(start),
            Datum::Int(8 + 4 * rng.below(10) as i64),
            Datum::Int(trainees),
            Datum::Int(primary),
            Datum::Int(intermediate),
            Datum::Int(advanced),
            if rng.chance(0.6) {
                Datum::Cents(trainees * 50_000)
            } else {
                Datum::Blank
            },
        ]);
    }
    Sheet {
        dataset: &datasets::TRAININGS,
        rows,
    }
}

/// `n` workers of the county's enterprises, serving its communities.
pub fn workers(
    tree: &RegionTree,
    county: &Region,
    enterprises: &Sheet,
    n: usize,
    rng_seed: &str,
) -> Sheet {
    Sheet {
        dataset: &datasets::WORKERS,
        rows: worker_rows(tree, county, enterprises, rng_seed)
            .take(n)
            .collect(),
    }
}

/// An endless stream of distinct workers, for files too large to hold as a [`Sheet`].
pub fn worker_rows<'t>(
    tree: &'t RegionTree,
    county: &'t Region,
    enterprises: &Sheet,
    rng_seed: &str,
) -> impl Iterator<Item = Vec<Datum>> + 't {
    let mut rng = Rng::seeded(&[rng_seed, "workers", &county.prefix]);
    let communities = communities(tree, county);
    let codes = credit_codes(enterprises);
    let origins = choice_codes(datasets::ORIGINS);
    let levels = choice_codes(datasets::SKILL_LEVELS);
    let mut seen = std::collections::HashSet::new();
    std::iter::from_fn(move || {
        loop {
            let id = id_number(&mut rng, &county.prefix);
            if seen.insert(id.clone()) {
                return Some(worker_row(
                    &mut rng,
                    id,
                    &codes,
                    &communities,
                    &origins,
                    &levels,
                ));
            }
        }
    })
}

fn worker_row(
    rng: &mut Rng,
    id: String,
    codes: &[String],
    communities: &[&Region],
    origins: &[&'static str],
    levels: &[&'static str],
) -> Vec<Datum> {
    vec![
        Datum::Text(id),
        Datum::Text(rng.pick(codes).clone()),
        Datum::Text(rng.pick(communities).prefix.to_string()),
        Datum::Choice(rng.choose(origins)),
        Datum::Bool(rng.chance(0.8)),
        Datum::Choice(if rng.chance(0.5) {
            "none"
        } else {
            rng.choose(levels)
        }),
        Datum::Bool(rng.chance(0.6)),
        Datum::Bool(rng.chance(0.7)),
    ]
}

/// Shops opened by graduates and others in the county's communities.
pub fn shops(
    tree: &RegionTree,
    county: &Region,
    period: Period,
    enterprises: &Sheet,
    rng_seed: &str,
) -> Sheet {
    let mut rng = Rng::seeded(&[rng_seed, "shops", &county.prefix, &period.to_string()]);
    let communities = communities(tree, county);
    let codes = credit_codes(enterprises);
    let mut rows = Vec::new();
    for i in 0..communities.len() / 4 + 1 {
        rows.push(vec![
            Datum::Text(format!("{}-S{:03}", county.prefix, i + 1)),
            Datum::Text(rng.pick(&communities).prefix.to_string()),
            Datum::Bool(rng.chance(0.6)),
            if rng.chance(0.5) {
                Datum::Text(rng.pick(&codes).clone())
            } else {
                Datum::Blank
            },
            Datum::Bool(rng.chance(0.3)),
            Datum::Date(period.end() - chrono::Duration::days(rng.below(700) as i64)),
        ]);
    }
    Sheet {
        dataset: &datasets::SHOPS,
        rows,
    }
}

/// Complaints about the county's enterprises received during the period.
pub fn complaints(
    tree: &RegionTree,
    county: &Region,
    period: Period,
    enterprises: &Sheet,
    rng_seed: &str,
) -> Sheet {
    let mut rng = Rng::seeded(&[rng_seed, "complaints", &county.prefix, &period.to_string()]);
    let communities = communities(tree, county);
    let codes = credit_codes(enterprises);
    let categories = choice_codes(datasets::COMPLAINT_CATEGORIES);
    let mut rows = Vec::new();
    for i in 0..communities.len() / 5 + 1 {
        rows.push(vec![
            Datum::Text(format!("{}-T{:04}", county.prefix, i + 1)),
            Datum::Text(rng.pick(&codes).clone()),
            Datum::Text(rng.pick(&communities).prefix.to_string()),
            Datum::Date(period.start() + chrono::Duration::days(rng.below(180) as i64)),
            Datum::Choice(rng.choose(&categories)),
            Datum::Bool(rng.chance(0.85)),
        ]);
    }
    Sheet {
        dataset: &datasets::COMPLAINTS,
        rows,
    }
}

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
