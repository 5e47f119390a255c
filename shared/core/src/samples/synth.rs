//! Realistic synthetic submissions, generated deterministically from the real region tree:
//! the shipped sample files, the tests' fixtures and the benchmarks all come from here.
//!
//! Rows are produced as [`Sheet`]s of canonical values and written the ways offices send
//! them: Chinese headers and labels, a title row, XLSX date cells or three date styles in
//! CSV, UTF-8 or GBK.

use chrono::NaiveDate;

use crate::datasets::{self, Choice, Dataset};
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

/// Outlets in most of the county's communities, operated by its enterprises. A county's
/// outlets do not depend on the period: each keeps its number, community and opening date, and
/// a period lists those open by its end (a third open within the three years from mid-2021),
/// so consecutive periods are as plausible as real ones. What an outlet received in the
/// period (its subsidy) is the period's own.
pub fn outlets(
    tree: &RegionTree,
    county: &Region,
    period: Period,
    operators: &Sheet,
    rng_seed: &str,
) -> Sheet {
    let mut rng = Rng::seeded(&[rng_seed, "outlets", &county.prefix]);
    let mut this_period = Rng::seeded(&[rng_seed, "outlets", &county.prefix, &period.to_string()]);
    let codes = credit_codes(operators);
    let mut rows = Vec::new();
    let mut number = 0;
    for community in communities(tree, county) {
        if !rng.chance(0.9) {
            continue;
        }
        for _ in 0..1 + usize::from(rng.chance(0.3)) {
            number += 1;
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
            let opened = OUTLETS_FROM + chrono::Duration::days(rng.below(OUTLETS_OVER_DAYS) as i64);
            let online = mode == "online";
            let operator = rng.below(1 << 16);
            let area = Datum::Cents(2000 + rng.below(20_000) as i64 * 5);
            let (rent, utility, chain, dual_use) = (
                rng.chance(0.5),
                rng.chance(0.7),
                rng.chance(0.3),
                rng.chance(0.2),
            );
            let subsidy = if this_period.chance(0.4) {
                Datum::Cents(this_period.below(500) as i64 * 10_000)
            } else {
                Datum::Blank
            };
            if opened > period.end() || codes.is_empty() {
                continue;
            }
            rows.push(vec![
                Datum::Text(format!("{}-W{number:03}", county.prefix)),
                Datum::Text(codes[operator % codes.len()].clone()),
                Datum::Text(community.prefix.to_string()),
                Datum::Choice(mode),
                Datum::Choice(carrier),
                Datum::Choices(services),
                Datum::Date(opened),
                if online { Datum::Blank } else { area },
                Datum::Bool(!online && rent),
                Datum::Bool(!online && utility),
                Datum::Bool(chain),
                subsidy,
                Datum::Bool(dual_use),
            ]);
        }
    }
    Sheet {
        dataset: &datasets::OUTLETS,
        rows,
    }
}

/// Outlets and shops open from this day, over the three years that follow.
const OUTLETS_FROM: NaiveDate = match NaiveDate::from_ymd_opt(2021, 7, 1) {
    Some(day) => day,
    None => NaiveDate::MIN,
};
const OUTLETS_OVER_DAYS: usize = 1096;

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
            // A training is held once: its number names the period, so no number returns.
            Datum::Text(format!("{}-{period}-P{:03}", county.prefix, i + 1)),
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

/// Shops opened by graduates and others in the county's communities; like outlets, a shop
/// keeps its number, community and opening date, and a period lists those open by its end.
pub fn shops(
    tree: &RegionTree,
    county: &Region,
    period: Period,
    enterprises: &Sheet,
    rng_seed: &str,
) -> Sheet {
    let mut rng = Rng::seeded(&[rng_seed, "shops", &county.prefix]);
    let communities = communities(tree, county);
    let codes = credit_codes(enterprises);
    let mut rows = Vec::new();
    for i in 0..communities.len() / 3 + 1 {
        let community = rng.pick(&communities).prefix.to_string();
        let graduate = rng.chance(0.6);
        let partner = rng.chance(0.5);
        let partner_code = rng.below(1 << 16);
        let online = rng.chance(0.3);
        let opened = OUTLETS_FROM + chrono::Duration::days(rng.below(OUTLETS_OVER_DAYS) as i64);
        if opened > period.end() {
            continue;
        }
        rows.push(vec![
            Datum::Text(format!("{}-S{:03}", county.prefix, i + 1)),
            Datum::Text(community),
            Datum::Bool(graduate),
            match codes.get(partner_code % codes.len().max(1)) {
                Some(code) if partner => Datum::Text(code.clone()),
                _ => Datum::Blank,
            },
            Datum::Bool(online),
            Datum::Date(opened),
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

pub use super::styles::{Style, WriteError, write, write_csv};
