//! The administrative region tree from the National Bureau of Statistics division codes.
//!
//! A region is identified internally by its *prefix*: the significant digits of its code
//! (`""` for the country, 2 for a province, 4 for a city, 6 for a county, 9 for a street,
//! 12 for a village-level unit). Prefixes are unique across levels even where the padded
//! codes are not (东莞市 the city is `4419`, its only county-level unit is `441900`), and a
//! row lies in a region exactly when its code starts with the region's prefix.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

pub mod pinyin;
mod prefix;
pub mod stored;

pub use prefix::{Prefix, prefixes_of};

/// Levels of the tree, from the country down to residents' and villagers' committees.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Country,
    Province,
    City,
    County,
    Street,
    Village,
}

impl Level {
    pub const ALL: [Level; 6] = [
        Level::Country,
        Level::Province,
        Level::City,
        Level::County,
        Level::Street,
        Level::Village,
    ];

    /// Levels at which indicators are published.
    pub const PUBLISHED: [Level; 5] = [
        Level::Country,
        Level::Province,
        Level::City,
        Level::County,
        Level::Street,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Country => "country",
            Level::Province => "province",
            Level::City => "city",
            Level::County => "county",
            Level::Street => "street",
            Level::Village => "village",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// Number of significant digits of a code at this level.
    pub fn digits(self) -> usize {
        match self {
            Level::Country => 0,
            Level::Province => 2,
            Level::City => 4,
            Level::County => 6,
            Level::Street => 9,
            Level::Village => 12,
        }
    }

    /// The significant digits of a code at this level (`152201` → `1522` for a city).
    pub fn prefix_of(self, code: &str) -> &str {
        code.get(..self.digits()).unwrap_or(code)
    }

    fn from_digits(n: usize) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.digits() == n)
    }

    pub fn child(self) -> Option<Level> {
        Level::ALL.into_iter().find(|l| *l > self)
    }

    pub fn parent(self) -> Option<Level> {
        Level::ALL.into_iter().rev().find(|l| *l < self)
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The NBS rule: the last three digits of a village-level code are 001–199 for residents'
/// committees (社区) and 200–399 for villagers' committees.
pub fn is_community_code(code: &str) -> bool {
    code.len() == 12
        && code.bytes().all(|b| b.is_ascii_digit())
        && matches!(code[9..].parse::<u16>(), Ok(1..=199))
}

/// One unit of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    pub prefix: Prefix,
    pub name: String,
    pub level: Level,
    /// Communities (社区) inside the region by the NBS rule; for a village-level unit 1 or 0.
    pub communities: u32,
}

impl Region {
    /// The code as the API writes it: 6 digits for province, city and county, 9 for a street,
    /// 12 for a village-level unit, `000000` for the country.
    pub fn code(&self) -> String {
        match self.level {
            Level::Country => COUNTRY_CODE.to_string(),
            Level::Province | Level::City | Level::County => format!("{:0<6}", self.prefix),
            Level::Street | Level::Village => self.prefix.to_string(),
        }
    }

    /// Whether `code` (a prefix or a longer code) lies inside this region.
    pub fn contains(&self, code: &str) -> bool {
        self.prefix.contains(code)
    }

    pub fn parent_prefix(&self) -> Option<&str> {
        self.prefix.at(self.level.parent()?)
    }
}

/// The API code of the whole country.
pub const COUNTRY_CODE: &str = "000000";
/// What the tree calls the whole country.
pub const COUNTRY_NAME: &str = "全国";

#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    #[error("cannot read region file {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("region file {file}, line {line}: {message}")]
    Format {
        file: String,
        line: usize,
        message: String,
    },
    #[error("no region files (provinces.csv[.gz] … villages.csv[.gz]) found in {0}")]
    Missing(String),
}

/// The region tree, ordered by prefix so that the units inside a region form one range.
#[derive(Debug, Clone, Default)]
pub struct RegionTree {
    by_prefix: BTreeMap<Prefix, Region>,
    /// Counties due to report inside each region of county level or above (see
    /// [`RegionTree::counties_due`]).
    due: BTreeMap<String, u32>,
}

impl RegionTree {
    /// Builds the tree from units of any levels; the country is added, and community counts
    /// are summed up from the village-level units.
    pub fn from_units(units: impl IntoIterator<Item = (String, String)>) -> RegionTree {
        let mut by_prefix = BTreeMap::new();
        for (digits, name) in units {
            let Some(prefix) = Prefix::parse(&digits) else {
                continue;
            };
            let level = prefix.level();
            let communities = u32::from(level == Level::Village && is_community_code(&prefix));
            by_prefix.insert(
                prefix.clone(),
                Region {
                    prefix,
                    name,
                    level,
                    communities,
                },
            );
        }
        by_prefix.insert(
            Prefix::COUNTRY,
            Region {
                prefix: Prefix::COUNTRY,
                name: COUNTRY_NAME.to_string(),
                level: Level::Country,
                communities: 0,
            },
        );
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        for region in by_prefix.values().filter(|r| r.communities > 0) {
            for digits in [0, 2, 4, 6, 9] {
                *counts
                    .entry(region.prefix[..digits].to_string())
                    .or_default() += 1;
            }
        }
        for (prefix, n) in counts {
            if let Some(region) = by_prefix.get_mut(prefix.as_str()) {
                region.communities = n;
            }
        }
        RegionTree::indexed(by_prefix)
    }

    /// Rebuilds a tree from stored regions (counts already computed).
    pub fn from_regions(regions: impl IntoIterator<Item = Region>) -> RegionTree {
        RegionTree::indexed(regions.into_iter().map(|r| (r.prefix.clone(), r)).collect())
    }

    /// Counts, for every region, the counties due to report inside it: county-level units
    /// with at least one street (NBS lists a few 市辖区 placeholders without any).
    fn indexed(by_prefix: BTreeMap<Prefix, Region>) -> RegionTree {
        let mut due: BTreeMap<String, u32> = BTreeMap::new();
        for (prefix, region) in &by_prefix {
            if region.level == Level::Street && prefix.len() >= 6 {
                due.insert(prefix[..6].to_string(), 1);
            }
        }
        let counties: Vec<String> = due.keys().cloned().collect();
        for county in counties {
            for digits in [0, 2, 4] {
                *due.entry(county[..digits].to_string()).or_default() += 1;
            }
        }
        RegionTree { by_prefix, due }
    }

    /// Counties due to report inside `region`: for a street, its county (1).
    pub fn counties_due(&self, region: &Region) -> u32 {
        let key = match region.level {
            Level::Street | Level::Village => region.prefix.at(Level::County).unwrap_or_default(),
            _ => region.prefix.as_str(),
        };
        self.due.get(key).copied().unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.by_prefix.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_prefix.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Region> {
        self.by_prefix.values()
    }

    pub fn get(&self, prefix: &str) -> Option<&Region> {
        self.by_prefix.get(prefix)
    }

    pub fn country(&self) -> Option<&Region> {
        self.get("")
    }

    /// Resolves a code as users write it: `000000` for the country, the 6-digit form of a
    /// province, city or county (the highest level wins where forms coincide), a 9-digit street
    /// or a 12-digit village-level code; bare prefixes (`15`, `1522`) are accepted too.
    pub fn resolve(&self, code: &str) -> Option<&Region> {
        let code = code.trim();
        if !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if code == COUNTRY_CODE || code.is_empty() {
            return self.country();
        }
        if code.len() == 6 {
            return prefixes_of(code).find_map(|p| {
                self.get(p)
                    .filter(|r| r.level.digits() == p.len() && r.level != Level::Country)
            });
        }
        self.get(code)
    }

    /// Units strictly inside `region` at `level` (or `region` itself when the levels match),
    /// in code order.
    pub fn within<'a>(&'a self, region: &'a Region, level: Level) -> Vec<&'a Region> {
        if level == region.level {
            return vec![region];
        }
        if level < region.level {
            return Vec::new();
        }
        self.descendants(region)
            .filter(|r| r.level == level)
            .collect()
    }

    /// Direct children of a region.
    pub fn children<'a>(&'a self, region: &'a Region) -> Vec<&'a Region> {
        match region.level.child() {
            Some(level) => self.within(region, level),
            None => Vec::new(),
        }
    }

    /// Every unit inside `region` (excluding itself).
    pub fn descendants<'a>(&'a self, region: &'a Region) -> impl Iterator<Item = &'a Region> + 'a {
        self.by_prefix
            .range::<str, _>((
                std::ops::Bound::Excluded(region.prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .map(|(_, r)| r)
            .take_while(move |r| region.prefix.contains(&r.prefix))
    }

    /// The chain from the country down to the parent of `region`.
    pub fn ancestors(&self, region: &Region) -> Vec<&Region> {
        Level::ALL
            .into_iter()
            .filter(|l| *l < region.level)
            .filter_map(|l| self.get(region.prefix.at(l)?))
            .collect()
    }

    /// Keeps only the units of the given levels (the API does not need 600k villages); the
    /// counties due are kept as they were counted.
    pub fn retain_levels(&mut self, keep: impl Fn(Level) -> bool) {
        self.by_prefix.retain(|_, r| keep(r.level));
    }
}

/// The NBS files, in tree order; each may be plain `.csv` or `.csv.gz`.
const NBS_FILES: [&str; 5] = ["provinces", "cities", "areas", "streets", "villages"];

/// Reads the NBS division files (`provinces`, `cities`, `areas`, `streets`, `villages`, each
/// `.csv` or `.csv.gz`, first column the code, second the name) from a directory.
pub fn read_nbs_dir(dir: &Path) -> Result<RegionTree, RegionError> {
    let mut units = Vec::new();
    let mut found = 0;
    for stem in NBS_FILES {
        let plain = dir.join(format!("{stem}.csv"));
        let gz = dir.join(format!("{stem}.csv.gz"));
        let (path, gzipped) = if plain.exists() {
            (plain, false)
        } else if gz.exists() {
            (gz, true)
        } else {
            continue;
        };
        found += 1;
        let file_name = path.display().to_string();
        let file = std::fs::File::open(&path).map_err(|source| RegionError::Io {
            file: file_name.clone(),
            source,
        })?;
        let reader: Box<dyn Read> = if gzipped {
            Box::new(flate2::read::GzDecoder::new(file))
        } else {
            Box::new(file)
        };
        read_nbs_csv(BufReader::new(reader), &file_name, &mut units)?;
    }
    if found == 0 {
        return Err(RegionError::Missing(dir.display().to_string()));
    }
    Ok(RegionTree::from_units(units))
}

fn read_nbs_csv(
    reader: impl BufRead,
    file: &str,
    units: &mut Vec<(String, String)>,
) -> Result<(), RegionError> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(reader);
    for (i, record) in csv.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| RegionError::Format {
            file: file.to_string(),
            line,
            message: e.to_string(),
        })?;
        let (Some(code), Some(name)) = (record.get(0), record.get(1)) else {
            return Err(RegionError::Format {
                file: file.to_string(),
                line,
                message: "expected code,name,…".to_string(),
            });
        };
        let code = code.trim();
        if Prefix::parse(code).is_none_or(|p| p.level() == Level::Country) {
            return Err(RegionError::Format {
                file: file.to_string(),
                line,
                message: format!("{code:?} is not a 2, 4, 6, 9 or 12 digit code"),
            });
        }
        units.push((code.to_string(), name.trim().to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> RegionTree {
        RegionTree::from_units(
            [
                ("15", "内蒙古自治区"),
                ("1522", "兴安盟"),
                ("152201", "乌兰浩特市"),
                ("152201001", "和平街道"),
                ("152201001001", "团结社区居委会"),
                ("152201001002", "胜利社区居委会"),
                ("152201001201", "某村委会"),
                ("4419", "东莞市"),
                ("441900", "东莞市"),
                ("441900003", "东城街道"),
                ("441900003010", "某社区"),
            ]
            .map(|(c, n)| (c.to_string(), n.to_string())),
        )
    }

    #[test]
    fn community_rule_follows_the_last_three_digits() {
        assert!(is_community_code("152201001001"));
        assert!(is_community_code("152201001199"));
        assert!(!is_community_code("152201001200"));
        assert!(!is_community_code("152201001000"));
        assert!(!is_community_code("15220100100"));
    }

    #[test]
    fn counts_roll_up_every_level() {
        let t = tree();
        assert_eq!(t.get("152201001").unwrap().communities, 2);
        assert_eq!(t.get("152201").unwrap().communities, 2);
        assert_eq!(t.get("15").unwrap().communities, 2);
        assert_eq!(t.country().unwrap().communities, 3);
    }

    #[test]
    fn six_digit_codes_resolve_to_the_highest_level() {
        let t = tree();
        assert_eq!(t.resolve("150000").unwrap().level, Level::Province);
        assert_eq!(t.resolve("152200").unwrap().prefix, "1522");
        assert_eq!(t.resolve("152201").unwrap().level, Level::County);
        assert_eq!(t.resolve("441900").unwrap().prefix, "4419");
        assert_eq!(t.resolve("000000").unwrap().level, Level::Country);
        assert_eq!(t.resolve("1522").unwrap().name, "兴安盟");
        assert!(t.resolve("152299").is_none());
        assert!(t.resolve("15x").is_none());
    }

    #[test]
    fn within_and_children() {
        let t = tree();
        let league = t.resolve("152200").unwrap();
        let counties: Vec<_> = t
            .within(league, Level::County)
            .iter()
            .map(|r| r.code())
            .collect();
        assert_eq!(counties, ["152201"]);
        assert_eq!(t.within(league, Level::City)[0].prefix, "1522");
        assert!(t.within(league, Level::Province).is_empty());
        let dongguan = t.resolve("441900").unwrap();
        assert_eq!(t.children(dongguan)[0].prefix, "441900");
        let chain: Vec<_> = t
            .ancestors(t.get("152201001").unwrap())
            .iter()
            .map(|r| r.prefix.as_str())
            .collect();
        assert_eq!(chain, ["", "15", "1522", "152201"]);
    }
}
