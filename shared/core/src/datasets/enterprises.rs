//! Home-service enterprises (家政企业): its fields and their choices, one line per field.

use super::{Choice, Dataset, Kind, Openness, TEXT, c, f};

pub const INDUSTRY_EDUCATION: &[Choice] = &[
    c("none", "否"),
    c("cultivation", "入库培育"),
    c("certified", "已认证"),
];

#[rustfmt::skip]
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
        f("credit_code", "统一社会信用代码", Kind::CreditCode, true, "18位统一社会信用代码，按GB 32100校验", "18-character unified social credit code, GB 32100 check character"),
        f("name", "企业名称", TEXT, true, "营业执照上的企业名称", "Registered name of the enterprise"),
        f("county_code", "注册地区县代码", Kind::CountyCode, true, "注册地所在旗县市区的6位代码", "6-digit code of the county of registration"),
        f("employee_based", "是否员工制", Kind::Bool, true, "是否为员工制家政企业（是/否）", "Employs its workers directly (yes/no)"),
        f("key_contact", "是否重点联系企业", Kind::Bool, true, "是否列入省级重点联系企业（是/否）", "On the province's list of key contact enterprises (yes/no)"),
        f("industry_education", "产教融合型企业", Kind::Enum { choices: INDUSTRY_EDUCATION, }, true, "产教融合型企业建设培育库情况：否、入库培育、已认证", "Industry-education integration status: none, cultivation, certified"),
        f("leading", "是否龙头企业", Kind::Bool, true, "是否为家政龙头企业（是/否）", "A leading enterprise (yes/no)"),
    ],
};
