//! Confirming plausibility findings (已核实): the `quality` flag they put on values in every
//! format, the status they show, the open-findings listing, and who may confirm them.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use jiazheng_core::keys::{self, Role};
use serde_json::{Value, json};

use crate::support::{Server, one, repo};

const COUNTY: &str = "152201";
const FIXTURE: &str = "tests/fixtures/plausibility/outlet_fixed_changed";

/// A request with a bearer token and a JSON body, answered as JSON.
async fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(body) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    let (status, _, bytes) = server.raw(request.body(body).unwrap()).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn key(server: &Server, region: &str, role: Role) -> String {
    let tree = server.tree().await;
    keys::issue(&server.lake, tree.get(region).unwrap(), role)
        .await
        .unwrap()
        .0
}

/// 乌兰浩特市's outlets for 2023H1, then for 2023H2 with an opening date and a community
/// changed (which also leaves a community without an outlet): accepted with three findings.
/// Returns the 2023H2 submission id.
async fn flagged_county(server: &Server) -> String {
    for (period, file) in [("2023H1", "before.csv"), ("2023H2", "now.csv")] {
        let (status, json) = server
            .put(
                &format!("/v1/submissions/outlets/{period}/{COUNTY}?file_name={file}"),
                std::fs::read(repo(FIXTURE).join(file)).unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        if period == "2023H2" {
            assert_eq!(json["submission"]["open_findings"], 3, "{json}");
            return json["submission"]["submission_id"]
                .as_str()
                .unwrap()
                .to_string();
        }
    }
    unreachable!()
}

/// The quality of 乌兰浩特市's outlets value in JSON, CSV and Parquet.
async fn quality_everywhere(server: &Server) -> [String; 3] {
    let path = format!("/v1/indicators/outlets?period=2023H2&region={COUNTY}");
    let (_, json) = server.get(&path).await;
    let from_json = one(&json, COUNTY)["quality"].as_str().unwrap().to_string();

    let csv = server.get_bytes(&format!("{path}&format=csv")).await;
    let mut reader = csv::Reader::from_reader(csv.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&csv));
    let column = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "quality")
        .expect("a quality column");
    let from_csv = reader.records().next().unwrap().unwrap()[column].to_string();

    let parquet = server.get_bytes(&format!("{path}&format=parquet")).await;
    let batch = deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(parquet),
    )
    .unwrap()
    .build()
    .unwrap()
    .next()
    .unwrap()
    .unwrap();
    let column = batch.column(batch.schema().index_of("quality").unwrap());
    let text =
        deltalake::arrow::compute::cast(column, &deltalake::arrow::datatypes::DataType::Utf8)
            .unwrap();
    let from_parquet = deltalake::arrow::array::AsArray::as_string::<i32>(&text)
        .value(0)
        .to_string();
    [from_json, from_csv, from_parquet]
}

/// 乌兰浩特市's open findings on the status of 兴安盟.
async fn open_on_status(server: &Server) -> Value {
    let (status, json) = server
        .get("/v1/reports/status?period=2023H2&region=152200")
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let counties = json["missing"].as_array().unwrap().iter();
    let county = counties
        .chain(json["reported"].as_array().unwrap())
        .find(|c| c["code"] == COUNTY)
        .unwrap();
    county["open_findings"].clone()
}

#[tokio::test]
async fn confirming_clears_the_flag_on_values_and_status_and_only_the_county_may() {
    let server = Server::with_regions().await;
    let id = flagged_county(&server).await;
    assert_eq!(quality_everywhere(&server).await, ["unconfirmed"; 3]);
    assert_eq!(open_on_status(&server).await, 3);
    // A county whose file drew no finding: its values are checked.
    let (status, json) = server
        .put(
            "/v1/submissions/outlets/2023H2/152202?file_name=outlets.csv",
            std::fs::read(repo("sample-data/submissions/2023H2/152202/outlets.csv")).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    let (_, values) = server
        .get("/v1/indicators/outlets?period=2023H2&region=152202")
        .await;
    assert_eq!(one(&values, "152202")["quality"], "checked");

    // The open findings, by key: none, another county's submitter, the county, an analyst.
    let listing = format!("/v1/findings?period=2023H2&region={COUNTY}");
    let neighbour = key(&server, "152202", Role::Submitter).await;
    let own = key(&server, COUNTY, Role::Submitter).await;
    let analyst = key(&server, "15", Role::Analyst).await;
    assert_eq!(
        call(&server, "GET", &listing, None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&server, "GET", &listing, Some(&neighbour), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, open) = call(&server, "GET", &listing, Some(&own), None).await;
    assert_eq!(status, StatusCode::OK, "{open}");
    let (_, by_analyst) = call(
        &server,
        "GET",
        "/v1/findings?period=2023H2&region=152200",
        Some(&analyst),
        None,
    )
    .await;
    assert_eq!(by_analyst["open_findings"], 3, "{by_analyst}");
    assert_eq!(open["open_findings"], 3, "{open}");
    assert_eq!(open["truncated"], false, "{open}");
    let file = &open["files"][0];
    assert_eq!(file["submission_id"], id.as_str());
    let findings = file["findings"].as_array().unwrap();
    let mut listed: Vec<(String, Value)> = findings
        .iter()
        .map(|f| (f["code"].as_str().unwrap().to_string(), f["row"].clone()))
        .collect();
    listed.sort_by_key(|(code, row)| (code.clone(), row.as_u64()));
    assert_eq!(
        listed,
        [
            ("community_lost_outlets".to_string(), Value::Null),
            ("outlet_fixed_changed".to_string(), json!(4)),
            ("outlet_fixed_changed".to_string(), json!(7)),
        ]
    );
    let places: Vec<u64> = findings
        .iter()
        .map(|f| f["finding"].as_u64().unwrap())
        .collect();
    let (first, rest) = (places[0], &places[1..]);

    // Confirming: not without a key, not with another county's, not a finding that is none.
    let confirm = format!("/v1/submissions/{id}/confirmations");
    let body = json!({"findings": [first], "comment": "门店迁址，已电话核实"});
    assert_eq!(
        call(&server, "POST", &confirm, None, Some(body.clone()))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (status, refused) = call(
        &server,
        "POST",
        &confirm,
        Some(&neighbour),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (status, refused) = call(
        &server,
        "POST",
        &confirm,
        Some(&own),
        Some(json!({"findings": [999]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(quality_everywhere(&server).await, ["unconfirmed"; 3]);

    // One of three: still flagged, two open.
    let (status, done) = call(&server, "POST", &confirm, Some(&own), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{done}");
    assert_eq!(done["open_findings"], 2, "{done}");
    assert_eq!(done["confirmed"][0]["confirmed_by"], COUNTY);
    assert_eq!(quality_everywhere(&server).await, ["unconfirmed"; 3]);
    assert_eq!(open_on_status(&server).await, 2);

    // The others: nothing open, the flag gone everywhere.
    let (status, done) = call(
        &server,
        "POST",
        &confirm,
        Some(&own),
        Some(json!({"findings": rest})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{done}");
    assert_eq!(done["open_findings"], 0, "{done}");
    assert_eq!(quality_everywhere(&server).await, ["checked"; 3]);
    assert_eq!(open_on_status(&server).await, 0);
    let (_, open) = call(&server, "GET", &listing, Some(&own), None).await;
    assert_eq!(open["files"], json!([]), "{open}");

    // The confirmations are kept with the submission, comment and all.
    let (_, submission) = server.get(&format!("/v1/submissions/{id}")).await;
    let kept = submission["confirmations"].as_array().unwrap();
    assert_eq!(kept.len(), 3, "{submission}");
    assert_eq!(kept[0]["comment"], "门店迁址，已电话核实");
    assert_eq!(submission["submission"]["open_findings"], 0);
}

#[tokio::test]
async fn one_confirmation_covers_every_finding_and_a_comment_never_keeps_an_id_number() {
    let server = Server::with_regions().await;
    let id = flagged_county(&server).await;
    let own = key(&server, COUNTY, Role::Submitter).await;
    let confirm = format!("/v1/submissions/{id}/confirmations");
    let (status, refused) = call(
        &server,
        "POST",
        &confirm,
        Some(&own),
        Some(json!({"comment": "长".repeat(501)})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let id_number = "11010519491231002X";
    let (status, done) = call(
        &server,
        "POST",
        &confirm,
        Some(&own),
        Some(json!({"comment": format!("负责人 {id_number} 已核实")})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{done}");
    assert_eq!(done["open_findings"], 0);
    assert!(done["confirmed"][0]["finding"].is_null());
    assert_eq!(quality_everywhere(&server).await, ["checked"; 3]);
    let (_, submission) = server.get(&format!("/v1/submissions/{id}")).await;
    let text = submission.to_string();
    assert!(!text.contains(id_number), "{text}");
    assert!(text.contains("已核实"), "{text}");
    // A submission without findings has nothing to confirm.
    let (_, list) = server.get("/v1/submissions?period=2023H1").await;
    let earlier = list["submissions"][0]["submission_id"].as_str().unwrap();
    let (status, _) = call(
        &server,
        "POST",
        &format!("/v1/submissions/{earlier}/confirmations"),
        Some(&own),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// A file whose every row is a finding: the report lists the first 1,000 problems and counts
/// them all, confirming every listed finding still leaves the rest open (and the values
/// flagged), and one confirmation of all clears them.
#[tokio::test]
async fn a_file_whose_every_row_is_a_finding_is_confirmed_whole() {
    use jiazheng_core::findings::MAX_LISTED;
    use jiazheng_core::samples::synth;

    let server = Server::with_regions().await;
    let tree = server.tree().await;
    let period = "2023H2".parse().unwrap();
    let n = MAX_LISTED + 200;
    let mut sheets = Vec::new();
    for county in ["152202", COUNTY] {
        let region = tree.get(county).unwrap();
        let enterprises = synth::enterprises(region, period, "every-row");
        let (status, json) = server.send_sheet(&enterprises, "2023H2", county).await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        sheets.push(synth::workers(&tree, region, &enterprises, n, "every-row"));
    }
    // 乌兰浩特市 sends the very people 阿尔山市 sent.
    let id = sheets[0]
        .dataset
        .fields
        .iter()
        .position(|f| f.name == "id_number")
        .unwrap();
    let theirs: Vec<_> = sheets[0].rows.iter().map(|r| r[id].clone()).collect();
    for (row, person) in sheets[1].rows.iter_mut().zip(theirs) {
        row[id] = person;
    }
    let (status, json) = server.send_sheet(&sheets[0], "2023H2", "152202").await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    let (status, json) = server.send_sheet(&sheets[1], "2023H2", COUNTY).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    let report = &json["report"];
    assert_eq!(report["status"], "accepted");
    assert_eq!(report["summary"]["by_code"]["worker_in_two_counties"], n);
    assert_eq!(report["summary"]["truncated"], true);
    let issues = report["issues"].as_array().unwrap();
    assert_eq!(issues.len(), MAX_LISTED);
    let places: Vec<usize> = issues
        .iter()
        .enumerate()
        .filter(|(_, i)| i["code"] == "worker_in_two_counties")
        .map(|(place, _)| place)
        .collect();
    let submission = json["submission"]["submission_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(json["submission"]["open_findings"], n);

    let flags = || async {
        let (_, values) = server
            .get(&format!("/v1/values?period=2023H2&region={COUNTY}"))
            .await;
        let mut flags: Vec<Value> = values["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| {
                v["submissions"]
                    .as_array()
                    .unwrap()
                    .contains(&json!(submission))
            })
            .map(|v| v["quality"].clone())
            .collect();
        flags.dedup();
        flags
    };
    assert_eq!(flags().await, [json!("unconfirmed")]);

    // 阿尔山市 sends its file again (one row fewer): now it too shares every worker, so two
    // files of 兴安盟 hold over 2,000 open findings. The listing counts them all and lists
    // at most one report's worth.
    let mut again = sheets[0].clone();
    again.rows.pop();
    let (status, json) = server.send_sheet(&again, "2023H2", "152202").await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    assert_eq!(json["submission"]["open_findings"], n - 1);
    let analyst = key(&server, "15", Role::Analyst).await;
    let (status, open) = call(
        &server,
        "GET",
        "/v1/findings?period=2023H2&region=152200",
        Some(&analyst),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(open["open_findings"], 2 * n - 1);
    assert_eq!(open["truncated"], true);
    let listed: usize = open["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["findings"].as_array().unwrap().len())
        .sum();
    assert_eq!(listed, MAX_LISTED);

    let own = key(&server, COUNTY, Role::Submitter).await;
    let confirm = format!("/v1/submissions/{submission}/confirmations");
    let (status, done) = call(
        &server,
        "POST",
        &confirm,
        Some(&own),
        Some(json!({"findings": places})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{done}");
    assert_eq!(done["open_findings"], (n - places.len()) as u64);
    assert_eq!(flags().await, [json!("unconfirmed")]);
    let (status, done) = call(&server, "POST", &confirm, Some(&own), Some(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{done}");
    assert_eq!(done["open_findings"], 0);
    assert_eq!(flags().await, [json!("checked")]);
}
