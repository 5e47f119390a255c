//! The six datasets a county office submits, declared once as data.
//!
//! Every other part reads these tables: the sheet reader matches headers against `zh` and
//! `name`, the validator parses cells by `kind`, the lake derives the Arrow/Delta schema, the
//! templates and docs print `doc_zh`/`doc_en`, and the API lists them. Each dataset has its
//! own file with one line per field: adding a field is that line, nowhere else.

use std::sync::Arc;

use deltalake::arrow::datatypes::{DataType, Field as ArrowField, Schema, SchemaRef};
use serde::Serialize;

mod complaints;
mod enterprises;
pub mod limits;
mod outlets;
mod shops;
mod trainings;
mod workers;

pub use complaints::{COMPLAINT_CATEGORIES, COMPLAINTS};
pub use enterprises::{ENTERPRISES, INDUSTRY_EDUCATION};
pub use limits::Limits;
pub use outlets::{CARRIERS, MODES, OUTLETS, SERVICES};
pub use shops::SHOPS;
pub use trainings::{ORGANIZERS, TRAININGS};
pub use workers::{ORIGINS, SKILL_LEVELS, WORKERS};

/// One allowed value of an enumerated field: the English code stored in the lake and the
/// Chinese label submitters write.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Choice {
    pub code: &'static str,
    pub zh: &'static str,
}

const fn c(code: &'static str, zh: &'static str) -> Choice {
    Choice { code, zh }
}

/// How a cell is read, checked and stored.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Kind {
    /// Free text up to `max_chars` characters.
    Text { max_chars: usize },
    /// Unified social credit code, 18 characters with the GB 32100 check character.
    CreditCode,
    /// A 6-digit county code that exists and lies inside the submitting region.
    CountyCode,
    /// A 12-digit community (residents' committee) code inside the submitting region.
    CommunityCode,
    /// 是/否, Y/N, true/false, 1/0.
    Bool,
    /// One of `choices`, by Chinese label or English code.
    Enum {
        #[serde(skip)]
        choices: &'static [Choice],
    },
    /// Several of `choices` separated by `;`, `、`, `，` or `,`.
    EnumList {
        #[serde(skip)]
        choices: &'static [Choice],
    },
    /// A calendar date not after the end of the period.
    Date,
    /// A whole number, at least `min`.
    Count { min: i64 },
    /// An amount with at most two decimals (yuan, square metres), not negative.
    Amount,
    /// A resident ID number (GB 11643), replaced by a keyed hash at ingest.
    IdNumber,
}

impl Kind {
    /// A field of few values (choices, yes/no): one to filter by from a list and to count by.
    pub fn is_categorical(&self) -> bool {
        matches!(self, Kind::Enum { .. } | Kind::EnumList { .. } | Kind::Bool)
    }

    pub fn choices(&self) -> &'static [Choice] {
        match self {
            Kind::Enum { choices } | Kind::EnumList { choices } => choices,
            _ => &[],
        }
    }

    /// The Arrow type the lake stores this kind as.
    pub fn data_type(&self) -> DataType {
        match self {
            Kind::Bool => DataType::Boolean,
            Kind::Date => DataType::Date32,
            Kind::Count { .. } => DataType::Int64,
            Kind::Amount => DataType::Decimal128(AMOUNT_PRECISION, AMOUNT_SCALE),
            Kind::EnumList { .. } => {
                DataType::List(Arc::new(ArrowField::new("item", DataType::Utf8, false)))
            }
            // The pseudonym's 32 bytes: half the size of their hex, read without parsing.
            Kind::IdNumber => DataType::Binary,
            Kind::Text { .. }
            | Kind::CreditCode
            | Kind::CountyCode
            | Kind::CommunityCode
            | Kind::Enum { .. } => DataType::Utf8,
        }
    }
}

/// Amounts are stored exactly, as cents.
pub const AMOUNT_PRECISION: u8 = 18;
pub const AMOUNT_SCALE: i8 = 2;

/// One column of a dataset.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Field {
    /// Canonical English snake_case name: the lake column and the English header.
    pub name: &'static str,
    /// The Chinese header of the template.
    pub zh: &'static str,
    pub kind: Kind,
    pub required: bool,
    pub doc_zh: &'static str,
    pub doc_en: &'static str,
}

const fn f(
    name: &'static str,
    zh: &'static str,
    kind: Kind,
    required: bool,
    doc_zh: &'static str,
    doc_en: &'static str,
) -> Field {
    Field {
        name,
        zh,
        kind,
        required,
        doc_zh,
        doc_en,
    }
}

/// Whether a dataset's rows may be published record by record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Openness {
    /// Every non-personal field is open data.
    Records,
    /// Only aggregates are published.
    Aggregates,
    /// Personal data: never published, not even as records without the ID.
    Closed,
}

/// A dataset: one kind of file a county submits every half year.
#[derive(Debug, Serialize)]
pub struct Dataset {
    pub name: &'static str,
    pub zh: &'static str,
    pub en: &'static str,
    pub fields: &'static [Field],
    /// The field whose value must be unique within a file.
    pub key: &'static str,
    /// The field that places a row in the region tree (its code prefix).
    pub region_field: &'static str,
    pub openness: Openness,
    /// Sums that must hold within a row: the parts may not add up to more than the total.
    pub at_most: &'static [AtMost],
    /// Most data rows one file may hold: a province submitting for all its counties fits
    /// with room to spare. Every other limit on a file is derived from this and the fields
    /// ([`Dataset::limits`]).
    pub max_rows: usize,
}

/// A row rule: `parts` together are at most `total` (certificates ≤ trainees).
#[derive(Debug, Serialize)]
pub struct AtMost {
    pub parts: &'static [&'static str],
    pub total: &'static str,
}

/// Columns the lake adds to every dataset table.
pub mod columns {
    /// Half-year period, e.g. `2023H2` (partition column).
    pub const PERIOD: &str = "period";
    /// 6-digit county prefix of the row's region (partition column).
    pub const COUNTY: &str = "county";
    /// The submission that wrote the row.
    pub const SUBMISSION: &str = "submission_id";
    /// The row number of the row in the submitted sheet, as Excel shows it.
    pub const SOURCE_ROW: &str = "source_row";
}

impl Dataset {
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The table schema: the declared fields, then lineage and partition columns.
    pub fn schema(&self) -> SchemaRef {
        let mut fields: Vec<ArrowField> = self
            .fields
            .iter()
            .map(|f| ArrowField::new(f.name, f.kind.data_type(), !f.required))
            .collect();
        fields.push(ArrowField::new(columns::SUBMISSION, DataType::Utf8, false));
        fields.push(ArrowField::new(columns::SOURCE_ROW, DataType::Int64, false));
        fields.push(ArrowField::new(columns::PERIOD, DataType::Utf8, false));
        fields.push(ArrowField::new(columns::COUNTY, DataType::Utf8, false));
        Arc::new(Schema::new(fields))
    }

    /// The columns stored as keyed hashes: unique and uniformly random in the lake, so
    /// written without a dictionary or statistics.
    pub fn random_columns(&self) -> Vec<&'static str> {
        self.fields
            .iter()
            .filter(|f| matches!(f.kind, Kind::IdNumber))
            .map(|f| f.name)
            .collect()
    }

    pub fn partition_columns() -> Vec<String> {
        vec![columns::PERIOD.to_string(), columns::COUNTY.to_string()]
    }
}

/// Looks a dataset up by its English name.
pub fn by_name(name: &str) -> Option<&'static Dataset> {
    ALL.iter().copied().find(|d| d.name == name)
}

/// Datasets are one declaration each: the same name is the same dataset.
impl PartialEq for Dataset {
    fn eq(&self, other: &Dataset) -> bool {
        self.name == other.name
    }
}

/// Writes a dataset as its name, as the log, reports and answers name it.
pub fn serialize_name<S: serde::Serializer>(
    dataset: &&'static Dataset,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(dataset.name)
}

/// A dataset named by its name (a query string's `dataset=`, a logged decision).
impl<'de> serde::Deserialize<'de> for &'static Dataset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        by_name(&name).ok_or_else(|| serde::de::Error::custom(format!("no dataset {name:?}")))
    }
}

pub const ALL: [&Dataset; 6] = [
    &ENTERPRISES,
    &OUTLETS,
    &TRAININGS,
    &WORKERS,
    &SHOPS,
    &COMPLAINTS,
];

/// Data rows an Excel sheet can hold below its header: the natural bound for a file that
/// may have passed through Excel.
pub const EXCEL_SHEET_ROWS: usize = 1_048_575;

/// Kinds several datasets share.
const TEXT: Kind = Kind::Text { max_chars: 200 };
const ID_TEXT: Kind = Kind::Text { max_chars: 64 };
const COUNT: Kind = Kind::Count { min: 0 };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dataset_is_consistent() {
        for d in ALL {
            assert!(d.field(d.key).is_some(), "{}: key", d.name);
            let region = d.field(d.region_field).expect("region field");
            assert!(matches!(
                region.kind,
                Kind::CountyCode | Kind::CommunityCode
            ));
            let mut names: Vec<_> = d.fields.iter().map(|f| f.name).collect();
            let mut zh: Vec<_> = d.fields.iter().map(|f| f.zh).collect();
            names.sort();
            zh.sort();
            names.dedup();
            zh.dedup();
            assert_eq!(names.len(), d.fields.len(), "{}: duplicate names", d.name);
            assert_eq!(zh.len(), d.fields.len(), "{}: duplicate headers", d.name);
            assert_eq!(d.schema().fields().len(), d.fields.len() + 4);
            for rule in d.at_most {
                for name in rule.parts.iter().chain([&rule.total]) {
                    assert!(matches!(d.field(name).unwrap().kind, Kind::Count { .. }));
                }
            }
        }
        assert_eq!(by_name("outlets").unwrap().zh, "社区家政服务网点");
        assert!(by_name("nope").is_none());
    }
}
