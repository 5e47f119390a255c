//! The hostile corpus (`tests/hostile/cases.tsv`) against `jiazheng serve` running under an
//! address-space cap: every input is answered with a 4xx and its code, the server answers
//! `/v1/health` after each one, no input adds more memory than its limit allows, the data
//! tables and the snapshot are unchanged, and no raw ID number appears in any response, report,
//! log line or file of the lake outside `uploads/`.
//!
//! Figures (status, code, time, peak memory per case) go to `artifacts/hostile/summary.txt`.

use crate::support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiazheng_core::datasets;
use jiazheng_core::identifiers::find_id_numbers;
use jiazheng_core::lake::{Lake, names};
use support::{issue_key, jiazheng, repo};

/// The server's address space: far below what any announced allocation would need, well
/// above what it uses.
const ADDRESS_SPACE_BYTES: u64 = 4 << 30;
/// The whole corpus must run in less resident memory than this.
const PEAK_BYTES: u64 = 1 << 30;
/// What a request that is refused from its headers may cost.
const HEADER_ONLY_BYTES: u64 = 32 << 20;

/// A request body.
enum Body {
    None,
    Bytes(Vec<u8>),
    File(PathBuf),
    /// `len` bytes of `byte`, sent with a Content-Length.
    Filler(u64, u8),
    /// `len` bytes of `byte`, sent chunked.
    Chunked(u64, u8),
}

struct Answer {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The problem type's last segment, a report's codes, or a page's `data-problem`.
    fn codes(&self) -> Vec<String> {
        let text = self.text();
        if let Some(at) = text.find("data-problem=\"") {
            let rest = &text[at + 14..];
            return vec![rest[..rest.find('"').unwrap_or(0)].to_string()];
        }
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(&self.body) else {
            return Vec::new();
        };
        if let Some(kind) = json["type"].as_str() {
            return vec![kind.rsplit('/').next().unwrap_or_default().to_string()];
        }
        json["report"]["summary"]["by_code"]
            .as_object()
            .map(|codes| codes.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// One HTTP/1.1 exchange on a fresh connection. The body is written from another thread
/// while the answer is read, as a client that does not wait for the server would.
fn send(addr: &str, method: &str, path: &str, headers: &[(&str, String)], body: Body) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(180)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let length = match &body {
        Body::None => Some(0),
        Body::Bytes(b) => Some(b.len() as u64),
        Body::File(p) => Some(std::fs::metadata(p).unwrap().len()),
        Body::Filler(n, _) => Some(*n),
        Body::Chunked(..) => None,
    };
    let claimed = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
    match length {
        Some(n) if !claimed => head.push_str(&format!("Content-Length: {n}\r\n")),
        None => head.push_str("Transfer-Encoding: chunked\r\n"),
        _ => {}
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        // The server may answer and close before the body is through: that is the point.
        let _ = write_body(&mut writer, body);
    });
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    parse(&raw)
}

fn write_body(out: &mut TcpStream, body: Body) -> std::io::Result<()> {
    match body {
        Body::None => Ok(()),
        Body::Bytes(b) => out.write_all(&b),
        Body::File(p) => std::io::copy(&mut std::fs::File::open(p)?, out).map(|_| ()),
        Body::Filler(n, byte) => {
            let block = vec![byte; 1 << 16];
            let mut left = n;
            while left > 0 {
                let take = left.min(block.len() as u64) as usize;
                out.write_all(&block[..take])?;
                left -= take as u64;
            }
            Ok(())
        }
        Body::Chunked(n, byte) => {
            let block = vec![byte; 1 << 16];
            let mut left = n;
            while left > 0 {
                let take = left.min(block.len() as u64) as usize;
                out.write_all(format!("{take:x}\r\n").as_bytes())?;
                out.write_all(&block[..take])?;
                out.write_all(b"\r\n")?;
                left -= take as u64;
            }
            out.write_all(b"0\r\n\r\n")
        }
    }
}

fn parse(raw: &[u8]) -> Answer {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Answer {
            status: 0,
            headers: String::from_utf8_lossy(raw).into_owned(),
            body: Vec::new(),
        };
    };
    let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut body = raw[split + 4..].to_vec();
    if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line) = rest.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&rest[..line]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line + 2;
        out.extend_from_slice(&rest[start..(start + size).min(rest.len())]);
        rest = &rest[(start + size + 2).min(rest.len())..];
    }
    out
}

/// Resident memory of a process now and at its peak since the last reset, in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Starts the peak-memory count of a process afresh.
fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

struct Served {
    child: Child,
    addr: String,
    log: PathBuf,
}

/// `jiazheng serve` under `prlimit --as`, with the Inner Mongolia regions and the samples.
fn serve_capped(lake: &str, log: &Path) -> Served {
    let imported = jiazheng()
        .args(["regions", "import", "--lake", lake])
        .arg(jiazheng_core::samples::inner_mongolia())
        .output()
        .unwrap();
    assert!(imported.status.success(), "{imported:?}");
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--as={ADDRESS_SPACE_BYTES}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_jiazheng"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--lake",
            lake,
            "--rate-limit",
            "0",
            "--samples",
        ])
        .arg(repo("sample-data"))
        .env_remove("JIAZHENG_LAKE")
        .env_remove("JIAZHENG_ID_HMAC_KEY")
        .env("MALLOC_ARENA_MAX", "2")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap());
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no URL in {line:?}; see {}", log.display()))
        .to_string();
    Served {
        child,
        addr,
        log: log.to_path_buf(),
    }
}

struct Case {
    name: String,
    kind: String,
    source: String,
    dataset: String,
    status: u16,
    code: String,
}

fn cases() -> Vec<Case> {
    std::fs::read_to_string(repo("tests/hostile/cases.tsv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 6, "{l}");
            Case {
                name: f[0].into(),
                kind: f[1].into(),
                source: f[2].into(),
                dataset: f[3].into(),
                status: f[4].parse().unwrap(),
                code: f[5].into(),
            }
        })
        .collect()
}

struct Keys {
    county: String,
    other_county: String,
    analyst: String,
    revoked: String,
    expired: String,
}

fn bearer(token: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {token}"))
}

fn multipart(parts: &[(&str, Option<&str>, Vec<u8>)]) -> (String, Vec<u8>) {
    let boundary = "hostileboundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, file, content) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(file) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: text/csv\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn sql_body(sql: &str) -> Body {
    Body::Bytes(serde_json::to_vec(&serde_json::json!({ "sql": sql })).unwrap())
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

/// The requests the test builds itself; each returns every answer it got.
fn http_case(name: &str, addr: &str, keys: &Keys, generated: &Path) -> Vec<Answer> {
    let json = (JSON.0, JSON.1.to_string());
    let put =
        |path: &str, headers: &[(&str, String)], body: Body| send(addr, "PUT", path, headers, body);
    let outlets = "/v1/submissions/outlets/2023H2/152201";
    let small = || Body::Bytes(b"a,b\n1,2\n".to_vec());
    match name {
        "sql-not-json" => vec![send(
            addr,
            "POST",
            "/v1/sql",
            &[bearer(&keys.analyst), ("Content-Type", "text/plain".into())],
            Body::Bytes(b"SELECT 1".to_vec()),
        )],
        "sql-3MB-json-body" => vec![send(
            addr,
            "POST",
            "/v1/sql",
            &[bearer(&keys.analyst), json],
            sql_body(&format!("SELECT '{}'", "x".repeat(3 << 20))),
        )],
        "sql-two-hostile-at-once" => {
            let queries = ["sql-cross-join-1e10-rows.sql", "sql-sort-1e8-rows.sql"]
                .map(|f| std::fs::read_to_string(generated.join(f)).unwrap());
            std::thread::scope(|s| {
                let running: Vec<_> = queries
                    .iter()
                    .map(|q| {
                        let json = json.clone();
                        s.spawn(move || {
                            send(
                                addr,
                                "POST",
                                "/v1/sql",
                                &[bearer(&keys.analyst), json],
                                sql_body(q),
                            )
                        })
                    })
                    .collect();
                running.into_iter().map(|t| t.join().unwrap()).collect()
            })
        }
        "sql-without-key" => vec![send(addr, "POST", "/v1/sql", &[json], sql_body("SELECT 1"))],
        "sql-with-submitter-key" => vec![send(
            addr,
            "POST",
            "/v1/sql",
            &[bearer(&keys.county), json],
            sql_body("SELECT 1"),
        )],
        "put-250MB-without-key" => vec![put(outlets, &[], Body::Filler(250 << 20, b'a'))],
        "put-six-250MB-without-key-at-once" => std::thread::scope(|s| {
            let running: Vec<_> = (0..6)
                .map(|_| s.spawn(move || put(outlets, &[], Body::Filler(250 << 20, b'a'))))
                .collect();
            running.into_iter().map(|t| t.join().unwrap()).collect()
        }),
        "put-claims-10GB" => vec![put(
            outlets,
            &[
                bearer(&keys.county),
                ("Content-Length", (10u64 << 30).to_string()),
            ],
            Body::None,
        )],
        "put-chunked-past-the-cap" => {
            let max = datasets::SHOPS.limits().max_file_bytes;
            vec![put(
                "/v1/submissions/shops/2023H2/152201",
                &[bearer(&keys.county)],
                Body::Chunked(max + 1, b'a'),
            )]
        }
        "put-for-another-county" => vec![put(outlets, &[bearer(&keys.other_county)], small())],
        "put-with-analyst-key" => vec![put(outlets, &[bearer(&keys.analyst)], small())],
        "put-with-revoked-key" => vec![put(outlets, &[bearer(&keys.revoked)], small())],
        "put-with-expired-key" => vec![put(outlets, &[bearer(&keys.expired)], small())],
        "put-period-2100H2" => vec![put(
            "/v1/submissions/outlets/2100H2/152201",
            &[bearer(&keys.county)],
            small(),
        )],
        "put-period-2022H1" => vec![put(
            "/v1/submissions/outlets/2022H1/152201",
            &[bearer(&keys.county)],
            small(),
        )],
        "put-unknown-dataset" => vec![put(
            "/v1/submissions/passwords/2023H2/152201",
            &[bearer(&keys.county)],
            small(),
        )],
        "put-for-a-street" => vec![put(
            "/v1/submissions/outlets/2023H2/152201001",
            &[bearer(&keys.county)],
            small(),
        )],
        "put-id-number-in-file-name" => vec![put(
            &format!("{outlets}?file_name=11010519491231002X.csv"),
            &[bearer(&keys.county)],
            Body::File(repo("tests/fixtures/bad/outlets-mode.csv")),
        )],
        "get-values-for-2100H2" => vec![send(
            addr,
            "GET",
            "/v1/values?period=2100H2&region=152200",
            &[],
            Body::None,
        )],
        "page-upload-file-before-fields" => {
            let session = sign_in(addr, &keys.county);
            let (content_type, body) = multipart(&[
                ("file", Some("outlets.csv"), b"a,b\n".to_vec()),
                ("dataset", None, b"outlets".to_vec()),
                ("period", None, b"2023H2".to_vec()),
                ("region", None, b"152201".to_vec()),
            ]);
            vec![send(
                addr,
                "POST",
                "/submit/upload",
                &[("Content-Type", content_type), ("Cookie", session)],
                Body::Bytes(body),
            )]
        }
        "page-upload-past-the-cap" => {
            let session = sign_in(addr, &keys.county);
            let max = datasets::SHOPS.limits().max_file_bytes as usize;
            let (content_type, body) = multipart(&[
                ("dataset", None, b"shops".to_vec()),
                ("period", None, b"2023H2".to_vec()),
                ("region", None, b"152201".to_vec()),
                ("file", Some("shops.csv"), vec![b'a'; max + 1]),
            ]);
            vec![send(
                addr,
                "POST",
                "/submit/upload",
                &[("Content-Type", content_type), ("Cookie", session)],
                Body::Bytes(body),
            )]
        }
        "page-sign-in-3MB-form" => vec![send(
            addr,
            "POST",
            "/submit/sign-in",
            &[("Content-Type", "application/x-www-form-urlencoded".into())],
            Body::Bytes(format!("key={}", "k".repeat(3 << 20)).into_bytes()),
        )],
        "search-30KB-query" => vec![send(
            addr,
            "GET",
            &format!("/v1/regions/search?q={}", "xing".repeat(30 << 8)),
            &[],
            Body::None,
        )],
        "facets-by-a-free-text-field" => vec![send(
            addr,
            "GET",
            &format!(
                "/v1/datasets/outlets?facets={}",
                ["mode"; 5000].join(",") + ",name"
            ),
            &[],
            Body::None,
        )],
        "half-year-without-key" => vec![send(
            addr,
            "GET",
            "/v1/reports/half-year?period=2023H2",
            &[],
            Body::None,
        )],
        "half-year-for-the-league-with-a-county-key" => vec![send(
            addr,
            "GET",
            "/v1/reports/half-year?period=2023H2&region=152200",
            &[bearer(&keys.county)],
            Body::Bytes(Vec::new()),
        )],
        other => panic!("no http case {other}"),
    }
}

/// Signs in through the page and returns the session cookie.
fn sign_in(addr: &str, token: &str) -> String {
    let answer = send(
        addr,
        "POST",
        "/submit/sign-in",
        &[("Content-Type", "application/x-www-form-urlencoded".into())],
        Body::Bytes(format!("key={token}").into_bytes()),
    );
    assert_eq!(answer.status, 303, "{}", answer.headers);
    let cookie = answer
        .headers
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(
        !cookie.contains(token),
        "the cookie holds a session, not the key"
    );
    cookie
}

/// What an input of this case may add to the server's resident memory.
fn allowance(case: &Case) -> u64 {
    match case.kind.as_str() {
        "file" => {
            datasets::by_name(&case.dataset)
                .unwrap()
                .limits()
                .max_memory_bytes
        }
        "sql" => jiazheng_core::sql::MEMORY_BYTES as u64 * 2,
        _ if case.name.starts_with("sql-") => jiazheng_core::sql::MEMORY_BYTES as u64 * 2,
        _ if case.name.starts_with("page-upload") || case.name == "put-chunked-past-the-cap" => {
            HEADER_ONLY_BYTES * 2
        }
        _ => HEADER_ONLY_BYTES,
    }
}

async fn table_versions(lake: &Lake) -> BTreeMap<String, Option<i64>> {
    let mut tables: Vec<String> = datasets::ALL
        .iter()
        .map(|d| names::dataset(d.name))
        .collect();
    tables.extend([names::REGIONS, names::INDICATOR_VALUES].map(String::from));
    let mut out = BTreeMap::new();
    for t in tables {
        let v = lake.versions(&[&t]).await.unwrap().get(&t).copied();
        out.insert(t, v);
    }
    out
}

/// Every raw ID number the corpus sends.
fn raw_ids() -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_to_string(repo("tests/hostile/files/ids.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    ids.extend(["11010519491231002X", "150105850315123"].map(String::from));
    ids
}

/// Where a text holds an ID number: by the detector, or any known one (or its first 17
/// characters) verbatim.
fn leaks(text: &str, ids: &[String]) -> Vec<String> {
    let mut found: Vec<String> = find_id_numbers(text)
        .into_iter()
        .map(|r| text[r].to_string())
        .collect();
    for id in ids {
        let head = &id[..id.len().clamp(15, 17)];
        if text.contains(head) {
            found.push(id.clone());
        }
    }
    found
}

/// Every file under a directory.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Every file of the lake outside `uploads/` as text; Parquet files decoded, every column.
fn lake_texts(root: &Path) -> Vec<(PathBuf, String)> {
    use deltalake::arrow::compute::cast;
    use deltalake::arrow::datatypes::DataType;
    use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path != root.join("uploads") {
                    stack.push(path);
                }
                continue;
            }
            let text = if path.extension().is_some_and(|e| e == "parquet") {
                let file = std::fs::File::open(&path).unwrap();
                let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                    .unwrap()
                    .build()
                    .unwrap();
                let mut text = String::new();
                for batch in reader {
                    let batch = batch.unwrap();
                    for column in batch.columns() {
                        let Ok(strings) = cast(column, &DataType::Utf8) else {
                            continue;
                        };
                        let strings = strings
                            .as_any()
                            .downcast_ref::<deltalake::arrow::array::StringArray>()
                            .unwrap();
                        for value in strings.iter().flatten() {
                            text.push_str(value);
                            text.push('\n');
                        }
                    }
                }
                text
            } else {
                String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned()
            };
            out.push((path, text));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hostile_corpus_is_refused_and_the_server_stays_up() {
    let work = tempfile::tempdir().unwrap();
    let generated_dir = work.path().join("gen");
    let made = Command::new("python3")
        .arg(repo("tests/hostile/generate.py"))
        .arg(&generated_dir)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let lake_dir = work.path().join("lake");
    let lake_path = lake_dir.to_str().unwrap().to_string();
    let artifacts = repo("artifacts/hostile");
    std::fs::create_dir_all(&artifacts).unwrap();
    let log = artifacts.join("server.log");
    let mut served = serve_capped(&lake_path, &log);
    let pid = served.child.id();
    let addr = served.addr.clone();

    let key = |region: &str, role: &str| issue_key(jiazheng(), &lake_path, region, role);
    let revoked = key("152201", "submitter");
    let revoked_id = revoked.split('_').nth(1).unwrap().to_string();
    let out = jiazheng()
        .args(["keys", "revoke", "--lake", &lake_path, &revoked_id])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let expired = {
        let out = jiazheng()
            .args([
                "keys",
                "issue",
                "--lake",
                &lake_path,
                "--region",
                "152201",
                "--role",
                "submitter",
                "--expires",
                "2020-01-01",
            ])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let keys = Keys {
        county: key("152201", "submitter"),
        other_county: key("152202", "submitter"),
        analyst: key("15", "analyst"),
        revoked,
        expired,
    };

    let lake = Lake::open(&lake_path).unwrap();
    let before = table_versions(&lake).await;
    assert!(
        before[&names::dataset("outlets")].is_some(),
        "the samples are loaded"
    );
    let (baseline, _) = memory(pid);

    let cases = cases();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut answers: Vec<(String, Answer)> = Vec::new();
    let mut summary = vec![format!(
        "{:<42} {:>6} {:<26} {:>8} {:>10} {:>10}",
        "case", "status", "code", "ms", "peak MiB", "added MiB"
    )];
    let mut failures = Vec::new();
    let mut peak: u64 = 0;
    for case in &cases {
        let (rss, _) = memory(pid);
        reset_peak(pid);
        let started = Instant::now();
        let got: Vec<Answer> = match case.kind.as_str() {
            "file" => {
                let path = match case.source.split_once('/') {
                    Some(("gen", file)) => generated_dir.join(file),
                    _ => repo(&format!("tests/hostile/{}", case.source)),
                };
                let target = format!(
                    "/v1/submissions/{}/2023H2/152201?file_name={}",
                    case.dataset, case.name
                );
                vec![send(
                    &addr,
                    "PUT",
                    &target,
                    &[bearer(&keys.county)],
                    Body::File(path),
                )]
            }
            "sql" => {
                let sql = match case.source.strip_prefix("sql:") {
                    Some(inline) => inline.to_string(),
                    None => std::fs::read_to_string(
                        generated_dir.join(case.source.trim_start_matches("gen/")),
                    )
                    .unwrap(),
                };
                vec![send(
                    &addr,
                    "POST",
                    "/v1/sql",
                    &[bearer(&keys.analyst), (JSON.0, JSON.1.to_string())],
                    sql_body(&sql),
                )]
            }
            "http" => http_case(&case.source, &addr, &keys, &generated_dir),
            other => panic!("unknown kind {other}"),
        };
        let ms = started.elapsed().as_millis();
        let (_, case_peak) = memory(pid);
        peak = peak.max(case_peak);
        let added = case_peak.saturating_sub(rss);
        for answer in &got {
            let codes = answer.codes();
            let code_ok = case.code == "?" || codes.contains(&case.code);
            // Two hostile queries at once may also find every slot taken.
            let status_ok = answer.status == case.status
                || (case.name == "sql-two-hostile-at-once" && answer.status == 429);
            if !status_ok || !code_ok {
                failures.push(format!(
                    "{}: expected {} {}, got {} {:?}: {}",
                    case.name,
                    case.status,
                    case.code,
                    answer.status,
                    codes,
                    answer.text().chars().take(300).collect::<String>()
                ));
            }
            if !(400..500).contains(&answer.status) {
                failures.push(format!("{}: not a 4xx: {}", case.name, answer.status));
            }
        }
        summary.push(format!(
            "{:<42} {:>6} {:<26} {:>8} {:>10.1} {:>10.1}",
            case.name,
            got.first().map_or(0, |a| a.status),
            got.first()
                .map(|a| a.codes().join(";"))
                .unwrap_or_default()
                .chars()
                .take(26)
                .collect::<String>(),
            ms,
            case_peak as f64 / 1048576.0,
            added as f64 / 1048576.0
        ));
        if added > allowance(case) {
            failures.push(format!(
                "{}: added {} MiB, allowed {} MiB",
                case.name,
                added >> 20,
                allowance(case) >> 20
            ));
        }
        // Still alive and answering.
        assert!(
            served.child.try_wait().unwrap().is_none(),
            "the server died on {}; see {}",
            case.name,
            served.log.display()
        );
        let health = send(&addr, "GET", "/v1/health", &[], Body::None);
        assert_eq!(health.status, 200, "health after {}", case.name);
        for answer in got {
            answers.push((case.name.clone(), answer));
        }
    }
    summary.push(format!(
        "\n{} cases; baseline {:.0} MiB; peak resident memory across the corpus {:.0} MiB (limit {} MiB); address space capped at {} GiB",
        cases.len(),
        baseline as f64 / 1048576.0,
        peak as f64 / 1048576.0,
        PEAK_BYTES >> 20,
        ADDRESS_SPACE_BYTES >> 30
    ));

    // The reports and report pages of every decided submission, for the ID scan.
    let listing = send(&addr, "GET", "/v1/submissions", &[], Body::None);
    let listing: serde_json::Value = serde_json::from_slice(&listing.body).unwrap();
    for submission in listing["submissions"].as_array().unwrap() {
        let id = submission["submission_id"].as_str().unwrap();
        for path in [
            format!("/v1/submissions/{id}/report.json"),
            format!("/v1/submissions/{id}/report.csv"),
            format!("/v1/submissions/{id}/report.html"),
            format!("/submit/{id}"),
            format!("/submit/{id}?lang=en"),
        ] {
            let answer = send(&addr, "GET", &path, &[], Body::None);
            assert_eq!(answer.status, 200, "{path}");
            answers.push((path, answer));
        }
    }
    served.child.kill().unwrap();
    served.child.wait().unwrap();

    std::fs::write(artifacts.join("summary.txt"), summary.join("\n")).unwrap();
    println!("{}", summary.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(peak < PEAK_BYTES, "peak {} MiB", peak >> 20);
    assert_eq!(
        table_versions(&lake).await,
        before,
        "the tables are unchanged"
    );

    let ids = raw_ids();
    let mut leaked = Vec::new();
    for (what, answer) in &answers {
        let text = format!("{}\n{}", answer.headers, answer.text());
        for id in leaks(&text, &ids) {
            leaked.push(format!("response {what}: {id}"));
        }
    }
    let log_text = std::fs::read_to_string(&served.log).unwrap();
    for id in leaks(&log_text, &ids) {
        leaked.push(format!("server log: {id}"));
    }
    for (path, text) in lake_texts(&lake_dir) {
        for id in leaks(&text, &ids) {
            leaked.push(format!("{}: {id}", path.display()));
        }
    }
    assert!(leaked.is_empty(), "raw ID numbers:\n{}", leaked.join("\n"));
    // The scan can see: the raw uploads hold the numbers, and it finds them there.
    let small_uploads: Vec<PathBuf> = walk(&lake_dir.join("uploads"))
        .into_iter()
        .filter(|p| std::fs::metadata(p).unwrap().len() < 1 << 20)
        .collect();
    let uploads: String = small_uploads
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect();
    assert!(
        !leaks(&uploads, &ids).is_empty(),
        "the scan finds raw uploads"
    );
}

/// A valid file whose every row is a plausibility finding (each worker also sent by another
/// county of the league), sent to the server under the same cap: accepted, its report lists
/// the first 1,000 findings and counts them all, and the ingest with its checks and refresh
/// adds no more memory than the dataset's limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_whose_every_row_is_a_finding_stays_within_its_memory() {
    use jiazheng_core::samples::synth::{self, Style};

    const ROWS: usize = 200_000;
    let work = tempfile::tempdir().unwrap();
    let lake_path = work.path().join("lake").to_str().unwrap().to_string();
    let mut served = serve_capped(&lake_path, &work.path().join("server.log"));
    let (pid, addr) = (served.child.id(), served.addr.clone());
    let token = issue_key(jiazheng(), &lake_path, "152200", "submitter");

    let tree =
        jiazheng_core::regions::read_nbs_dir(&jiazheng_core::samples::inner_mongolia()).unwrap();
    let period = "2023H2".parse().unwrap();
    let mut workers = Vec::new();
    for county in ["152202", "152201"] {
        let region = tree.get(county).unwrap();
        let enterprises = synth::enterprises(region, period, "every-row");
        let put = |dataset: &str, body: Vec<u8>| {
            let path = format!("/v1/submissions/{dataset}/2023H2/{county}?file_name={dataset}.csv");
            send(&addr, "PUT", &path, &[bearer(&token)], Body::Bytes(body))
        };
        let answer = put(
            "enterprises",
            synth::write(&enterprises, Style::CsvUtf8, "").unwrap(),
        );
        assert_eq!(answer.status, 201, "{}", answer.text());
        workers.push((
            county,
            synth::workers(&tree, region, &enterprises, ROWS, "every-row"),
        ));
    }
    // 乌兰浩特市 sends the very people 阿尔山市 sent.
    let id = workers[0]
        .1
        .dataset
        .fields
        .iter()
        .position(|f| f.name == "id_number")
        .unwrap();
    let people: Vec<_> = workers[0].1.rows.iter().map(|r| r[id].clone()).collect();
    for (row, person) in workers[1].1.rows.iter_mut().zip(people) {
        row[id] = person;
    }
    let mut answers = Vec::new();
    let mut added = 0;
    for (county, sheet) in &workers {
        let file = work.path().join(format!("workers-{county}.csv"));
        std::fs::write(&file, synth::write(sheet, Style::CsvUtf8, "").unwrap()).unwrap();
        let (rss, _) = memory(pid);
        reset_peak(pid);
        let path = format!("/v1/submissions/workers/2023H2/{county}?file_name=workers.csv");
        answers.push(send(
            &addr,
            "PUT",
            &path,
            &[bearer(&token)],
            Body::File(file),
        ));
        added = memory(pid).1.saturating_sub(rss);
        assert!(
            served.child.try_wait().unwrap().is_none(),
            "the server died"
        );
    }
    let answer = answers.pop().unwrap();
    assert_eq!(answer.status, 201, "{}", answer.text());
    let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    let report = &json["report"];
    assert_eq!(report["status"], "accepted");
    let by_code = &report["summary"]["by_code"];
    assert_eq!(by_code["worker_in_two_counties"], ROWS, "{by_code}");
    // And the count that rose past the 2023H1 sample's: every finding is open.
    let flagged: u64 = jiazheng_core::plausibility::RULES
        .iter()
        .filter_map(|r| by_code[r.code].as_u64())
        .sum();
    assert_eq!(by_code["workers_count_change"], 1, "{by_code}");
    assert_eq!(
        report["issues"].as_array().unwrap().len(),
        jiazheng_core::findings::MAX_LISTED
    );
    assert_eq!(json["submission"]["open_findings"], flagged);
    let limit = datasets::WORKERS.limits().max_memory_bytes;
    println!(
        "{ROWS} rows, every one a finding: added {} MiB (limit {} MiB)",
        added >> 20,
        limit >> 20
    );
    assert!(
        added <= limit,
        "added {} MiB, limit {} MiB",
        added >> 20,
        limit >> 20
    );
    assert_eq!(
        send(&addr, "GET", "/v1/health", &[], Body::None).status,
        200
    );
    served.child.kill().unwrap();
    served.child.wait().unwrap();
}
