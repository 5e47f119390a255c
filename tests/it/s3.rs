//! The AWS path on this machine, with real protocols: a real S3 server (moto, pinned in
//! scripts/requirements.txt) on 127.0.0.1, `jiazheng serve` on an s3:// lake, presigned
//! uploads over HTTP, the bucket's notification taken from its SQS queue, both functions run
//! under the Lambda Runtime API emulator of `cargo lambda watch` and invoked with
//! `cargo lambda invoke`, and the tables read back by an independent reader (the `deltalake`
//! Python package).

use crate::support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::repo;

const BUCKET: &str = "jiazheng";
const QUEUE: &str = "jiazheng-ingest";
const LAKE: &str = "s3://jiazheng/lake";
const SECRET: &str = "jiazheng/id-hmac-key";

fn tools() -> PathBuf {
    support::tool("python", "moto")
        .parent()
        .unwrap()
        .to_path_buf()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, what: &str) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A process that dies with the test.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// moto's S3 (and SQS) server, set up as the SAM template sets up AWS.
struct Moto {
    _server: Process,
    endpoint: String,
}

impl Moto {
    fn start() -> Moto {
        let port = free_port();
        let server = Command::new(tools().join("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server");
        wait_for_port(port, "moto");
        let moto = Moto {
            _server: Process(server),
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        moto.script(&["setup", BUCKET, QUEUE, "lake/uploads/"]);
        moto.script(&[
            "secret",
            SECRET,
            "0123456789abcdef0123456789abcdef-test-key",
        ]);
        moto
    }

    /// The standard AWS environment pointed at this server, as every binary reads it.
    fn env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            // The ID-number key comes from Secrets Manager, as on AWS.
            .env("JIAZHENG_ID_HMAC_SECRET", SECRET)
            .env_remove("JIAZHENG_ID_HMAC_KEY")
            .env_remove("JIAZHENG_LAKE")
    }

    fn script(&self, args: &[&str]) -> String {
        let out = self
            .env(&mut Command::new(tools().join("python")))
            .arg(repo("scripts/moto_s3.py"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "moto_s3.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Every version of an object of the lake, oldest last: id, size, sha256, latest.
    fn versions(&self, key: &str) -> Vec<Value> {
        let key = format!("lake/{key}");
        serde_json::from_str(&self.script(&["versions", BUCKET, &key])).unwrap()
    }

    /// The SQS event Lambda would get for the notifications now in the queue.
    fn notifications(&self) -> Value {
        serde_json::from_str(&self.script(&["receive", QUEUE, "10"])).unwrap()
    }

    /// The same server as storage options, for a lake opened in the test's own process.
    fn lake(&self) -> jiazheng_core::lake::Lake {
        jiazheng_core::lake::Lake::open_with(
            LAKE,
            [
                ("aws_endpoint", self.endpoint.as_str()),
                ("aws_allow_http", "true"),
                ("aws_access_key_id", "testing"),
                ("aws_secret_access_key", "testing"),
                ("aws_region", "us-east-1"),
            ],
        )
        .unwrap()
    }

    fn jiazheng(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jiazheng"));
        self.env(&mut cmd);
        cmd
    }

    /// Runs Python with the `deltalake` package on a table of the lake. It leaves with
    /// `os._exit`: tearing down deltalake's and pyarrow's thread pools at interpreter exit
    /// now and then aborts ("terminate called without an active exception") after the
    /// answer is printed.
    fn read_delta(&self, code: &str) -> Value {
        let program = format!(
            "import json, os\nfrom deltalake import DeltaTable\n\
             opts = {{'AWS_ENDPOINT_URL': os.environ['AWS_ENDPOINT_URL'], 'AWS_ALLOW_HTTP': 'true', \
             'AWS_ACCESS_KEY_ID': 'testing', 'AWS_SECRET_ACCESS_KEY': 'testing', 'AWS_REGION': 'us-east-1'}}\n\
             def table(name):\n    return DeltaTable('{LAKE}/' + name, storage_options=opts)\n{code}\n\
             import sys\nsys.stdout.flush()\nos._exit(0)\n"
        );
        let out = self
            .env(&mut Command::new(tools().join("python")))
            // cargo points the loader at the target directory; pyarrow's C++ libraries must
            // not pick up what is there.
            .env_remove("LD_LIBRARY_PATH")
            .args(["-c", &program])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "deltalake reader: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// A plain HTTP/1.1 request, so the test needs no client library.
fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(host).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head[9..12].parse().unwrap();
    let mut body = response[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = unchunk(&body);
    }
    (status, body)
}

fn unchunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 4 + size..];
    }
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(body)))
}

/// `jiazheng serve` on the S3 lake, with the regions and the enterprises and outlets samples.
fn serve(moto: &Moto) -> (Process, String) {
    let samples = tempfile::tempdir().unwrap();
    let few = support::few_samples(samples.path());
    let (child, addr) = support::serve_samples(moto.jiazheng(), LAKE, &few);
    (Process(child), format!("http://{addr}"))
}

fn issue_key(moto: &Moto, region: &str) -> String {
    support::issue_key(moto.jiazheng(), LAKE, region, "submitter")
}

/// One function binary under the Runtime API emulator of `cargo lambda watch`.
struct Function {
    _watch: Process,
    _function: Process,
    port: u16,
}

impl Function {
    fn start(moto: &Moto, binary: &str) -> Function {
        let port = free_port();
        let watch = Command::new(tools().join("cargo-lambda"))
            .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1"])
            .args(["-P", &port.to_string()])
            .current_dir(repo(""))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cargo lambda watch");
        wait_for_port(port, "cargo lambda watch");
        let path = Path::new(env!("CARGO_BIN_EXE_jiazheng")).with_file_name(binary);
        assert!(
            path.exists(),
            "{path:?} is not built: run cargo test --workspace"
        );
        let function = moto
            .env(&mut Command::new(path))
            .env("JIAZHENG_LAKE", LAKE)
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Function {
            _watch: Process(watch),
            _function: Process(function),
            port,
        }
    }

    /// `cargo lambda invoke` with the event, as Lambda would deliver it.
    fn invoke(&self, event: &Value) -> Value {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("event.json");
        std::fs::write(&file, event.to_string()).unwrap();
        let out = Command::new(tools().join("cargo-lambda"))
            .args(["lambda", "invoke", "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &self.port.to_string(), "--data-file"])
            .arg(&file)
            .arg("_")
            .current_dir(repo(""))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cargo lambda invoke: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        json_of(&out.stdout)
    }
}

fn sample(path: &str) -> Vec<u8> {
    std::fs::read(repo(&format!("sample-data/submissions/{path}"))).unwrap()
}

#[test]
fn presigned_upload_queue_event_lambda_ingest_api_and_an_independent_reader() {
    let moto = Moto::start();
    let (_server, base) = serve(&moto);
    // Loading the samples put files under uploads/ too; their notifications are not ours.
    moto.notifications();
    let wulanhaote = issue_key(&moto, "152201");
    let arxan = issue_key(&moto, "152202");

    // A submitter asks for an upload URL for a file of a given size; another county's key
    // may not.
    let ask_for = |token: &str, dataset: &str, file_name: &str, size: usize| {
        let body = json!({ "dataset": dataset, "period": "2024H1", "region": "152201",
            "file_name": file_name, "size_bytes": size });
        let auth = format!("Bearer {token}");
        http(
            "POST",
            &format!("{base}/v1/submissions"),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.to_string().as_bytes(),
        )
    };
    let ask =
        |token: &str, file_name: &str, size: usize| ask_for(token, "outlets", file_name, size);
    let file = sample("2023H2/152201/outlets.csv");
    let (status, _) = ask(&arxan, "outlets.csv", file.len());
    assert_eq!(status, 403);
    let (status, body) = ask(&wulanhaote, "乌兰浩特 网点.csv", file.len());
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let ticket = json_of(&body);
    let id = ticket["submission_id"].as_str().unwrap().to_string();
    let (_, state) = http("GET", &format!("{base}/v1/submissions/{id}"), &[], b"");
    assert_eq!(json_of(&state)["status"], "pending");
    // The URL is signed for this size, once: S3 refuses any other length or a second PUT.
    let url = ticket["upload_url"].as_str().unwrap().to_string();
    assert!(
        url.contains("X-Amz-SignedHeaders=content-length%3Bhost%3Bif-none-match"),
        "{url}"
    );
    assert_eq!(
        ticket["headers"],
        json!({"Content-Length": file.len().to_string(), "If-None-Match": "*"})
    );
    let upload_key = ticket["pending"]["key"].as_str().unwrap().to_string();

    // The file goes straight to S3 over HTTP, and S3 notifies the queue.
    let (status, body) = http("PUT", &url, &[("If-None-Match", "*")], &file);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let batch = moto.notifications();
    assert_eq!(batch["Records"].as_array().unwrap().len(), 1, "{batch}");

    // The ingest function takes the real notification from the queue, once.
    let ingest = Function::start(&moto, "ingest");
    let outlets_before = moto.read_delta("print(table('tables/outlets').version())");
    let result = ingest.invoke(&batch);
    assert_eq!(result["batchItemFailures"], json!([]), "{result}");
    let decided = &result["results"][0]["results"][0];
    assert_eq!(decided["submission_id"], id.as_str(), "{result}");
    assert_eq!(decided["status"], "accepted", "{result}");
    let outlets_after = moto.read_delta("print(table('tables/outlets').version())");
    assert_eq!(
        outlets_after.as_i64(),
        outlets_before.as_i64().map(|v| v + 1)
    );
    // SQS delivers at least once: the same message again writes nothing.
    let again = ingest.invoke(&batch);
    assert_eq!(
        again["results"][0]["results"][0]["duplicate"], true,
        "{again}"
    );
    assert_eq!(
        moto.read_delta("print(table('tables/outlets').version())"),
        outlets_after
    );
    let (_, state) = http("GET", &format!("{base}/v1/submissions/{id}"), &[], b"");
    let state = json_of(&state);
    assert_eq!(state["status"], "accepted", "{state}");
    assert_eq!(state["submission"]["file_name"], "乌兰浩特 网点.csv");
    assert_eq!(state["submission"]["current"], true);

    // The decision pinned the object version it read.
    let versions = moto.versions(&upload_key);
    assert_eq!(versions.len(), 1, "{versions:?}");
    let pinned = state["submission"]["raw_version"].clone();
    assert_eq!(pinned, versions[0]["version"], "{state}");
    assert_eq!(state["submission"]["content_sha256"], versions[0]["sha256"]);
    // A second PUT with the signed condition is refused by S3 itself.
    let other = sample("2023H2/152202/outlets.csv");
    let (status, _) = http("PUT", &url, &[("If-None-Match", "*")], &other);
    assert_eq!(status, 412);
    assert_eq!(moto.versions(&upload_key).len(), 1);
    // One that leaves it out (AWS would refuse the signature; moto does not check) writes a
    // new version, and its notification changes nothing: the decision stands on the pinned
    // version, which the bucket keeps.
    let (status, _) = http("PUT", &url, &[], &other);
    assert_eq!(status, 200);
    let replaced = ingest.invoke(&moto.notifications());
    assert_eq!(
        replaced["results"][0]["results"][0]["duplicate"], true,
        "{replaced}"
    );
    assert_eq!(
        moto.read_delta("print(table('tables/outlets').version())"),
        outlets_after
    );
    let versions = moto.versions(&upload_key);
    assert_eq!(versions.len(), 2, "{versions:?}");
    let kept = versions.iter().find(|v| v["version"] == pinned).unwrap();
    assert_eq!(kept["sha256"], state["submission"]["content_sha256"]);
    let (_, now) = http("GET", &format!("{base}/v1/submissions/{id}"), &[], b"");
    assert_eq!(json_of(&now)["submission"]["raw_version"], pinned);

    // The API function answers an API Gateway v2 event from the same lake.
    let api = Function::start(&moto, "api");
    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(repo("functions/api/events/apigw-v2-outlet-coverage.json"))
            .unwrap(),
    )
    .unwrap();
    let response = api.invoke(&event);
    assert_eq!(response["statusCode"], 200, "{response}");
    let values = json_of(response["body"].as_str().unwrap().as_bytes());
    let data = values["data"].as_array().unwrap();
    assert_eq!(data.len(), 6, "{values}");
    let wlht = data.iter().find(|d| d["region"] == "152201").unwrap();
    assert_eq!(wlht["denominator"], 61.0);

    // An independent reader sees exactly the rows the API publishes.
    let from_reader = moto.read_delta(
        "t = table('tables/outlets').to_pyarrow_table()\n\
         ids = [r['outlet_id'] for r in t.to_pylist() if r['period'] == '2024H1']\n\
         print(json.dumps(sorted(ids)))",
    );
    let (_, page) = http(
        "GET",
        &format!("{base}/v1/datasets/outlets?period=2024H1&region=152201&limit=1000"),
        &[],
        b"",
    );
    let mut from_api: Vec<String> = json_of(&page)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outlet_id"].as_str().unwrap().to_string())
        .collect();
    from_api.sort();
    assert!(!from_api.is_empty());
    assert_eq!(from_reader, json!(from_api));

    // A rejected file on S3: the tables stay as they were and the report is readable.
    let bad = std::fs::read(repo("tests/fixtures/bad/outlets-mode.csv")).unwrap();
    let (status, body) = ask(&wulanhaote, "broken.csv", bad.len());
    assert_eq!(status, 201);
    let ticket = json_of(&body);
    let (status, _) = http("PUT", ticket["upload_url"].as_str().unwrap(), &[], &bad);
    assert_eq!(status, 200);
    let result = ingest.invoke(&moto.notifications());
    assert_eq!(
        result["results"][0]["results"][0]["status"], "rejected",
        "{result}"
    );
    assert_eq!(
        moto.read_delta("print(table('tables/outlets').version())"),
        outlets_after
    );
    let rejected = ticket["submission_id"].as_str().unwrap();
    let (status, report) = http(
        "GET",
        &format!("{base}/v1/submissions/{rejected}/report.csv"),
        &[],
        b"",
    );
    assert_eq!(status, 200);
    assert!(report.starts_with(&[0xEF, 0xBB, 0xBF]));
    assert!(String::from_utf8_lossy(&report).lines().count() > 1);

    // Too big: refused when announced, and an upload bigger than announced (which AWS would
    // refuse for its signed length) is rejected from its size alone, before a byte is read.
    let (_, datasets) = http("GET", &format!("{base}/v1/datasets"), &[], b"");
    let shops_max = json_of(&datasets)["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "shops")
        .unwrap()["limits"]["max_file_bytes"]
        .as_u64()
        .unwrap() as usize;
    let (status, body) = ask_for(&wulanhaote, "shops", "shops.csv", shops_max + 1);
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    assert!(
        json_of(&body)["type"]
            .as_str()
            .unwrap()
            .ends_with("/too-large")
    );
    let (status, body) = ask_for(&wulanhaote, "shops", "shops.csv", 100);
    assert_eq!(status, 201);
    let ticket = json_of(&body);
    let huge = vec![b'a'; shops_max + 1];
    let (status, _) = http("PUT", ticket["upload_url"].as_str().unwrap(), &[], &huge);
    assert_eq!(status, 200);
    let result = ingest.invoke(&moto.notifications());
    let decided = &result["results"][0]["results"][0];
    assert_eq!(decided["status"], "rejected", "{result}");
    let id = decided["submission_id"].as_str().unwrap();
    let (_, report) = http("GET", &format!("{base}/v1/submissions/{id}"), &[], b"");
    let report = json_of(&report);
    assert_eq!(
        report["report"]["issues"][0]["code"], "file_too_large",
        "{report}"
    );
}

#[test]
fn six_county_ingests_at_once_all_commit_on_s3() {
    let moto = Moto::start();
    let import = moto
        .jiazheng()
        .args(["regions", "import", "--lake", LAKE])
        .arg(repo("sample-data/regions-inner-mongolia"))
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let counties = ["152201", "152202", "152221", "152222", "152223", "152224"];
    let file_of = |county: &str| {
        let dir = repo(&format!("sample-data/submissions/2023H2/{county}"));
        ["outlets.csv", "outlets.xlsx"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.exists())
            .unwrap()
    };
    let started: Vec<Child> = counties
        .iter()
        .map(|county| {
            moto.jiazheng()
                .args(["submit", "--lake", LAKE, "--dataset", "outlets"])
                .args(["--period", "2023H2", "--region", county])
                .arg(file_of(county))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut rows_in_files = serde_json::Map::new();
    for (county, child) in counties.iter().zip(started) {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{county}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report = json_of(&out.stdout);
        rows_in_files.insert(county.to_string(), report["summary"]["rows"].clone());
    }
    // Six commits of new rows, none lost: every county's rows in the table are its file's.
    let seen = moto.read_delta(
        "t = table('tables/outlets')\n\
         writes = [h for h in t.history() if h.get('operation') != 'CREATE TABLE']\n\
         rows = {}\n\
         for r in t.to_pyarrow_table().to_pylist():\n    rows[r['county']] = rows.get(r['county'], 0) + 1\n\
         print(json.dumps({'commits': len(writes), 'rows': rows}))",
    );
    assert_eq!(seen["commits"], 6, "{seen}");
    assert_eq!(seen["rows"], Value::Object(rows_in_files), "{seen}");
}

/// A `jiazheng` command on the S3 lake that must succeed; its stdout.
fn must(moto: &Moto, args: &[&str]) -> Vec<u8> {
    let out = moto.jiazheng().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_commit_or_the_log_heals_on_s3() {
    use jiazheng_core::failpoints;
    use jiazheng_core::samples::synth::{self, Style};
    use support::consistency::{PERIOD, consistent, outlets_file, requires_failpoints};

    requires_failpoints();
    let moto = Moto::start();
    let regions = repo("sample-data/regions-inner-mongolia");
    must(
        &moto,
        &[
            "regions",
            "import",
            "--lake",
            LAKE,
            regions.to_str().unwrap(),
        ],
    );
    let tree = jiazheng_core::regions::read_nbs_dir(&regions).unwrap();
    let work = tempfile::tempdir().unwrap();
    let submit = |dataset: &str, file: &Path| {
        let mut cmd = moto.jiazheng();
        cmd.args(["submit", "--lake", LAKE, "--dataset", dataset])
            .args(["--period", PERIOD, "--region", "152201"])
            .arg(file);
        cmd
    };
    let enterprises = synth::enterprises(
        tree.get("152201").unwrap(),
        PERIOD.parse().unwrap(),
        "crash",
    );
    let path = work.path().join("enterprises.csv");
    std::fs::write(
        &path,
        synth::write(&enterprises, Style::CsvUtf8, "").unwrap(),
    )
    .unwrap();
    assert!(submit("enterprises", &path).status().unwrap().success());
    let (first, _) = outlets_file(work.path(), &tree, "152201", "first");
    assert!(submit("outlets", &first).status().unwrap().success());

    let lake = moto.lake();
    for point in [failpoints::DATA_COMMITTED, failpoints::LOG_WRITTEN] {
        for resend in [true, false] {
            let (file, rows) =
                outlets_file(work.path(), &tree, "152201", &format!("{point}-{resend}"));
            let crashed = submit("outlets", &file)
                .env(failpoints::ENV, point)
                .output()
                .unwrap();
            assert!(
                crashed.status.code().is_none(),
                "{point}: did not die: {crashed:?}"
            );
            if resend {
                let out = submit("outlets", &file).output().unwrap();
                assert!(out.status.success(), "{point}: {out:?}");
            } else {
                must(&moto, &["repair", "--lake", LAKE, "--grace", "0"]);
            }
            let (_, current) = consistent(&lake, "152201").await.unwrap_or_else(|e| {
                panic!(
                    "{point}, {}: {e}",
                    if resend { "resent" } else { "repaired" }
                )
            });
            assert_eq!(current, rows, "{point} resend={resend}");
        }
    }
}
