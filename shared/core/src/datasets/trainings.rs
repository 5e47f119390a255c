//! Home-service trainings in communities (家政培训进社区): its fields and their choices, one line per field.

use super::{AtMost, COUNT, Choice, Dataset, ID_TEXT, Kind, Openness, c, f};

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

#[rustfmt::skip]
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
        f("training_id", "培训编号", ID_TEXT, true, "本地区内唯一的培训编号", "Training number, unique within the region"),
        f("community_code", "社区代码", Kind::CommunityCode, true, "培训所在社区的12位代码", "12-digit code of the community"),
        f("organizer", "组织方", Kind::Enum { choices: ORGANIZERS, }, true, "企业、院校、工会、共青团、妇联、行业协会、大篷车、其他", "Who organised the training"),
        f("start_date", "开始日期", Kind::Date, true, "培训开始日期", "First day of the training"),
        f("hours", "学时", Kind::Count { min: 1 }, true, "培训学时", "Training hours"),
        f("trainees", "参训人数", COUNT, true, "参加培训的人数", "Number of trainees"),
        f("certified_primary", "初级证书数", COUNT, true, "取得初级（五级）证书人数", "Primary (level 5) certificates awarded"),
        f("certified_intermediate", "中级证书数", COUNT, true, "取得中级（四级）证书人数", "Intermediate (level 4) certificates awarded"),
        f("certified_advanced", "高级证书数", COUNT, true, "取得高级（三级）证书人数", "Advanced (level 3) certificates awarded"),
        f("subsidy_yuan", "补贴金额", Kind::Amount, false, "培训补贴金额（元）", "Training subsidy (yuan)"),
    ],
};
