//! jiazheng's indicators against an independent computation: DuckDB, run by
//! `scripts/verify_indicators.py` over the very files submitted, for every indicator, level
//! and period, on generated data for every county of Inner Mongolia.

use crate::support;

use std::fmt::Write as _;

use jiazheng_core::indicators::CATALOGUE;
use jiazheng_core::ingest::Upload;
use jiazheng_core::periods::Period;
use jiazheng_core::regions::{Level, Region, RegionTree};
use jiazheng_core::samples::synth::{self, Sheet, Style};
use support::{Server, repo};

/// Every dataset of one county for a period.
fn county_sheets(tree: &RegionTree, county: &Region, period: Period) -> Vec<Sheet> {
    let enterprises = synth::enterprises(county, period, "duck");
    vec![
        synth::outlets(tree, county, period, &enterprises, "duck"),
        synth::trainings(tree, county, period, "duck"),
        // Few enough workers that some streets fall under the disclosure threshold.
        synth::workers(
            tree,
            county,
            &enterprises,
            4 + county.prefix.len() % 7 + (period.half as usize) * 3,
            "duck",
        ),
        synth::shops(tree, county, period, &enterprises, "duck"),
        synth::complaints(tree, county, period, &enterprises, "duck"),
        enterprises,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_agrees_with_every_published_value() {
    let python = support::tool("python", "DuckDB");
    let server = Server::with_regions().await;
    let tree = server.tree().await;
    let ingestor = server.bulk_ingestor();
    let files = server.dir.path().join("files");
    let mut manifest = String::from("path,dataset,period,region\n");
    let country = tree.country().unwrap();
    let periods: Vec<Period> = ["2023H1", "2023H2"]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
    // Most leagues and cities submit one file per dataset for all their counties; one in
    // four of those sends no trainings at all (not reported). Every third submits county by
    // county: some of its counties leave the workers out (partial), and some have no shops
    // to report (a nil return, header only).
    let mut send = async |sheet: &Sheet, region: &Region, period: Period| {
        let path = files.join(format!(
            "{period}-{}-{}.csv",
            region.code(),
            sheet.dataset.name
        ));
        std::fs::create_dir_all(&files).unwrap();
        std::fs::write(&path, synth::write(sheet, Style::CsvEnglish, "").unwrap()).unwrap();
        let upload = Upload {
            dataset: sheet.dataset,
            period,
            region: region.code(),
            file_name: path.display().to_string(),
        };
        let outcome = ingestor.submit_file(&upload, &path).await.unwrap();
        assert!(
            outcome.accepted(),
            "{}: {:?}",
            path.display(),
            outcome.report.issues.first()
        );
        writeln!(
            manifest,
            "{},{},{period},{}",
            path.display(),
            sheet.dataset.name,
            region.code()
        )
        .unwrap();
    };
    for &period in &periods {
        for (c, city) in tree.within(country, Level::City).into_iter().enumerate() {
            let counties: Vec<&Region> = tree
                .within(city, Level::County)
                .into_iter()
                .filter(|c| !synth::communities(&tree, c).is_empty())
                .collect();
            if c % 3 == 2 {
                for (k, county) in counties.iter().enumerate() {
                    for mut sheet in county_sheets(&tree, county, period) {
                        match sheet.dataset.name {
                            "workers" if k % 3 == 1 => continue,
                            "shops" if k % 4 == 2 => sheet.rows.clear(),
                            _ => {}
                        }
                        send(&sheet, county, period).await;
                    }
                }
                continue;
            }
            let mut merged: Vec<Sheet> = Vec::new();
            for county in counties {
                for (i, sheet) in county_sheets(&tree, county, period).into_iter().enumerate() {
                    match merged.get_mut(i) {
                        Some(all) => all.rows.extend(sheet.rows),
                        None => merged.push(sheet),
                    }
                }
            }
            for sheet in merged.iter().filter(|s| !s.rows.is_empty()) {
                if c % 4 == 1 && sheet.dataset.name == "trainings" {
                    continue;
                }
                send(sheet, city, period).await;
            }
        }
    }
    for &period in &periods {
        ingestor.refresh(period).await.unwrap();
    }

    let mut published = Vec::new();
    for indicator in CATALOGUE {
        for &period in &periods {
            for level in indicator.levels() {
                let (status, json) = server
                    .get(&format!(
                        "/v1/indicators/{}?period={period}&region=000000&level={level}",
                        indicator.id
                    ))
                    .await;
                assert_eq!(status, axum::http::StatusCode::OK, "{json}");
                for row in json["data"].as_array().unwrap() {
                    let mut row = row.clone();
                    row["indicator"] = indicator.id.into();
                    row["period"] = period.to_string().into();
                    published.push(row);
                }
            }
        }
    }
    assert!(published.len() > 50_000, "{} values", published.len());
    let published_path = server.dir.path().join("published.json");
    std::fs::write(&published_path, serde_json::to_vec(&published).unwrap()).unwrap();
    let manifest_path = server.dir.path().join("manifest.csv");
    std::fs::write(&manifest_path, manifest).unwrap();

    let output = std::process::Command::new(python)
        .arg(repo("scripts/verify_indicators.py"))
        .args([
            "--regions",
            repo("sample-data/regions-inner-mongolia").to_str().unwrap(),
        ])
        .args(["--manifest", manifest_path.to_str().unwrap()])
        .args(["--jiazheng", published_path.to_str().unwrap()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    println!("{said}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "DuckDB disagrees:\n{said}");
    assert!(said.contains(": 0 differences"), "{said}");
}
