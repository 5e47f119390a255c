use deltalake::arrow::array::AsArray;

use super::*;
use crate::datasets::{ENTERPRISES, TRAININGS, WORKERS};
use crate::regions::RegionTree;
use crate::samples::synth::{Rng, credit_code, id_number};
use crate::sheets::read_rows;

fn tree() -> RegionTree {
    RegionTree::from_units(
        [
            ("15", "内蒙古自治区"),
            ("1522", "兴安盟"),
            ("152201", "乌兰浩特市"),
            ("152202", "阿尔山市"),
            ("152201001", "爱国街道"),
            ("152201001001", "兴安社区居委会"),
            ("152201001002", "胜利社区居委会"),
            ("152201001201", "某村民委员会"),
        ]
        .map(|(c, n)| (c.to_string(), n.to_string())),
    )
}

fn check(dataset: &'static Dataset, text: &str) -> (Checked, usize) {
    let tree = tree();
    let region = tree.get("152201").unwrap().clone();
    let key = Pseudonymizer::new(&[9; 32]).unwrap();
    let mut v = Validator::new(Context {
        dataset,
        period: "2023H2".parse().unwrap(),
        region: &region,
        regions: &tree,
        submission_id: "s1",
        pseudonymizer: Some(&key),
        enterprises: None,
    })
    .unwrap();
    let mut rows = 0;
    read_rows(text.as_bytes(), &[], &dataset.limits(), |n, cells| {
        if let Some(b) = v.push(n, cells).unwrap() {
            rows += b.num_rows();
        }
    })
    .unwrap();
    let checked = v.finish().unwrap();
    let last: usize = checked.batches.iter().map(|b| b.num_rows()).sum();
    (checked, rows + last)
}

fn codes(c: &Checked) -> Vec<(Option<usize>, String)> {
    c.findings
        .issues
        .iter()
        .map(|i| (i.row, i.code.clone()))
        .collect()
}

#[test]
fn a_clean_file_becomes_one_batch_under_a_title_row() {
    let mut rng = Rng::new(1);
    let (a, b) = (
        credit_code(&mut rng, "152201"),
        credit_code(&mut rng, "152201"),
    );
    let text = format!(
        "乌兰浩特市家政企业名单,,,,,,\n\
         统一社会信用代码,企业名称,注册地区县代码,是否员工制,是否重点联系企业,产教融合型企业,是否龙头企业\n\
         {a},甲公司,152201,是,否,入库培育,否\n\
         {b},乙公司,152201,N,Y,none,0\n"
    );
    let (checked, rows) = check(&ENTERPRISES, &text);
    assert_eq!(codes(&checked), []);
    assert_eq!(checked.header_row, Some(2));
    assert_eq!(rows, 2);
    let batch = &checked.batches[0];
    let ie = batch
        .column_by_name("industry_education")
        .unwrap()
        .as_string::<i32>();
    assert_eq!(ie.value(0), "cultivation");
    let row = batch.column_by_name("source_row").unwrap();
    assert_eq!(
        row.as_primitive::<deltalake::arrow::datatypes::Int64Type>()
            .value(1),
        4
    );
}

#[test]
fn every_problem_is_reported_with_its_row_and_the_file_yields_nothing() {
    let mut rng = Rng::new(2);
    let good = credit_code(&mut rng, "152201");
    let text = format!(
        "credit_code,name,county_code,employee_based,key_contact,industry_education,leading\n\
         {good},甲,152201,是,否,否,否\n\
         {good},乙,152201,是,否,否,否\n\
         ,丙,152202,也许,否,否,否\n"
    );
    let (checked, rows) = check(&ENTERPRISES, &text);
    assert_eq!(
        codes(&checked),
        [
            (Some(3), "duplicate_key".to_string()),
            (Some(4), "required".to_string()),
            (Some(4), "outside_region".to_string()),
            (Some(4), "invalid_bool".to_string()),
        ]
    );
    assert!(checked.batches.is_empty());
    assert_eq!(rows, 0);
    assert_eq!(checked.findings.summary.rows, 3);
}

#[test]
fn community_codes_must_be_communities_that_exist() {
    let text = "培训编号,社区代码,组织方,开始日期,学时,参训人数,初级证书数,中级证书数,高级证书数\n\
                T1,152201001001,大篷车,2023-07-01,16,20,5,5,5\n\
                T2,152201001201,企业,2023-07-01,16,20,0,0,0\n\
                T3,152201001099,企业,2023-07-01,16,20,0,0,0\n\
                T4,15220100100,企业,2023-07-01,16,20,0,0,0\n\
                T5,152201001002,企业,2023-07-01,16,10,6,5,0\n";
    let (checked, _) = check(&TRAININGS, text);
    assert_eq!(
        codes(&checked),
        [
            (Some(3), "not_community".to_string()),
            (Some(4), "unknown_region".to_string()),
            (Some(5), "region_code_format".to_string()),
            (Some(6), "sum_exceeds_total".to_string()),
        ]
    );
    assert!(
        checked.findings.issues[3]
            .message_zh
            .contains("初级证书数+中级证书数+高级证书数")
    );
}

#[test]
fn id_numbers_are_replaced_and_never_shown() {
    let mut rng = Rng::new(3);
    let id = id_number(&mut rng, "152201");
    let company = credit_code(&mut rng, "152201");
    let mut broken = id.clone();
    broken.replace_range(17..18, if id.ends_with('0') { "1" } else { "0" });
    let text = format!(
        "身份证号,所属企业,服务社区代码,来源,持家政服务证,职业技能等级,商业保险,已体检\n\
         {id},{company},152201001001,社区居民,是,四级,是,是\n"
    );
    let (checked, rows) = check(&WORKERS, &text);
    assert_eq!(rows, 1);
    let batch = &checked.batches[0];
    // The keyed hash's 32 bytes, as the lake stores them.
    let stored = batch.column(0).as_binary::<i32>().value(0);
    let key = Pseudonymizer::new(&[9; 32]).unwrap();
    assert_eq!(stored, key.digest(&id));

    let text = format!(
        "{}\n{broken},{company},152201001001,社区居民,是,四级,是,是\n{broken},{company},152201001001,社区居民,是,四级,是,是\n",
        text.lines().next().unwrap()
    );
    let (checked, _) = check(&WORKERS, &text);
    let shown: Vec<_> = checked
        .findings
        .issues
        .iter()
        .filter_map(|i| i.value.clone())
        .collect();
    assert_eq!(codes(&checked)[0].1, "id_number_checksum");
    assert!(shown.iter().all(|v| !v.contains(&broken[6..])), "{shown:?}");
}

#[test]
fn files_without_header_or_rows() {
    let (checked, _) = check(&ENTERPRISES, "");
    assert_eq!(codes(&checked), [(None, "empty_file".to_string())]);
    // The template's header and no rows: a nil return, accepted with a notice.
    let (checked, _) = check(
        &ENTERPRISES,
        "统一社会信用代码,企业名称,注册地区县代码,是否员工制,是否重点联系企业,产教融合型企业,是否龙头企业\n",
    );
    assert_eq!(codes(&checked), [(None, "nil_return".to_string())]);
    assert!(!checked.findings.has_errors());
    let (checked, _) = check(&ENTERPRISES, "a,b,c\n1,2,3\n");
    assert_eq!(codes(&checked), [(None, "no_header".to_string())]);
}

#[test]
fn swapped_columns_never_show_or_store_an_id_number() {
    let mut rng = Rng::new(5);
    let rows: Vec<(String, String)> = (0..10)
        .map(|_| {
            (
                id_number(&mut rng, "152201"),
                credit_code(&mut rng, "152201"),
            )
        })
        .collect();
    // The ID numbers sit under the enterprise header and the other way round.
    let mut text =
        "身份证号,所属企业,服务社区代码,来源,持家政服务证,职业技能等级,商业保险,已体检\n"
            .to_string();
    for (id, company) in &rows {
        text.push_str(&format!(
            "{company},{id},152201001001,社区居民,是,四级,是,是\n"
        ));
    }
    let (checked, stored) = check(&WORKERS, &text);
    assert_eq!(stored, 0);
    assert!(checked.findings.has_errors());
    let report = serde_json::to_string(&checked.findings.issues).unwrap();
    for (id, _) in &rows {
        assert!(!report.contains(id.as_str()), "{id} in {report}");
        assert!(!report.contains(&id[..17]), "{id} in {report}");
    }
    assert!(report.contains("id_number_out_of_place"));
}

#[test]
fn an_id_number_in_a_text_or_number_field_is_refused() {
    let mut rng = Rng::new(6);
    let id = id_number(&mut rng, "152201");
    let company = credit_code(&mut rng, "152201");
    let text = format!(
        "统一社会信用代码,企业名称,注册地区县代码,是否员工制,是否重点联系企业,产教融合型企业,是否龙头企业\n\
         {company},张三{id},152201,是,否,否,否\n"
    );
    let (checked, stored) = check(&ENTERPRISES, &text);
    assert_eq!(stored, 0);
    assert_eq!(
        codes(&checked),
        [(Some(2), "id_number_out_of_place".to_string())]
    );
    assert_eq!(
        checked.findings.issues[0].value.as_deref(),
        Some(format!("张三{}************", &id[..6]).as_str())
    );
}

/// Values a county file might hold in any column: the right kinds, the wrong ones, ID numbers
/// (new and old form) and junk.
fn any_value() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::{Just, Strategy};
    let mut rng = Rng::new(11);
    let ids: Vec<String> = (0..8).map(|_| id_number(&mut rng, "152201")).collect();
    let codes: Vec<String> = (0..4).map(|_| credit_code(&mut rng, "152201")).collect();
    proptest::prop_oneof![
        proptest::sample::select(ids.clone()),
        proptest::sample::select(ids).prop_map(|id| format!("张{id}")),
        Just("150105850315123".to_string()),
        proptest::sample::select(codes),
        proptest::sample::select(vec![
            "152201001001",
            "152201001201",
            "152201",
            "152202",
            "是",
            "否",
            "独营",
            "嵌入",
            "社区居民",
            "四级",
            "保洁、养老",
            "2023-06-30",
            "2024-01-01",
            "45082",
            "12",
            "-3",
            "1,234.50",
            "",
            " ",
            "=1+2",
        ])
        .prop_map(str::to_string),
        "[\\PC]{0,24}",
        "[0-9X]{14,19}",
    ]
}

/// Checks a file and returns its findings and every batch it produced.
fn check_all(dataset: &'static Dataset, text: &str) -> (Checked, Vec<RecordBatch>) {
    check_on(dataset, text, 0)
}

/// [`check_all`] with the blocks checked on `workers` threads (none: on this one).
fn check_on(dataset: &'static Dataset, text: &str, workers: usize) -> (Checked, Vec<RecordBatch>) {
    let tree = tree();
    let region = tree.get("152201").unwrap().clone();
    let key = Pseudonymizer::new(&[9; 32]).unwrap();
    let ctx = Context {
        dataset,
        period: "2023H2".parse().unwrap(),
        region: &region,
        regions: &tree,
        submission_id: "s1",
        pseudonymizer: Some(&key),
        enterprises: None,
    };
    std::thread::scope(|scope| {
        let lanes = match workers {
            0 => Lanes::inline(),
            n => Lanes::spawn(scope, n),
        };
        let mut v = Validator::with_lanes(ctx, lanes).unwrap();
        let mut batches = Vec::new();
        let _ = read_rows(text.as_bytes(), &[], &dataset.limits(), |n, cells| {
            if let Some(b) = v.push(n, cells).unwrap() {
                batches.push(b);
            }
        });
        let mut checked = v.finish().unwrap();
        batches.append(&mut checked.batches);
        (checked, batches)
    })
}

/// A workers file of several blocks: the same findings, in the same order, and the same rows
/// whether its blocks are checked on this thread or on two others; a key repeated across
/// blocks is found either way.
#[test]
fn blocks_checked_on_other_threads_give_the_same_result() {
    let mut rng = Rng::new(5);
    let code = credit_code(&mut rng, "152201");
    let mut ids: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    while ids.len() < 3 * BATCH_ROWS {
        let id = id_number(&mut rng, "152201");
        if seen.insert(id.clone()) {
            ids.push(id);
        }
    }
    let row = |id: &str| format!("{id},{code},152201001001,社区居民,是,四级,是,是\n");
    let header = "身份证号,所属企业,服务社区代码,来源,持家政服务证,职业技能等级,商业保险,已体检\n";
    let clean: String = std::iter::once(header.to_string())
        .chain(ids.iter().map(|id| row(id)))
        .collect();
    let (inline, inline_batches) = check_on(&WORKERS, &clean, 0);
    let (lanes, lanes_batches) = check_on(&WORKERS, &clean, 2);
    assert!(!inline.findings.has_errors());
    assert_eq!(inline.findings.summary, lanes.findings.summary);
    assert_eq!(inline_batches, lanes_batches);
    let rows: usize = lanes_batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, 3 * BATCH_ROWS);

    // Row 2's worker again at the end, a skill level that does not exist in the second block.
    let mut bad = clean.clone();
    bad.push_str(&row(&ids[0]));
    let bad = bad.replacen(
        &row(&ids[BATCH_ROWS + 7]),
        &row(&ids[BATCH_ROWS + 7]).replace("四级", "九级"),
        1,
    );
    let (inline, _) = check_on(&WORKERS, &bad, 0);
    let (lanes, _) = check_on(&WORKERS, &bad, 2);
    let duplicate = (Some(3 * BATCH_ROWS + 2), "duplicate_key".to_string());
    let invalid = (Some(BATCH_ROWS + 9), "invalid_choice".to_string());
    assert_eq!(codes(&inline), [invalid.clone(), duplicate.clone()]);
    assert_eq!(codes(&lanes), codes(&inline));
    assert_eq!(inline.findings.summary, lanes.findings.summary);
    assert_eq!(
        lanes.findings.issues[1].value, None,
        "an ID number is never shown"
    );
    assert!(lanes.batches.is_empty() && inline.batches.is_empty());
}

/// Wide rows make smaller blocks: a block is bounded by its bytes as well as its rows.
#[test]
fn a_block_of_wide_rows_is_bounded_by_its_bytes() {
    let mut rng = Rng::new(6);
    let code = credit_code(&mut rng, "152201");
    // A note in an unnamed column after the fields: read, bounded, never stored.
    let note = "注".repeat(WORKERS.limits().max_cell_bytes / 3 - 1);
    let mut text =
        "身份证号,所属企业,服务社区代码,来源,持家政服务证,职业技能等级,商业保险,已体检\n"
            .to_string();
    let mut seen = HashSet::new();
    while seen.len() < 3_000 {
        let id = id_number(&mut rng, "152201");
        if seen.insert(id.clone()) {
            text.push_str(&format!(
                "{id},{code},152201001001,社区居民,是,四级,是,是,{note}\n"
            ));
        }
    }
    let (checked, batches) = check_on(&WORKERS, &text, 2);
    assert!(
        !checked.findings.has_errors(),
        "{:?}",
        checked.findings.issues
    );
    let rows: Vec<usize> = batches.iter().map(RecordBatch::num_rows).collect();
    assert_eq!(rows.iter().sum::<usize>(), 3_000);
    let widest = note.len() * rows[0];
    assert!(
        rows.len() > 1 && widest <= BLOCK_BYTES + note.len() * 2,
        "{rows:?}"
    );
}

fn csv_cell(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

proptest::proptest! {
    #![proptest_config(crate::fuzz_config(2000))]

    /// Whatever a file of any dataset holds and wherever, the validator neither panics nor
    /// lets an ID number into a report or a stored batch.
    #[test]
    fn fuzz_validator_never_shows_or_stores_an_id_number(
        which in 0..crate::datasets::ALL.len(),
        order in proptest::collection::vec(0usize..20, 0..14),
        rows in proptest::collection::vec(proptest::collection::vec(any_value(), 0..14), 0..12),
    ) {
        let dataset = crate::datasets::ALL[which];
        let header: Vec<String> = order
            .iter()
            .map(|i| dataset.fields.get(*i).map_or("备注".to_string(), |f| f.zh.to_string()))
            .collect();
        let mut text = header.join(",") + "\n";
        for row in &rows {
            text.push_str(&row.iter().map(|v| csv_cell(v)).collect::<Vec<_>>().join(","));
            text.push('\n');
        }
        let (checked, batches) = check_all(dataset, &text);
        for issue in &checked.findings.issues {
            for shown in [&issue.value, &issue.column].into_iter().flatten() {
                proptest::prop_assert!(
                    crate::identifiers::find_id_numbers(shown).is_empty(),
                    "{shown} in a report"
                );
            }
        }
        for batch in &batches {
            for column in batch.columns() {
                let Ok(text) = deltalake::arrow::compute::cast(column, &deltalake::arrow::datatypes::DataType::Utf8) else {
                    continue;
                };
                for value in text.as_string::<i32>().iter().flatten() {
                    proptest::prop_assert!(
                        crate::identifiers::find_id_numbers(value).is_empty(),
                        "{value} stored"
                    );
                }
            }
        }
    }
}
