//! Community home-service shops (社区家政小店): its fields and their choices, one line per field.

use super::{Dataset, ID_TEXT, Kind, Openness, f};

#[rustfmt::skip]
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
        f("shop_id", "小店编号", ID_TEXT, true, "本地区内唯一的小店编号", "Shop number, unique within the region"),
        f("community_code", "社区代码", Kind::CommunityCode, true, "小店所在社区的12位代码", "12-digit code of the community"),
        f("owner_graduate", "店主为高校毕业生", Kind::Bool, true, "店主是否为高校毕业生（是/否）", "The owner is a college graduate (yes/no)"),
        f("partner_credit_code", "加盟企业统一社会信用代码", Kind::CreditCode, false, "加盟的龙头家政企业，可不填", "Credit code of the franchisor, if any"),
        f("online", "线上经营", Kind::Bool, true, "是否线上经营（是/否）", "Operates online (yes/no)"),
        f("opened_on", "开业日期", Kind::Date, true, "小店开业日期", "Date the shop opened"),
    ],
};
