//! Home-service workers (家政服务人员): its fields and their choices, one line per field.

use super::{Choice, Dataset, EXCEL_SHEET_ROWS, Kind, Openness, c, f};

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

#[rustfmt::skip]
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
        f("id_number", "身份证号", Kind::IdNumber, true, "18位居民身份证号码，入库前以密钥哈希替换，不保存原值", "18-character resident ID number; replaced by a keyed hash at ingest, never stored"),
        f("credit_code", "所属企业", Kind::CreditCode, true, "所属家政企业统一社会信用代码", "Credit code of the employing enterprise"),
        f("community_code", "服务社区代码", Kind::CommunityCode, true, "主要服务社区的12位代码", "12-digit code of the community served"),
        f("origin", "来源", Kind::Enum { choices: ORIGINS }, true, "社区居民、农村转移劳动力、脱贫人口、高校毕业生、其他", "Where the worker comes from"),
        f("has_service_card", "持家政服务证", Kind::Bool, true, "是否持家政上门服务证（是/否）", "Holds a home-service card (yes/no)"),
        f("skill_level", "职业技能等级", Kind::Enum { choices: SKILL_LEVELS, }, true, "无、五级至一级", "Vocational skill level"),
        f("insured", "商业保险", Kind::Bool, true, "是否购买家政服务商业保险（是/否）", "Covered by commercial insurance (yes/no)"),
        f("health_checked", "已体检", Kind::Bool, true, "是否已体检（是/否）", "Had a health check (yes/no)"),
    ],
};
