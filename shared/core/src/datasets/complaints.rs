//! Complaints (投诉): its fields and their choices, one line per field.

use super::{Choice, Dataset, ID_TEXT, Kind, Openness, c, f};

pub const COMPLAINT_CATEGORIES: &[Choice] = &[
    c("quality", "服务质量"),
    c("price", "价格"),
    c("safety", "安全"),
    c("conduct", "人员行为"),
    c("contract", "合同"),
    c("other", "其他"),
];

#[rustfmt::skip]
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
        f("complaint_id", "投诉编号", ID_TEXT, true, "本地区内唯一的投诉编号", "Complaint number, unique within the region"),
        f("credit_code", "被投诉企业", Kind::CreditCode, true, "被投诉家政企业统一社会信用代码", "Credit code of the enterprise complained about"),
        f("community_code", "社区代码", Kind::CommunityCode, true, "投诉发生社区的12位代码", "12-digit code of the community"),
        f("received_on", "受理日期", Kind::Date, true, "投诉受理日期", "Date the complaint was received"),
        f("category", "类别", Kind::Enum { choices: COMPLAINT_CATEGORIES, }, true, "服务质量、价格、安全、人员行为、合同、其他", "Category of the complaint"),
        f("resolved", "是否办结", Kind::Bool, true, "是否已办结（是/否）", "Resolved (yes/no)"),
    ],
};
