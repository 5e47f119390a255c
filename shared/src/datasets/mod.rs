//! The six datasets a county office submits, declared once as data.
//!
//! Every other part reads these tables: the sheet reader matches headers against `zh` and
//! `name`, the validator parses cells by `kind`, the lake derives the Arrow/Delta schema, the
//! templates and docs print `doc_zh`/`doc_en`, and the API lists them. Adding a field is an
//! edit here, nowhere else.

use std::sync::Arc;

use deltalake::arrow::datatypes::{DataType, Field as ArrowField, Schema, SchemaRef};
use serde::Serialize;

pub mod limits;
pub use limits::Limits;

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
            Kind::Text { .. }
            | Kind::CreditCode
            | Kind::CountyCode
            | Kind::CommunityCode
            | Kind::Enum { .. }
            | Kind::IdNumber => DataType::Utf8,
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

    pub fn partition_columns() -> Vec<String> {
        vec![columns::PERIOD.to_string(), columns::COUNTY.to_string()]
    }
}

/// Looks a dataset up by its English name.
pub fn by_name(name: &str) -> Option<&'static Dataset> {
    ALL.iter().copied().find(|d| d.name == name)
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

const TEXT: Kind = Kind::Text { max_chars: 200 };
const ID_TEXT: Kind = Kind::Text { max_chars: 64 };
const COUNT: Kind = Kind::Count { min: 0 };

pub const INDUSTRY_EDUCATION: &[Choice] = &[
    c("none", "否"),
    c("cultivation", "入库培育"),
    c("certified", "已认证"),
];

pub const ENTERPRISES: Dataset = Dataset {
    max_rows: 100_000,
    name: "enterprises",
    zh: "家政企业",
    en: "Home-service enterprises",
    key: "credit_code",
    region_field: "county_code",
    openness: Openness::Records,
    at_most: &[],
    fields: &[
        f(
            "credit_code",
            "统一社会信用代码",
            Kind::CreditCode,
            true,
            "18位统一社会信用代码，按GB 32100校验",
            "18-character unified social credit code, GB 32100 check character",
        ),
        f(
            "name",
            "企业名称",
            TEXT,
            true,
            "营业执照上的企业名称",
            "Registered name of the enterprise",
        ),
        f(
            "county_code",
            "注册地区县代码",
            Kind::CountyCode,
            true,
            "注册地所在旗县市区的6位代码",
            "6-digit code of the county of registration",
        ),
        f(
            "employee_based",
            "是否员工制",
            Kind::Bool,
            true,
            "是否为员工制家政企业（是/否）",
            "Employs its workers directly (yes/no)",
        ),
        f(
            "key_contact",
            "是否重点联系企业",
            Kind::Bool,
            true,
            "是否列入省级重点联系企业（是/否）",
            "On the province's list of key contact enterprises (yes/no)",
        ),
        f(
            "industry_education",
            "产教融合型企业",
            Kind::Enum {
                choices: INDUSTRY_EDUCATION,
            },
            true,
            "产教融合型企业建设培育库情况：否、入库培育、已认证",
            "Industry-education integration status: none, cultivation, certified",
        ),
        f(
            "leading",
            "是否龙头企业",
            Kind::Bool,
            true,
            "是否为家政龙头企业（是/否）",
            "A leading enterprise (yes/no)",
        ),
    ],
};

pub const MODES: &[Choice] = &[
    c("standalone", "独营"),
    c("embedded", "嵌入"),
    c("partnership", "合作"),
    c("online", "线上"),
];

pub const CARRIERS: &[Choice] = &[
    c("community_center", "社区综合服务中心"),
    c("day_care", "日间照料中心"),
    c("nursery", "托育机构"),
    c("meal_point", "老年助餐点"),
    c("supermarket", "便民超市"),
    c("property", "物业服务企业"),
    c("own_premises", "独立场所"),
    c("platform", "线上平台"),
];

pub const SERVICES: &[Choice] = &[
    c("cleaning", "保洁"),
    c("childcare", "育幼"),
    c("maternity", "母婴照护"),
    c("elderly_care", "养老"),
    c("meal", "助餐"),
    c("organizing", "整理收纳"),
    c("rehabilitation", "康复训练"),
    c("aging_retrofit", "适老化改造"),
    c("other", "其他"),
];

pub const OUTLETS: Dataset = Dataset {
    max_rows: 200_000,
    name: "outlets",
    zh: "社区家政服务网点",
    en: "Community home-service outlets",
    key: "outlet_id",
    region_field: "community_code",
    openness: Openness::Records,
    at_most: &[],
    fields: &[
        f(
            "outlet_id",
            "网点编号",
            ID_TEXT,
            true,
            "本地区内唯一的网点编号",
            "Outlet number, unique within the region",
        ),
        f(
            "credit_code",
            "运营企业统一社会信用代码",
            Kind::CreditCode,
            true,
            "运营该网点的家政企业统一社会信用代码",
            "Credit code of the operating enterprise",
        ),
        f(
            "community_code",
            "所在社区代码",
            Kind::CommunityCode,
            true,
            "网点所在社区（居委会）的12位统计用区划代码",
            "12-digit code of the community (residents' committee)",
        ),
        f(
            "mode",
            "进驻方式",
            Kind::Enum { choices: MODES },
            true,
            "独营、嵌入、合作、线上",
            "How the enterprise entered the community",
        ),
        f(
            "carrier",
            "载体",
            Kind::Enum { choices: CARRIERS },
            true,
            "网点依托的载体",
            "The premises or platform the outlet uses",
        ),
        f(
            "services",
            "服务项目",
            Kind::EnumList { choices: SERVICES },
            true,
            "可多选，用“;”或“、”分隔",
            "One or more services, separated by ; or 、",
        ),
        f(
            "opened_on",
            "开业日期",
            Kind::Date,
            true,
            "网点开业日期",
            "Date the outlet opened",
        ),
        f(
            "area_m2",
            "面积",
            Kind::Amount,
            false,
            "网点使用面积（平方米），线上网点可不填",
            "Floor area in square metres; blank for online outlets",
        ),
        f(
            "rent_reduced",
            "减免租金",
            Kind::Bool,
            true,
            "是否享受租金减免（是/否）",
            "Rent reduced or waived (yes/no)",
        ),
        f(
            "residential_utility",
            "水电居民价",
            Kind::Bool,
            true,
            "水电费是否按居民价格缴纳（是/否）",
            "Water and power at residential prices (yes/no)",
        ),
        f(
            "chain",
            "连锁经营",
            Kind::Bool,
            true,
            "是否连锁经营（是/否）",
            "Part of a chain (yes/no)",
        ),
        f(
            "subsidy_yuan",
            "补助金额",
            Kind::Amount,
            false,
            "本期获得的建设或运营补助（元）",
            "Construction or operating subsidy received this period (yuan)",
        ),
        f(
            "dual_use",
            "平急结合",
            Kind::Bool,
            true,
            "是否具备平急结合功能（是/否）",
            "Can switch to emergency use (yes/no)",
        ),
    ],
};

pub const ORGANIZERS: &[Choice] = &[
    c("enterprise", "企业"),
    c("college", "院校"),
    c("union", "工会"),
    c("youth_league", "共青团"),
    c("womens_federation", "妇联"),
    c("association", "行业协会"),
    c("caravan", "大篷车"),
    c("other", "其他"),
];

pub const TRAININGS: Dataset = Dataset {
    max_rows: 200_000,
    name: "trainings",
    zh: "家政培训进社区",
    en: "Home-service trainings in communities",
    key: "training_id",
    region_field: "community_code",
    openness: Openness::Records,
    at_most: &[AtMost {
        parts: &[
            "certified_primary",
            "certified_intermediate",
            "certified_advanced",
        ],
        total: "trainees",
    }],
    fields: &[
        f(
            "training_id",
            "培训编号",
            ID_TEXT,
            true,
            "本地区内唯一的培训编号",
            "Training number, unique within the region",
        ),
        f(
            "community_code",
            "社区代码",
            Kind::CommunityCode,
            true,
            "培训所在社区的12位代码",
            "12-digit code of the community",
        ),
        f(
            "organizer",
            "组织方",
            Kind::Enum {
                choices: ORGANIZERS,
            },
            true,
            "企业、院校、工会、共青团、妇联、行业协会、大篷车、其他",
            "Who organised the training",
        ),
        f(
            "start_date",
            "开始日期",
            Kind::Date,
            true,
            "培训开始日期",
            "First day of the training",
        ),
        f(
            "hours",
            "学时",
            Kind::Count { min: 1 },
            true,
            "培训学时",
            "Training hours",
        ),
        f(
            "trainees",
            "参训人数",
            COUNT,
            true,
            "参加培训的人数",
            "Number of trainees",
        ),
        f(
            "certified_primary",
            "初级证书数",
            COUNT,
            true,
            "取得初级（五级）证书人数",
            "Primary (level 5) certificates awarded",
        ),
        f(
            "certified_intermediate",
            "中级证书数",
            COUNT,
            true,
            "取得中级（四级）证书人数",
            "Intermediate (level 4) certificates awarded",
        ),
        f(
            "certified_advanced",
            "高级证书数",
            COUNT,
            true,
            "取得高级（三级）证书人数",
            "Advanced (level 3) certificates awarded",
        ),
        f(
            "subsidy_yuan",
            "补贴金额",
            Kind::Amount,
            false,
            "培训补贴金额（元）",
            "Training subsidy (yuan)",
        ),
    ],
};

pub const ORIGINS: &[Choice] = &[
    c("resident", "社区居民"),
    c("rural_migrant", "农村转移劳动力"),
    c("poverty_alleviated", "脱贫人口"),
    c("graduate", "高校毕业生"),
    c("other", "其他"),
];

pub const SKILL_LEVELS: &[Choice] = &[
    c("none", "无"),
    c("level5", "五级"),
    c("level4", "四级"),
    c("level3", "三级"),
    c("level2", "二级"),
    c("level1", "一级"),
];

pub const WORKERS: Dataset = Dataset {
    max_rows: EXCEL_SHEET_ROWS,
    name: "workers",
    zh: "家政服务人员",
    en: "Home-service workers",
    key: "id_number",
    region_field: "community_code",
    openness: Openness::Closed,
    at_most: &[],
    fields: &[
        f(
            "id_number",
            "身份证号",
            Kind::IdNumber,
            true,
            "18位居民身份证号码，入库前以密钥哈希替换，不保存原值",
            "18-character resident ID number; replaced by a keyed hash at ingest, never stored",
        ),
        f(
            "credit_code",
            "所属企业",
            Kind::CreditCode,
            true,
            "所属家政企业统一社会信用代码",
            "Credit code of the employing enterprise",
        ),
        f(
            "community_code",
            "服务社区代码",
            Kind::CommunityCode,
            true,
            "主要服务社区的12位代码",
            "12-digit code of the community served",
        ),
        f(
            "origin",
            "来源",
            Kind::Enum { choices: ORIGINS },
            true,
            "社区居民、农村转移劳动力、脱贫人口、高校毕业生、其他",
            "Where the worker comes from",
        ),
        f(
            "has_service_card",
            "持家政服务证",
            Kind::Bool,
            true,
            "是否持家政上门服务证（是/否）",
            "Holds a home-service card (yes/no)",
        ),
        f(
            "skill_level",
            "职业技能等级",
            Kind::Enum {
                choices: SKILL_LEVELS,
            },
            true,
            "无、五级至一级",
            "Vocational skill level",
        ),
        f(
            "insured",
            "商业保险",
            Kind::Bool,
            true,
            "是否购买家政服务商业保险（是/否）",
            "Covered by commercial insurance (yes/no)",
        ),
        f(
            "health_checked",
            "已体检",
            Kind::Bool,
            true,
            "是否已体检（是/否）",
            "Had a health check (yes/no)",
        ),
    ],
};

pub const SHOPS: Dataset = Dataset {
    max_rows: 100_000,
    name: "shops",
    zh: "社区家政小店",
    en: "Community home-service shops",
    key: "shop_id",
    region_field: "community_code",
    openness: Openness::Records,
    at_most: &[],
    fields: &[
        f(
            "shop_id",
            "小店编号",
            ID_TEXT,
            true,
            "本地区内唯一的小店编号",
            "Shop number, unique within the region",
        ),
        f(
            "community_code",
            "社区代码",
            Kind::CommunityCode,
            true,
            "小店所在社区的12位代码",
            "12-digit code of the community",
        ),
        f(
            "owner_graduate",
            "店主为高校毕业生",
            Kind::Bool,
            true,
            "店主是否为高校毕业生（是/否）",
            "The owner is a college graduate (yes/no)",
        ),
        f(
            "partner_credit_code",
            "加盟企业统一社会信用代码",
            Kind::CreditCode,
            false,
            "加盟的龙头家政企业，可不填",
            "Credit code of the franchisor, if any",
        ),
        f(
            "online",
            "线上经营",
            Kind::Bool,
            true,
            "是否线上经营（是/否）",
            "Operates online (yes/no)",
        ),
        f(
            "opened_on",
            "开业日期",
            Kind::Date,
            true,
            "小店开业日期",
            "Date the shop opened",
        ),
    ],
};

pub const COMPLAINT_CATEGORIES: &[Choice] = &[
    c("quality", "服务质量"),
    c("price", "价格"),
    c("safety", "安全"),
    c("conduct", "人员行为"),
    c("contract", "合同"),
    c("other", "其他"),
];

pub const COMPLAINTS: Dataset = Dataset {
    max_rows: 200_000,
    name: "complaints",
    zh: "投诉",
    en: "Complaints",
    key: "complaint_id",
    region_field: "community_code",
    openness: Openness::Aggregates,
    at_most: &[],
    fields: &[
        f(
            "complaint_id",
            "投诉编号",
            ID_TEXT,
            true,
            "本地区内唯一的投诉编号",
            "Complaint number, unique within the region",
        ),
        f(
            "credit_code",
            "被投诉企业",
            Kind::CreditCode,
            true,
            "被投诉家政企业统一社会信用代码",
            "Credit code of the enterprise complained about",
        ),
        f(
            "community_code",
            "社区代码",
            Kind::CommunityCode,
            true,
            "投诉发生社区的12位代码",
            "12-digit code of the community",
        ),
        f(
            "received_on",
            "受理日期",
            Kind::Date,
            true,
            "投诉受理日期",
            "Date the complaint was received",
        ),
        f(
            "category",
            "类别",
            Kind::Enum {
                choices: COMPLAINT_CATEGORIES,
            },
            true,
            "服务质量、价格、安全、人员行为、合同、其他",
            "Category of the complaint",
        ),
        f(
            "resolved",
            "是否办结",
            Kind::Bool,
            true,
            "是否已办结（是/否）",
            "Resolved (yes/no)",
        ),
    ],
};

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
