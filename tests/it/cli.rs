//! The `jiazheng` command as a newcomer uses it.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;

use support::{jiazheng, repo};

/// A plain HTTP/1.1 GET, so the test needs no client library.
fn http_get(addr: &str, path: &str) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1;
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn serve_loads_the_samples_into_an_empty_lake_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let (mut child, addr) = support::serve(jiazheng(), lake.to_str().unwrap());

    let (status, json) = http_get(
        &addr,
        "/v1/indicators/outlet_coverage?period=2023H2&region=152200&level=county",
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, 200, "{json}");
    let data = json["data"].as_array().unwrap();
    assert_eq!(data.len(), 6);
    let wulanhaote = data.iter().find(|d| d["region"] == "152201").unwrap();
    assert_eq!(wulanhaote["name"], "乌兰浩特市");
    assert_eq!(wulanhaote["denominator"], 61.0);
}

/// Distinct county codes of the national streets file: the counties due to report, counted
/// without the library.
fn national_counties_with_streets() -> usize {
    use std::io::BufRead;
    let file = std::fs::File::open(repo("sample-data/regions/streets.csv.gz")).unwrap();
    let mut counties = std::collections::BTreeSet::new();
    for line in std::io::BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .skip(1)
    {
        let line = line.unwrap();
        counties.insert(line.split(',').nth(2).unwrap().to_string());
    }
    counties.len()
}

#[test]
fn a_first_serve_shows_the_whole_country_and_an_explicit_empty_lake_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // The default lake (./data) of a plain first run gets the national division and samples.
    let mut child = jiazheng()
        .current_dir(dir.path())
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let (_, country) = http_get(&addr, "/v1/regions/000000");
    let (_, coverage) = http_get(
        &addr,
        "/v1/indicators/outlet_coverage?period=2023H2&region=000000",
    );
    let (_, provinces) = http_get(
        &addr,
        "/v1/indicators/outlet_coverage?period=2023H2&region=000000&level=province",
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(country["communities"], 124_649, "{country}");
    // 全国 is honest: partial, 6 counties of every county of China.
    let all = &coverage["data"][0];
    assert_eq!(all["status"], "partial", "{all}");
    assert_eq!(all["counties_reported"], 6);
    assert_eq!(all["counties_due"], national_counties_with_streets());
    let provinces = provinces["data"].as_array().unwrap();
    assert_eq!(provinces.len(), 31);
    assert_eq!(
        provinces
            .iter()
            .filter(|p| p["status"] == "not_reported")
            .count(),
        30
    );

    // An explicit lake that is empty gets no fake data, and says what to do.
    let out = jiazheng()
        .args(["serve", "--addr", "127.0.0.1:0", "--lake"])
        .arg(dir.path().join("production"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("regions import") && said.contains("--samples"),
        "{said}"
    );
    assert!(!dir.path().join("production/tables").exists());
}

#[test]
fn submit_says_what_is_wrong_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap();
    let import = jiazheng()
        .args(["regions", "import", "--lake", lake])
        .arg(repo("sample-data/regions-inner-mongolia"))
        .output()
        .unwrap();
    assert!(import.status.success());
    let said = String::from_utf8(import.stdout).unwrap();
    assert!(said.contains("108 counties"), "{said}");
    assert!(said.contains("2793 communities"), "{said}");

    let submit = |file: &str| {
        jiazheng()
            .args([
                "submit",
                "--lake",
                lake,
                "--dataset",
                "enterprises",
                "--period",
                "2023H2",
            ])
            .args(["--region", "152201"])
            .arg(repo(file))
            .output()
            .unwrap()
    };
    let bad = submit("tests/fixtures/bad/enterprises-credit-checksum.csv");
    assert_eq!(bad.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(report["status"], "rejected");
    assert_eq!(report["issues"][0]["code"], "credit_code_checksum");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("rejected"));

    let good = submit("sample-data/submissions/2023H2/152201/enterprises.xlsx");
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    // The log says how long each costly step took, for whoever watches a deadline day.
    let logged = String::from_utf8_lossy(&good.stderr);
    let line = |what: &str| {
        logged
            .lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} in {logged}"))
            .to_string()
    };
    assert!(
        line("submission decided").contains("checked_ms="),
        "{logged}"
    );
    let published = line("indicators published");
    assert!(
        published.contains("period=2023H2")
            && published.contains("computed_ms=")
            && published.contains("published_ms="),
        "{published}"
    );

    let unknown = jiazheng()
        .args([
            "submit",
            "--lake",
            lake,
            "--dataset",
            "cats",
            "--period",
            "2023H2",
        ])
        .args(["--region", "152201"])
        .arg(repo("sample-data/submissions/2023H2/152201/outlets.csv"))
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown dataset"));
}
