//! Region names in Hanyu Pinyin, for English pages and for searching by Pinyin: `乌兰浩特市` →
//! `Wulanhaote Shi`, `兴安盟` → `Xing'an Meng`. The syllables come from the `pinyin` crate (the
//! common reading of each character, without tones); the administrative suffix is written
//! apart, as the national standard for place names (GB/T 17693) does.

use pinyin::{ToPinyin, ToPinyinMulti};

use super::{Level, Region, RegionTree};

/// Suffixes written as their own word, longest first so `自治区` wins over `区`.
const SUFFIXES: [&str; 20] = [
    "特别行政区",
    "自治区",
    "自治州",
    "自治县",
    "自治旗",
    "街道办事处",
    "街道",
    "地区",
    "林区",
    "苏木",
    "省",
    "市",
    "盟",
    "州",
    "县",
    "旗",
    "区",
    "镇",
    "乡",
    "嘎查",
];

/// The syllables of `text`, lower case; characters without a reading (digits, Latin letters)
/// are kept as they are.
fn syllables(text: &str) -> Vec<String> {
    text.chars()
        .zip(text.to_pinyin())
        .map(|(c, p)| match p {
            Some(p) => p.plain().to_string(),
            None => c.to_lowercase().to_string(),
        })
        .collect()
}

/// Syllables joined into one word, with an apostrophe before a syllable that starts with a
/// vowel (`Xing'an`, not `Xingan`), capitalised.
fn word(text: &str) -> String {
    let mut out = String::new();
    for syllable in syllables(text) {
        if !out.is_empty() && syllable.starts_with(['a', 'o', 'e']) {
            out.push('\'');
        }
        out.push_str(&syllable);
    }
    let mut chars = out.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => out,
    }
}

/// A region's name in Pinyin: the proper name as one word, the suffix apart. The country is
/// not a place name (全国 is "the whole country"): `China`.
pub fn romanize(name: &str) -> String {
    if name == super::COUNTRY_NAME {
        return "China".to_string();
    }
    match SUFFIXES.iter().find_map(|s| {
        name.strip_suffix(s)
            .filter(|rest| !rest.is_empty())
            .map(|rest| (rest, *s))
    }) {
        Some((proper, suffix)) => format!("{} {}", word(proper), word(suffix)),
        None => word(name),
    }
}

/// Every reading of each character of a name (`重` is both `zhong` and `chong`), so that a
/// search finds 重庆 by `chongqing` although [`romanize`] writes the common reading.
fn readings(name: &str) -> Vec<Vec<&'static str>> {
    name.chars()
        .map(|c| {
            let mut buf = [0u8; 4];
            let one: &str = c.encode_utf8(&mut buf);
            match one.to_pinyin_multi().next().flatten() {
                Some(multi) => multi.into_iter().map(|p| p.plain()).collect(),
                None => Vec::new(),
            }
        })
        .collect()
}

/// Whether `query` spells the characters from the first on, one reading each: all of them
/// (`whole`), or as far as it goes, ending anywhere in a syllable.
fn spells(chars: &[Vec<&str>], query: &str, whole: bool) -> bool {
    let Some((first, rest)) = chars.split_first() else {
        return query.is_empty();
    };
    if query.is_empty() {
        return !whole;
    }
    first.iter().any(|r| match query.strip_prefix(r) {
        Some(left) => spells(rest, left, whole),
        None => !whole && r.starts_with(query),
    })
}

/// Whether `query` gives the initials of the characters from the first on.
fn initials(chars: &[Vec<&str>], query: &str) -> bool {
    let mut letters = query.chars();
    chars
        .iter()
        .zip(letters.by_ref())
        .all(|(readings, letter)| readings.iter().any(|r| r.starts_with(letter)))
        && query.chars().count() <= chars.len()
}

/// How a name matches a Latin query: `Some(true)` when the query is the whole name in
/// Pinyin, `Some(false)` when it is part of it or its initials, `None` otherwise.
fn pinyin_match(name: &str, query: &str) -> Option<bool> {
    let chars = readings(name);
    if spells(&chars, query, true) {
        return Some(true);
    }
    let part = (0..chars.len()).any(|start| spells(&chars[start..], query, false));
    (part || initials(&chars, query)).then_some(false)
}

/// A query as the keys are written: lower case, without spaces or apostrophes.
pub fn normalise_query(query: &str) -> String {
    query
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\'' && *c != '’')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Regions down to the streets whose name contains `query` (Chinese), or whose Pinyin contains
/// it or whose initials start with it (`xingan`, `wlht`): whole names first, then the coarser
/// levels, at most `limit`.
pub fn search<'t>(tree: &'t RegionTree, query: &str, limit: usize) -> Vec<&'t Region> {
    let query = query.trim();
    let latin = normalise_query(query);
    if query.is_empty() {
        return Vec::new();
    }
    let ascii = latin.is_ascii();
    let mut found: Vec<(bool, Level, &Region)> = tree
        .iter()
        .filter(|r| Level::PUBLISHED.contains(&r.level))
        .filter_map(|r| {
            let whole = if r.name.contains(query) {
                r.name == query
            } else if ascii && latin.len() >= 2 {
                pinyin_match(&r.name, &latin)?
            } else {
                return None;
            };
            Some((!whole, r.level, r))
        })
        .collect();
    found.sort_by(|a, b| (a.0, a.1, a.2.prefix.as_str()).cmp(&(b.0, b.1, b.2.prefix.as_str())));
    found.into_iter().take(limit).map(|(_, _, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_as_place_names() {
        assert_eq!(romanize("乌兰浩特市"), "Wulanhaote Shi");
        assert_eq!(romanize("兴安盟"), "Xing'an Meng");
        assert_eq!(romanize("内蒙古自治区"), "Neimenggu Zizhiqu");
        assert_eq!(romanize("科尔沁右翼前旗"), "Ke'erqinyouyiqian Qi");
        assert_eq!(romanize("市辖区"), "Shixia Qu");
        assert_eq!(romanize("北京市"), "Beijing Shi");
        assert_eq!(romanize("全国"), "China");
    }

    #[test]
    fn matches_syllables_initials_and_every_reading() {
        assert_eq!(pinyin_match("乌兰浩特市", "wulanhaoteshi"), Some(true));
        assert_eq!(pinyin_match("乌兰浩特市", "haote"), Some(false));
        assert_eq!(pinyin_match("乌兰浩特市", "wulanh"), Some(false));
        assert_eq!(pinyin_match("乌兰浩特市", "wlhts"), Some(false));
        assert_eq!(
            pinyin_match("乌兰浩特市", "anhao"),
            None,
            "from a syllable's start"
        );
        // The common reading is what romanize writes; the search knows the others.
        assert_eq!(romanize("重庆市"), "Zhongqing Shi");
        assert_eq!(pinyin_match("重庆市", "chongqingshi"), Some(true));
        assert_eq!(pinyin_match("厦门市", "xiamen"), Some(false));
        assert_eq!(pinyin_match("长春市", "changchun"), Some(false));
        assert_eq!(normalise_query("Xing'an Meng"), "xinganmeng");
    }

    #[test]
    fn finds_regions_by_chinese_pinyin_and_initials() {
        let tree = RegionTree::from_units(
            [
                ("15", "内蒙古自治区"),
                ("1522", "兴安盟"),
                ("152201", "乌兰浩特市"),
                ("152202", "阿尔山市"),
                ("152201001", "和平街道"),
                ("152201001001", "和平社区居委会"),
            ]
            .map(|(code, name)| (code.to_string(), name.to_string())),
        );
        let names = |q: &str| -> Vec<String> {
            search(&tree, q, 10)
                .iter()
                .map(|r| r.name.clone())
                .collect()
        };
        assert_eq!(names("兴安"), ["兴安盟"]);
        assert_eq!(names("xingan"), ["兴安盟"]);
        assert_eq!(names("Xing'an Meng"), ["兴安盟"]);
        assert_eq!(names("wlht"), ["乌兰浩特市"]);
        assert_eq!(
            names("和平"),
            ["和平街道"],
            "village-level units are not searched"
        );
        assert_eq!(names("shanshi"), ["阿尔山市"]);
        assert_eq!(names("shi"), ["乌兰浩特市", "阿尔山市"]);
        assert_eq!(names("乌兰浩特市"), ["乌兰浩特市"]);
        assert!(names("x").is_empty(), "one Latin letter matches too much");
        assert!(names(" ").is_empty());
    }
}
