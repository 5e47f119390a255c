//! Regenerates the sample submissions under `sample-data/submissions` and the bad files under
//! `tests/fixtures/bad` from the shipped region subset. Deterministic: running it again
//! rewrites identical files.
//!
//!     cargo run -p shared --example make_samples

use std::path::Path;

use shared::periods::Period;
use shared::regions::read_nbs_dir;
use shared::samples::synth::{self, Datum, Style};

/// The six banners and cities of Xing'an League, each sending its files its own way.
const COUNTIES: [(&str, Style, Style); 6] = [
    ("152201", Style::Xlsx, Style::CsvUtf8),
    ("152202", Style::CsvUtf8, Style::CsvUtf8),
    ("152221", Style::Xlsx, Style::Xlsx),
    ("152222", Style::CsvGbk, Style::CsvGbk),
    ("152223", Style::CsvUtf8, Style::Xlsx),
    ("152224", Style::Xlsx, Style::CsvGbk),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tree = read_nbs_dir(&root.join("sample-data/regions"))?;
    let out = root.join("sample-data/submissions");
    for period in ["2023H1", "2023H2"] {
        let period: Period = period.parse()?;
        for (code, enterprise_style, outlet_style) in COUNTIES {
            let county = tree.get(code).ok_or("county missing from the regions")?;
            let dir = out.join(period.to_string()).join(code);
            std::fs::create_dir_all(&dir)?;
            let enterprises = synth::enterprises(county, period, "sample");
            let outlets = synth::outlets(&tree, county, period, &enterprises, "sample");
            for (sheet, style) in [(&enterprises, enterprise_style), (&outlets, outlet_style)] {
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

/// Files a careless office might send, each with the problem its name says.
fn write_bad_files(
    root: &Path,
    tree: &shared::regions::RegionTree,
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = root.join("tests/fixtures/bad");
    std::fs::create_dir_all(&dir)?;
    let period: Period = "2023H2".parse()?;
    let county = tree.get("152201").ok_or("county missing")?;
    let enterprises = synth::enterprises(county, period, "sample");
    let outlets = synth::outlets(tree, county, period, &enterprises, "sample");

    let mut bad = enterprises.clone();
    if let Datum::Text(code) = &mut bad.rows[2][0] {
        // Change the check character: a typo of the last digit.
        let last = code.pop().unwrap_or('0');
        code.push(if last == '0' { '1' } else { '0' });
    }
    std::fs::write(
        dir.join("enterprises-credit-checksum.csv"),
        synth::write(&bad, Style::CsvUtf8, "")?,
    )?;

    let mut bad = outlets.clone();
    bad.rows[0][2] = Datum::Text("152202001001".into());
    std::fs::write(
        dir.join("outlets-outside-region.csv"),
        synth::write(&bad, Style::CsvUtf8, "")?,
    )?;

    let mut bad = outlets.clone();
    bad.rows[1][3] = Datum::Text("加盟".into());
    bad.rows[3][6] = Datum::Date(chrono::NaiveDate::from_ymd_opt(2024, 3, 1).ok_or("date")?);
    std::fs::write(
        dir.join("outlets-mode-and-future-date.csv"),
        synth::write(&bad, Style::CsvUtf8, "")?,
    )?;
    println!("bad files in {}", dir.display());
    Ok(())
}
