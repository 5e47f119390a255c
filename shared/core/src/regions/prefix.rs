//! A region as the code sees it: its significant digits. "This region and everything inside
//! it" is "every code that starts with these digits", in Rust, in SQL and in the lake's
//! partitions alike, so that reading lives here once.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use super::Level;

/// The significant digits of a region's code: `""` for the country, 2 for a province, 4 for
/// a city, 6 for a county, 9 for a street, 12 for a village-level unit. Unique across levels
/// even where padded codes are not (东莞市 the city is `4419`, its county-level unit `441900`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Prefix(String);

impl Prefix {
    /// The whole country.
    pub const COUNTRY: Prefix = Prefix(String::new());

    /// Digits of one of the levels' lengths, or `None`.
    pub fn parse(digits: &str) -> Option<Prefix> {
        (Level::from_digits(digits.len()).is_some() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Prefix(digits.to_string()))
    }

    /// The region of `level` that holds `code` (`152201001` at county level is `152201`).
    pub fn of(code: &str, level: Level) -> Option<Prefix> {
        Prefix::parse(code.get(..level.digits())?)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The level the number of digits names.
    pub fn level(&self) -> Level {
        Level::from_digits(self.0.len()).unwrap_or(Level::Country)
    }

    /// Whether `code` (a prefix or a longer code) lies inside this region.
    pub fn contains(&self, code: &str) -> bool {
        code.starts_with(&self.0)
    }

    /// The digits of the enclosing region at `level`, or `None` when `level` is not above
    /// this one.
    pub fn at(&self, level: Level) -> Option<&str> {
        (level.digits() <= self.0.len()).then(|| &self.0[..level.digits()])
    }

    /// The same test as [`Prefix::contains`], as a SQL `LIKE` pattern (digits need no escape).
    pub fn like(&self) -> String {
        format!("{}%", self.0)
    }
}

/// The prefixes a code may stand for, highest level first: a 6-digit code is padded with
/// zeros (`150000` → `15`, `152200` → `1522`, `152201`), so it may name a province, a city or
/// a county; the tree decides which exists ([`super::RegionTree::resolve`]). Longer codes and
/// bare prefixes stand for themselves.
pub fn prefixes_of(code: &str) -> impl Iterator<Item = &str> {
    let padded = code.len() == 6;
    [
        code.strip_suffix("0000").filter(|_| padded),
        code.strip_suffix("00").filter(|_| padded),
        Some(code),
    ]
    .into_iter()
    .flatten()
}

impl TryFrom<String> for Prefix {
    type Error = String;

    fn try_from(digits: String) -> Result<Prefix, String> {
        Prefix::parse(&digits).ok_or_else(|| format!("{digits:?} is not a region prefix"))
    }
}

impl From<Prefix> for String {
    fn from(prefix: Prefix) -> String {
        prefix.0
    }
}

impl Deref for Prefix {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// Lets maps keyed by prefix be searched with the digits of a code.
impl Borrow<str> for Prefix {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Honours width and fill, so `{:0<6}` pads a prefix to the 6-digit API code.
impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl PartialEq<str> for Prefix {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Prefix {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_padded_code_reads_highest_level_first() {
        let all = |code| prefixes_of(code).collect::<Vec<_>>();
        assert_eq!(all("150000"), ["15", "1500", "150000"]);
        assert_eq!(all("152200"), ["1522", "152200"]);
        assert_eq!(all("152201"), ["152201"]);
        assert_eq!(all("152201001"), ["152201001"]);
        assert_eq!(all("1522"), ["1522"]);
    }

    #[test]
    fn only_digits_of_a_level_length_are_a_prefix() {
        assert_eq!(Prefix::parse("1522").map(|p| p.level()), Some(Level::City));
        assert_eq!(Prefix::parse("").map(|p| p.level()), Some(Level::Country));
        assert!(Prefix::parse("152").is_none());
        assert!(Prefix::parse("15x2").is_none());
        assert!(serde_json::from_str::<Prefix>("\"1522013\"").is_err());
        let county = Prefix::of("152201001001", Level::County).unwrap();
        assert_eq!(county, "152201");
        assert!(county.contains("152201001"));
        assert!(!county.contains("152202"));
        assert_eq!(county.at(Level::City), Some("1522"));
        assert_eq!(county.at(Level::Street), None);
        assert_eq!(county.like(), "152201%");
        assert_eq!(format!("{:0<6}", Prefix::parse("15").unwrap()), "150000");
    }
}
