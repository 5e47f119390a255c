//! Community home-service outlets (社区家政服务网点): its fields and their choices, one line per field.

use super::{Choice, Dataset, ID_TEXT, Kind, Openness, c, f};

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

#[rustfmt::skip]
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
        f("outlet_id", "网点编号", ID_TEXT, true, "本地区内唯一的网点编号", "Outlet number, unique within the region"),
        f("credit_code", "运营企业统一社会信用代码", Kind::CreditCode, true, "运营该网点的家政企业统一社会信用代码", "Credit code of the operating enterprise"),
        f("community_code", "所在社区代码", Kind::CommunityCode, true, "网点所在社区（居委会）的12位统计用区划代码", "12-digit code of the community (residents' committee)"),
        f("mode", "进驻方式", Kind::Enum { choices: MODES }, true, "独营、嵌入、合作、线上", "How the enterprise entered the community"),
        f("carrier", "载体", Kind::Enum { choices: CARRIERS }, true, "网点依托的载体", "The premises or platform the outlet uses"),
        f("services", "服务项目", Kind::EnumList { choices: SERVICES }, true, "可多选，用“;”或“、”分隔", "One or more services, separated by ; or 、"),
        f("opened_on", "开业日期", Kind::Date, true, "网点开业日期", "Date the outlet opened"),
        f("area_m2", "面积", Kind::Amount, false, "网点使用面积（平方米），线上网点可不填", "Floor area in square metres; blank for online outlets"),
        f("rent_reduced", "减免租金", Kind::Bool, true, "是否享受租金减免（是/否）", "Rent reduced or waived (yes/no)"),
        f("residential_utility", "水电居民价", Kind::Bool, true, "水电费是否按居民价格缴纳（是/否）", "Water and power at residential prices (yes/no)"),
        f("chain", "连锁经营", Kind::Bool, true, "是否连锁经营（是/否）", "Part of a chain (yes/no)"),
        f("subsidy_yuan", "补助金额", Kind::Amount, false, "本期获得的建设或运营补助（元）", "Construction or operating subsidy received this period (yuan)"),
        f("dual_use", "平急结合", Kind::Bool, true, "是否具备平急结合功能（是/否）", "Can switch to emergency use (yes/no)"),
    ],
};
