//! Every dataset, sent the three ways offices send it — GBK CSV with Chinese headers and
//! labels, UTF-8 CSV with English headers and codes, XLSX with a title row and date cells —
//! lands as the same rows.

use crate::support;

use axum::http::StatusCode;
use jiazheng_core::datasets;
use jiazheng_core::samples::synth::{self, Sheet, Style};
use support::Server;

#[tokio::test]
async fn three_styles_of_every_dataset_ingest_to_the_same_rows() {
    let server = Server::with_regions().await;
    let tree = server.tree().await;
    let period = "2023H2".parse().unwrap();
    let county = tree.get("152201").unwrap();
    let enterprises = synth::enterprises(county, period, "formats");
    let sheets: Vec<Sheet> = vec![
        enterprises.clone(),
        synth::outlets(&tree, county, period, &enterprises, "formats"),
        synth::trainings(&tree, county, period, "formats"),
        synth::workers(&tree, county, &enterprises, 300, "formats"),
        synth::shops(&tree, county, period, &enterprises, "formats"),
        synth::complaints(&tree, county, period, &enterprises, "formats"),
    ];
    assert_eq!(sheets.len(), datasets::ALL.len());
    for sheet in &sheets {
        let mut seen: Option<String> = None;
        for style in [Style::CsvGbk, Style::CsvEnglish, Style::Xlsx] {
            let body = synth::write(sheet, style, "乌兰浩特市2023年下半年统计表").unwrap();
            let path = format!("/v1/submissions/{}/2023H2/152201", sheet.dataset.name);
            let (status, json) = server.put(&path, body).await;
            assert_eq!(
                status,
                StatusCode::CREATED,
                "{} {style:?}: {json}",
                sheet.dataset.name
            );
            assert_eq!(json["report"]["summary"]["errors"], 0);
            assert_eq!(json["report"]["summary"]["rows"], sheet.rows.len());
            let expected_header = if style == Style::Xlsx { 2 } else { 1 };
            assert_eq!(json["report"]["header_row"], expected_header);
            let facts = server.table_facts(sheet.dataset).await;
            match &seen {
                None => seen = Some(facts),
                Some(first) => assert_eq!(&facts, first, "{} {style:?}", sheet.dataset.name),
            }
        }
        let facts = seen.unwrap();
        assert_eq!(facts.lines().count(), sheet.rows.len() + 4, "{facts}");
    }
}
