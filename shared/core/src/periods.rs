//! Half-year reporting periods (半年报): `2023H1`, `2023H2`. A period read from outside is
//! bounded by the calendar: from the policy's first half-year to the current one on the
//! Asia/Shanghai clock, so no file can be filed for, and no read defaults to, the future.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    pub year: i32,
    /// 1 or 2.
    pub half: u8,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "{0:?} is not a reporting period: a half-year such as 2023H2, from {first} to the current one ({current})",
    first = Period::FIRST,
    current = Period::current()
)]
pub struct BadPeriod(pub String);

impl Period {
    pub fn new(year: i32, half: u8) -> Option<Period> {
        ((2000..=2100).contains(&year) && (half == 1 || half == 2)).then_some(Period { year, half })
    }

    /// The last day of the period: 30 June or 31 December.
    pub fn end(self) -> NaiveDate {
        let (month, day) = if self.half == 1 { (6, 30) } else { (12, 31) };
        NaiveDate::from_ymd_opt(self.year, month, day).expect("valid period end")
    }

    pub fn start(self) -> NaiveDate {
        let month = if self.half == 1 { 1 } else { 7 };
        NaiveDate::from_ymd_opt(self.year, month, 1).expect("valid period start")
    }

    /// The first half-year under the guideline (发改社会〔2022〕1786号, issued in late 2022).
    pub const FIRST: Period = Period {
        year: 2022,
        half: 2,
    };

    /// The half-year it is now in China (UTC+8 all year: China keeps no daylight saving).
    pub fn current() -> Period {
        let shanghai = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
        Period::containing(chrono::Utc::now().with_timezone(&shanghai).date_naive())
    }

    /// Every reporting period, oldest first: the first half-year to the current one.
    pub fn reportable() -> Vec<Period> {
        let mut all = vec![Period::FIRST];
        while let Some(&last) = all.last().filter(|p| **p < Period::current()) {
            all.push(last.next());
        }
        all
    }

    /// Whether files can be filed for this period and reads may show it.
    pub fn is_reportable(self) -> bool {
        (Period::FIRST..=Period::current()).contains(&self)
    }

    /// The half-year a day falls in.
    pub fn containing(day: NaiveDate) -> Period {
        use chrono::Datelike;
        Period {
            year: day.year(),
            half: if day.month() <= 6 { 1 } else { 2 },
        }
    }

    /// The half-year after this one.
    pub fn next(self) -> Period {
        if self.half == 1 {
            Period {
                year: self.year,
                half: 2,
            }
        } else {
            Period {
                year: self.year + 1,
                half: 1,
            }
        }
    }

    /// The half-year before this one.
    pub fn previous(self) -> Period {
        if self.half == 2 {
            Period {
                year: self.year,
                half: 1,
            }
        } else {
            Period {
                year: self.year - 1,
                half: 2,
            }
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}H{}", self.year, self.half)
    }
}

impl Period {
    /// Reads a period by its syntax alone, for values this system wrote itself (a stored
    /// snapshot row, a declared deadline). Anything from outside goes through `FromStr`,
    /// which also holds it to the calendar.
    pub fn read_stored(s: &str) -> Option<Period> {
        let (year, half) = s.trim().split_once(['H', 'h'])?;
        if year.len() != 4 {
            return None;
        }
        Period::new(year.parse().ok()?, half.parse().ok()?)
    }
}

impl FromStr for Period {
    type Err = BadPeriod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Period::read_stored(s)
            .filter(|p| p.is_reportable())
            .ok_or_else(|| BadPeriod(s.to_string()))
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Serde `deserialize_with` for a period the lake wrote (a snapshot row, a deadline): read as
/// [`Period::read_stored`], not held to the calendar.
pub fn stored<'de, D: Deserializer<'de>>(d: D) -> Result<Period, D::Error> {
    let s = String::deserialize(d)?;
    Period::read_stored(&s).ok_or_else(|| serde::de::Error::custom(BadPeriod(s)))
}

/// [`stored`] for an optional period.
pub fn stored_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Period>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| Period::read_stored(&s).ok_or_else(|| serde::de::Error::custom(BadPeriod(s))))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders() {
        let p: Period = "2023H2".parse().unwrap();
        assert_eq!(p.end(), NaiveDate::from_ymd_opt(2023, 12, 31).unwrap());
        assert_eq!(p.previous().to_string(), "2023H1");
        assert_eq!(p.previous().previous().to_string(), "2022H2");
        assert!(p.previous() < p);
        assert_eq!(p.previous().next(), p);
        assert_eq!(p.next().to_string(), "2024H1");
        let day = |m| NaiveDate::from_ymd_opt(2026, m, 30).unwrap();
        assert_eq!(Period::containing(day(6)).to_string(), "2026H1");
        assert_eq!(Period::containing(day(7)).to_string(), "2026H2");
        for bad in ["2023", "2023H3", "23H1", "2023-H1", "H1", "1999H1"] {
            assert!(bad.parse::<Period>().is_err(), "{bad}");
        }
    }

    #[test]
    fn bounded_by_the_policy_and_the_calendar() {
        assert!("2022H2".parse::<Period>().is_ok());
        assert!("2022H1".parse::<Period>().is_err());
        let now = Period::current();
        assert!(now.to_string().parse::<Period>().is_ok());
        assert!(now.next().to_string().parse::<Period>().is_err());
        assert!("2100H2".parse::<Period>().is_err());
        let message = "2100H2".parse::<Period>().unwrap_err().to_string();
        assert!(
            message.contains("2022H2") && message.contains(&now.to_string()),
            "{message}"
        );
    }
}
