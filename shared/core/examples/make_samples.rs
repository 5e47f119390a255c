//! Regenerates the sample submissions under `sample-data/submissions` and the bad files under
//! `tests/fixtures/bad` from the shipped region subset. Deterministic: running it again
//! rewrites identical files.
//!
//!     cargo run -p jiazheng-core --example make_samples

use std::path::Path;

use chrono::NaiveDate;
use jiazheng_core::periods::Period;
use jiazheng_core::regions::RegionTree;
use jiazheng_core::regions::read_nbs_dir;
use jiazheng_core::samples::synth::{self, Datum, Sheet, Style};

/// The six banners and cities of Xing'an League, each sending its files its own way (by
/// dataset: enterprises, outlets, then the other four).
const COUNTIES: [(&str, [Style; 3]); 6] = [
    ("152201", [Style::Xlsx, Style::CsvUtf8, Style::CsvUtf8]),
    ("152202", [Style::CsvUtf8, Style::CsvUtf8, Style::Xlsx]),
    ("152221", [Style::Xlsx, Style::Xlsx, Style::Xlsx]),
    ("152222", [Style::CsvGbk, Style::CsvGbk, Style::CsvGbk]),
    ("152223", [Style::CsvUtf8, Style::Xlsx, Style::CsvUtf8]),
    ("152224", [Style::Xlsx, Style::CsvGbk, Style::CsvGbk]),
];

/// 阿尔山市 had no complaints in 2023H2 and says so with a nil return (零报送).
const NIL_RETURN: (&str, &str, &str) = ("2023H2", "152202", "complaints");
/// 突泉县 has not sent its workers of 2023H2 yet: the league's workers figures are partial.
const NOT_YET_SENT: (&str, &str, &str) = ("2023H2", "152224", "workers");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tree = read_nbs_dir(&root.join("sample-data/regions-inner-mongolia"))?;
    let out = root.join("sample-data/submissions");
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    for period in ["2023H1", "2023H2"] {
        let period: Period = period.parse()?;
        for (code, [enterprise_style, outlet_style, other_style]) in COUNTIES {
            let county = tree.get(code).ok_or("county missing from the regions")?;
            let dir = out.join(period.to_string()).join(code);
            std::fs::create_dir_all(&dir)?;
            let enterprises = synth::enterprises(county, period, "sample");
            let outlets = synth::outlets(&tree, county, period, &enterprises, "sample");
            let trainings = synth::trainings(&tree, county, period, "sample");
            // Between 20 and 60 workers: some streets fall under the disclosure threshold.
            let size = 20 + county.prefix.bytes().map(usize::from).sum::<usize>() % 41;
            let workers = synth::workers(&tree, county, &enterprises, size, "sample");
            let shops = synth::shops(&tree, county, period, &enterprises, "sample");
            let mut complaints = synth::complaints(&tree, county, period, &enterprises, "sample");
            let here = (period.to_string(), code);
            if (here.0.as_str(), here.1, "complaints") == NIL_RETURN {
                complaints.rows.clear();
            }
            let sheets = [
                (&enterprises, enterprise_style),
                (&outlets, outlet_style),
                (&trainings, other_style),
                (&workers, other_style),
                (&shops, other_style),
                (&complaints, other_style),
            ];
            for (sheet, style) in sheets {
                if (here.0.as_str(), here.1, sheet.dataset.name) == NOT_YET_SENT {
                    continue;
                }
                let title = format!(
                    "{}{}{}情况统计表",
                    county.name,
                    period_zh(period),
                    sheet.dataset.zh
                );
                let ext = if style == Style::Xlsx { "xlsx" } else { "csv" };
                let path = dir.join(format!("{}.{ext}", sheet.dataset.name));
                std::fs::write(&path, synth::write(sheet, style, &title)?)?;
                println!("{} ({} rows)", path.display(), sheet.rows.len());
            }
        }
    }
    write_bad_files(&root, &tree)?;
    Ok(())
}

fn period_zh(p: Period) -> String {
    format!("{}年{}半年", p.year, if p.half == 1 { "上" } else { "下" })
}

/// One bad file of the corpus: its name, how it is submitted and the codes it must produce.
struct Bad {
    file: String,
    dataset: &'static str,
    region: &'static str,
    codes: &'static str,
    bytes: Vec<u8>,
}

/// What goes into the one cell a file gets wrong.
enum Edit {
    Text(&'static str),
    Blank,
    Int(i64),
    /// `(year, month, day)` as a date cell.
    Date(i32, u32, u32),
    /// The text repeated so many times.
    Repeat(&'static str, usize),
    /// A valid credit code of the sheet with its check character changed.
    CreditTypo,
    /// The valid credit code: 17 characters, with O for 0, or a second time.
    CreditShort,
    CreditLetterO,
    CreditCopy,
    /// The same for an ID number.
    IdTypo,
    IdShort,
    IdMonth13,
    IdCopy,
    /// The key of the sheet's first row, a second time.
    KeyCopy,
}

/// Files with one cell wrong: (file, dataset, row, field, the edit, the codes it produces).
#[rustfmt::skip]
const ONE_CELL: &[(&str, &str, usize, &str, Edit, &str)] = &[
    ("enterprises-credit-checksum.csv", "enterprises", 2, "credit_code", Edit::CreditTypo, "credit_code_checksum"),
    ("enterprises-credit-short.csv", "enterprises", 0, "credit_code", Edit::CreditShort, "credit_code_format"),
    ("enterprises-credit-letter-o.csv", "enterprises", 1, "credit_code", Edit::CreditLetterO, "credit_code_format"),
    ("enterprises-county-outside.csv", "enterprises", 0, "county_code", Edit::Text("152202"), "outside_region"),
    ("enterprises-county-format.csv", "enterprises", 0, "county_code", Edit::Text("15220"), "region_code_format"),
    ("enterprises-bool.csv", "enterprises", 3, "employee_based", Edit::Text("也许"), "invalid_bool"),
    ("enterprises-industry-choice.csv", "enterprises", 1, "industry_education", Edit::Text("国家级"), "invalid_choice"),
    ("enterprises-duplicate.csv", "enterprises", 4, "credit_code", Edit::CreditCopy, "duplicate_key"),
    ("enterprises-missing-name.csv", "enterprises", 0, "name", Edit::Blank, "required"),
    ("enterprises-name-too-long.csv", "enterprises", 0, "name", Edit::Repeat("家", 300), "too_long"),
    ("enterprises-huge-cell.csv", "enterprises", 1, "name", Edit::Repeat("巨", 100_000), "row_too_long"),
    ("outlets-outside-region.csv", "outlets", 0, "community_code", Edit::Text("152202001001"), "outside_region"),
    ("outlets-not-community.csv", "outlets", 0, "community_code", Edit::Text("152201008201"), "not_community"),
    ("outlets-unknown-community.csv", "outlets", 0, "community_code", Edit::Text("152201001099"), "unknown_region"),
    ("outlets-mode.csv", "outlets", 1, "mode", Edit::Text("加盟"), "invalid_choice"),
    ("outlets-service.csv", "outlets", 1, "services", Edit::Text("保洁、洗车"), "invalid_choice"),
    ("outlets-future-date.csv", "outlets", 3, "opened_on", Edit::Date(2024, 3, 1), "date_after_period"),
    ("outlets-impossible-date.csv", "outlets", 3, "opened_on", Edit::Text("2023-02-30"), "invalid_date"),
    ("outlets-negative-area.csv", "outlets", 2, "area_m2", Edit::Text("-5"), "invalid_amount"),
    ("outlets-area-three-decimals.csv", "outlets", 2, "area_m2", Edit::Text("12.345"), "invalid_amount"),
    ("outlets-duplicate-id.csv", "outlets", 5, "outlet_id", Edit::KeyCopy, "duplicate_key"),
    ("outlets-missing-carrier.csv", "outlets", 5, "carrier", Edit::Blank, "required"),
    ("trainings-hours-zero.csv", "trainings", 0, "hours", Edit::Int(0), "below_minimum"),
    ("trainings-trainees-in-words.csv", "trainings", 0, "trainees", Edit::Text("二十"), "invalid_number"),
    ("trainings-trainees-fraction.csv", "trainings", 0, "trainees", Edit::Text("12.5"), "invalid_number"),
    ("trainings-certificates-exceed.csv", "trainings", 1, "certified_primary", Edit::Int(500), "sum_exceeds_total"),
    ("workers-id-checksum.csv", "workers", 0, "id_number", Edit::IdTypo, "id_number_checksum"),
    ("workers-id-short.csv", "workers", 1, "id_number", Edit::IdShort, "id_number_format"),
    ("workers-id-birth-month-13.csv", "workers", 2, "id_number", Edit::IdMonth13, "id_number_format"),
    ("workers-duplicate-id.csv", "workers", 3, "id_number", Edit::IdCopy, "duplicate_key"),
    ("workers-skill-level.csv", "workers", 4, "skill_level", Edit::Text("特级"), "invalid_choice"),
    ("shops-partner-checksum.csv", "shops", 0, "partner_credit_code", Edit::CreditTypo, "credit_code_checksum"),
    ("shops-opened-future.csv", "shops", 1, "opened_on", Edit::Text("2024年1月2日"), "date_after_period"),
    ("complaints-category.csv", "complaints", 0, "category", Edit::Text("态度"), "invalid_choice"),
    ("complaints-resolved-blank.csv", "complaints", 1, "resolved", Edit::Blank, "required"),
];

/// A code with its last (check) character changed.
fn with_wrong_check(code: &str) -> String {
    let mut wrong = code.to_string();
    let last = wrong.pop().unwrap_or('0');
    wrong.push(if last == '0' { '1' } else { '0' });
    wrong
}

/// The text of a sheet's cell.
fn text_at(sheet: &Sheet, row: usize, field: &str) -> Result<String, Box<dyn std::error::Error>> {
    match sheet.get(row, field) {
        Datum::Text(c) => Ok(c.clone()),
        _ => Err(format!("{field} is not text").into()),
    }
}

/// Files a careless office might send, each with the problems its name says, and the
/// manifest `expected.csv` the corpus test reads.
fn write_bad_files(root: &Path, tree: &RegionTree) -> Result<(), Box<dyn std::error::Error>> {
    let dir = root.join("tests/fixtures/bad");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let period: Period = "2023H2".parse()?;
    let county = tree.get("152201").ok_or("county missing")?;
    let enterprises = synth::enterprises(county, period, "sample");
    let sheets = [
        enterprises.clone(),
        synth::outlets(tree, county, period, &enterprises, "sample"),
        synth::trainings(tree, county, period, "sample"),
        synth::workers(tree, county, &enterprises, 20, "sample"),
        synth::shops(tree, county, period, &enterprises, "sample"),
        synth::complaints(tree, county, period, &enterprises, "sample"),
    ];
    let sheet = |name: &str| {
        sheets
            .iter()
            .find(|s| s.dataset.name == name)
            .cloned()
            .ok_or("sheet")
    };
    let code = text_at(&sheet("enterprises")?, 2, "credit_code")?;
    let id = text_at(&sheet("workers")?, 0, "id_number")?;
    let typo = with_wrong_check(&code);
    let mut bad: Vec<Bad> = Vec::new();
    for (file, dataset, row, field, edit, codes) in ONE_CELL {
        let text = |s: &str| Datum::Text(s.to_string());
        let value = match edit {
            Edit::Text(t) => text(t),
            Edit::Blank => Datum::Blank,
            Edit::Int(n) => Datum::Int(*n),
            Edit::Date(y, m, d) => Datum::Date(NaiveDate::from_ymd_opt(*y, *m, *d).ok_or("date")?),
            Edit::Repeat(t, n) => text(&t.repeat(*n)),
            Edit::CreditTypo => text(&typo),
            Edit::CreditShort => text(&code[..17]),
            Edit::CreditLetterO => text(&format!("O{}", &code[1..])),
            Edit::CreditCopy => text(&code),
            Edit::IdTypo => text(&with_wrong_check(&id)),
            Edit::IdShort => text(&id[..17]),
            Edit::IdMonth13 => text(&format!("{}13{}", &id[..10], &id[12..])),
            Edit::IdCopy => text(&id),
            Edit::KeyCopy => {
                let s = sheet(dataset)?;
                text(&text_at(&s, 0, s.dataset.key)?)
            }
        };
        let mut s = sheet(dataset)?;
        let col = s
            .dataset
            .fields
            .iter()
            .position(|f| f.name == *field)
            .ok_or("field")?;
        s.rows[*row][col] = value;
        let dataset = s.dataset.name;
        bad.push(Bad {
            file: file.to_string(),
            dataset,
            region: "152201",
            codes,
            bytes: synth::write(&s, Style::CsvUtf8, "")?,
        });
    }
    let text = |s: &str| Datum::Text(s.to_string());

    // Whole-file problems.
    let outlets = sheet("outlets")?;
    let mut gbk = outlets.clone();
    gbk.rows[0][1] = text(&typo);
    let raw = |file: &str, dataset: &'static str, codes: &'static str, bytes: Vec<u8>| Bad {
        file: file.into(),
        dataset,
        region: "152201",
        codes,
        bytes,
    };
    bad.push(raw(
        "outlets-gbk-checksum.csv",
        "outlets",
        "credit_code_checksum",
        synth::write(&gbk, Style::CsvGbk, "")?,
    ));
    let mut xlsx = outlets.clone();
    xlsx.rows[4][2] = text("152202001001");
    bad.push(raw(
        "outlets-title-row-outside.xlsx",
        "outlets",
        "outside_region",
        synth::write(&xlsx, Style::Xlsx, "乌兰浩特市网点统计表")?,
    ));
    // A header with no rows is a nil return (零报送), accepted: not a bad file.
    bad.push(raw("empty.csv", "outlets", "empty_file", Vec::new()));
    bad.push(raw(
        "blank-lines.csv",
        "outlets",
        "empty_file",
        b"\n\n , ,\n\n".to_vec(),
    ));
    let mut missing = String::from_utf8(synth::write(&outlets, Style::CsvEnglish, "")?)?;
    missing = missing.replace("outlet_id,", "outlet_number,");
    bad.push(raw(
        "outlets-missing-column.csv",
        "outlets",
        "missing_column",
        missing.into_bytes(),
    ));
    let doubled = String::from_utf8(synth::write(&outlets, Style::CsvEnglish, "")?)?.replacen(
        "mode,",
        "mode,mode,",
        1,
    );
    bad.push(raw(
        "outlets-duplicate-column.csv",
        "outlets",
        "duplicate_column",
        doubled.into_bytes(),
    ));
    let body_only: String = String::from_utf8(synth::write(&outlets, Style::CsvEnglish, "")?)?
        .lines()
        .skip(1)
        .collect::<Vec<_>>()
        .join("\n");
    bad.push(raw(
        "outlets-no-header.csv",
        "outlets",
        "no_header",
        body_only.into_bytes(),
    ));
    bad.push(raw(
        "outlets-sent-as-enterprises.csv",
        "enterprises",
        "no_header",
        synth::write(&outlets, Style::CsvUtf8, "")?,
    ));
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            "网点编号,所在社区代码\n"
                .encode_utf16()
                .flat_map(|u| u.to_le_bytes()),
        )
        .collect();
    bad.push(raw("utf16.csv", "outlets", "unreadable_file", utf16));
    let good_xlsx = synth::write(&outlets, Style::Xlsx, "标题")?;
    bad.push(raw(
        "truncated.xlsx",
        "outlets",
        "unreadable_file",
        good_xlsx[..good_xlsx.len() / 2].to_vec(),
    ));
    bad.push(raw(
        "zip-not-xlsx.xlsx",
        "outlets",
        "unreadable_file",
        b"PK\x03\x04 this is not a workbook".to_vec(),
    ));
    let mut junk = synth::Rng::new(42);
    bad.push(raw(
        "binary-junk.bin",
        "outlets",
        "unreadable_file",
        (0..4096).map(|_| junk.next_u64() as u8).collect(),
    ));
    bad.push(raw(
        "image.png",
        "outlets",
        "unreadable_file",
        [&b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..], &[0; 64]].concat(),
    ));
    bad.push(raw(
        "old-excel-junk.xls",
        "outlets",
        "legacy_xls",
        [
            &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1][..],
            &[7; 600],
        ]
        .concat(),
    ));

    let mut manifest = String::from("file,dataset,period,region,codes\n");
    for b in &bad {
        std::fs::write(dir.join(&b.file), &b.bytes)?;
        manifest.push_str(&format!(
            "{},{},2023H2,{},{}\n",
            b.file, b.dataset, b.region, b.codes
        ));
    }
    std::fs::write(dir.join("expected.csv"), manifest)?;
    println!("{} bad files in {}", bad.len(), dir.display());
    Ok(())
}
