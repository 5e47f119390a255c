//! A temporary lake behind the real Router, and figures computed without the library.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use jiazheng_core::datasets::columns;
use jiazheng_core::ingest::Ingestor;
use jiazheng_core::lake::{self, Lake};
use jiazheng_core::privacy::Pseudonymizer;
use jiazheng_core::regions::{self, RegionTree};
use jiazheng_core::{keys, samples};
use jiazheng_web as api;
use tower::ServiceExt;

pub mod consistency;

pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A program of the pinned test tools (`python`, `schemathesis`, `cfn-lint`), which
/// `scripts/test` installs; `needed_for` says what for when they are missing.
pub fn tool(name: &str, needed_for: &str) -> PathBuf {
    let python = std::env::var("JIAZHENG_PYTHON").unwrap_or_else(|_| {
        panic!("JIAZHENG_PYTHON is not set: run the tests with scripts/test, which installs {needed_for}")
    });
    PathBuf::from(python).with_file_name(name)
}

/// The `jiazheng` command, free of any lake or ID key this shell may have set.
pub fn jiazheng() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_jiazheng"));
    cmd.env_remove("JIAZHENG_LAKE")
        .env_remove("JIAZHENG_ID_HMAC_KEY");
    cmd
}

/// Issues a key with `jiazheng keys issue` (from a prepared command) and returns its token.
pub fn issue_key(
    mut jiazheng: std::process::Command,
    lake: &str,
    region: &str,
    role: &str,
) -> String {
    let out = jiazheng
        .args([
            "keys", "issue", "--lake", lake, "--region", region, "--role", role,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs a tool (schemathesis, the browser test) against a served `jiazheng`, stops the
/// server, and returns the tool's stdout; fails with everything it printed if it failed.
pub fn run_against(
    mut server: std::process::Child,
    tool: &mut std::process::Command,
    what: &str,
) -> String {
    let run = tool.output().unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    stdout
}

/// Imports the Inner Mongolia regions into LAKE and starts `jiazheng serve --addr 127.0.0.1:0
/// --lake LAKE --samples sample-data` from a prepared command (its environment set); returns
/// it with the address it printed (`127.0.0.1:port`), once it answers.
pub fn serve(jiazheng: std::process::Command, lake: &str) -> (std::process::Child, String) {
    serve_samples(jiazheng, lake, &repo("sample-data"))
}

/// A sample directory with only the enterprises and outlets of the six counties (the
/// tests on S3, where every file costs round trips to the emulator).
pub fn few_samples(into: &std::path::Path) -> PathBuf {
    for period in ["2023H1", "2023H2"] {
        for entry in std::fs::read_dir(repo(&format!("sample-data/submissions/{period}"))).unwrap()
        {
            let county = entry.unwrap().path();
            let target = into
                .join("submissions")
                .join(period)
                .join(county.file_name().unwrap());
            std::fs::create_dir_all(&target).unwrap();
            for file in std::fs::read_dir(&county).unwrap() {
                let file = file.unwrap().path();
                let name = file.file_name().unwrap().to_string_lossy().into_owned();
                if name.starts_with("enterprises") || name.starts_with("outlets") {
                    std::fs::copy(&file, target.join(&name)).unwrap();
                }
            }
        }
    }
    into.to_path_buf()
}

/// [`serve`] with another sample directory.
pub fn serve_samples(
    mut jiazheng: std::process::Command,
    lake: &str,
    samples_dir: &std::path::Path,
) -> (std::process::Child, String) {
    use std::process::Stdio;
    // The import runs in the same environment (an S3 lake needs its credentials).
    let mut import = self::jiazheng();
    for (name, value) in jiazheng.get_envs() {
        match value {
            Some(value) => import.env(name, value),
            None => import.env_remove(name),
        };
    }
    let imported = import
        .args(["regions", "import", "--lake", lake])
        .arg(samples::inner_mongolia())
        .output()
        .unwrap();
    assert!(imported.status.success(), "{imported:?}");
    let mut child = jiazheng
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--lake",
            lake,
            "--samples",
        ])
        .arg(samples_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (child, addr)
}

pub struct Server {
    pub dir: tempfile::TempDir,
    pub lake: Lake,
    pub router: axum::Router,
    /// A submitter key for all of Inner Mongolia, sent with every `put`.
    pub token: String,
}

impl Server {
    /// A lake holding only the Inner Mongolia region tree.
    pub async fn with_regions() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        samples::import_regions(&lake, &samples::inner_mongolia())
            .await
            .unwrap();
        let ingestor = Ingestor::new(lake.clone(), Some(Pseudonymizer::new(&[42; 32]).unwrap()));
        let router = api::router(api::AppState::new(ingestor));
        let tree = regions::read_nbs_dir(&samples::inner_mongolia()).unwrap();
        let (token, _) = keys::issue(&lake, tree.get("15").unwrap(), keys::Role::Submitter)
            .await
            .unwrap();
        Server {
            dir,
            lake,
            router,
            token,
        }
    }

    /// An ingestor on the server's lake with the same pseudonym key, without the per-file
    /// refresh: for tests that load many files and refresh (or not) once.
    pub fn bulk_ingestor(&self) -> Ingestor {
        Ingestor::new(
            self.lake.clone(),
            Some(Pseudonymizer::new(&[42; 32]).unwrap()),
        )
        .for_bulk_load()
    }

    /// Signs in through the page with a key; returns the session cookie (`jz_session=…`).
    pub async fn session(&self, token: &str) -> String {
        let (status, headers, _) = self
            .raw(
                Request::post("/submit/sign-in")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(format!("key={token}")))
                    .unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let cookie = headers[header::SET_COOKIE].to_str().unwrap();
        cookie.split(';').next().unwrap().to_string()
    }

    pub async fn tree(&self) -> RegionTree {
        regions::read_nbs_dir(&samples::inner_mongolia()).unwrap()
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, serde_json::Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, serde_json::Value) {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    pub async fn put(&self, path: &str, body: Vec<u8>) -> (StatusCode, serde_json::Value) {
        self.put_as(Some(&self.token.clone()), path, body).await
    }

    /// A PUT with the given token, or none.
    pub async fn put_as(
        &self,
        token: Option<&str>,
        path: &str,
        body: Vec<u8>,
    ) -> (StatusCode, serde_json::Value) {
        let mut request = Request::put(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    pub async fn table_version(&self, name: &str) -> Option<u64> {
        self.lake
            .load(name)
            .await
            .unwrap()
            .and_then(|t| t.version())
    }

    /// (first column, submission id) of every current row, sorted.
    pub async fn table_rows(&self, name: &str) -> Vec<(String, String)> {
        let table = self.lake.load(name).await.unwrap().unwrap();
        rows_of(name, &table).await
    }

    /// The same, as the table was at `version` (Delta time travel).
    pub async fn table_rows_at(&self, name: &str, version: u64) -> Vec<(String, String)> {
        let table = deltalake::DeltaTableBuilder::from_url(self.lake.table_url(name))
            .unwrap()
            .with_version(version)
            .load()
            .await
            .unwrap();
        rows_of(name, &table).await
    }
}

async fn rows_of(name: &str, table: &deltalake::DeltaTable) -> Vec<(String, String)> {
    let ctx = deltalake::datafusion::prelude::SessionContext::new();
    lake::register(&ctx, name, table).await.unwrap();
    let short = name.rsplit('/').next().unwrap();
    let schema = table.snapshot().unwrap().schema();
    let first = schema.fields().next().unwrap().name().clone();
    let batches = ctx
        .sql(&format!(
            "SELECT {first}, {} FROM {short} ORDER BY 1",
            columns::SUBMISSION
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut out = Vec::new();
    for b in &batches {
        let (a, s) = (
            lake::read::text(b, 0).unwrap(),
            lake::read::text(b, 1).unwrap(),
        );
        for i in 0..b.num_rows() {
            out.push((a.value(i).to_string(), s.value(i).to_string()));
        }
    }
    out
}

/// Communities per code prefix (2, 4, 6 and 9 digits), counted straight from the NBS
/// villages file: a residents' committee ends in 001–199.
pub fn community_counts() -> BTreeMap<String, u64> {
    let file = std::fs::File::open(samples::inner_mongolia().join("villages.csv.gz")).unwrap();
    let mut counts = BTreeMap::new();
    for line in BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .skip(1)
    {
        let line = line.unwrap();
        let code = line.split(',').next().unwrap();
        let tail: u32 = code[9..12].parse().unwrap();
        if (1..=199).contains(&tail) {
            for n in [2, 4, 6, 9] {
                *counts.entry(code[..n].to_string()).or_default() += 1;
            }
        }
    }
    counts
}

impl Server {
    /// The declared fields of every row of a table, as a printed table sorted by the key:
    /// what two submissions of the same facts must agree on.
    pub async fn table_facts(&self, dataset: &jiazheng_core::datasets::Dataset) -> String {
        let name = jiazheng_core::lake::names::dataset(dataset.name);
        let table = self.lake.load(&name).await.unwrap().unwrap();
        let ctx = deltalake::datafusion::prelude::SessionContext::new();
        lake::register(&ctx, &name, &table).await.unwrap();
        let fields: Vec<&str> = dataset.fields.iter().map(|f| f.name).collect();
        let batches = ctx
            .sql(&format!(
                "SELECT {}, county, period FROM {} ORDER BY {}",
                fields.join(", "),
                dataset.name,
                dataset.key
            ))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        deltalake::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    }
}

impl Server {
    pub async fn get_bytes(&self, path: &str) -> Vec<u8> {
        let response = self
            .router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec()
    }
}

impl Server {
    /// Any request, answered whole: status, headers and body bytes.
    pub async fn raw(
        &self,
        request: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        (status, headers, body)
    }

    /// Loads the six counties' 2023H2 sample files.
    pub async fn with_samples() -> Server {
        let server = Server::with_regions().await;
        for county in ["152201", "152202", "152221", "152222", "152223", "152224"] {
            for dataset in ["enterprises", "outlets"] {
                let dir = repo(&format!("sample-data/submissions/2023H2/{county}"));
                let file = std::fs::read_dir(&dir)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .find(|p| p.file_stem().is_some_and(|s| s == dataset))
                    .unwrap();
                let (status, json) = server
                    .put(
                        &format!("/v1/submissions/{dataset}/2023H2/{county}"),
                        std::fs::read(file).unwrap(),
                    )
                    .await;
                assert_eq!(status, StatusCode::CREATED, "{json}");
            }
        }
        server
    }
}

/// The counties of 兴安盟, the league most tests submit for.
pub const LEAGUE: [&str; 6] = ["152201", "152202", "152221", "152222", "152223", "152224"];

impl Server {
    /// PUTs a generated sheet as a UTF-8 CSV for a period and region.
    pub async fn send_sheet(
        &self,
        sheet: &samples::synth::Sheet,
        period: &str,
        region: &str,
    ) -> (StatusCode, serde_json::Value) {
        let body = samples::synth::write(sheet, samples::synth::Style::CsvUtf8, "").unwrap();
        self.put(
            &format!("/v1/submissions/{}/{period}/{region}", sheet.dataset.name),
            body,
        )
        .await
    }
}

/// The row of `region` in a values response.
pub fn one<'a>(json: &'a serde_json::Value, region: &str) -> &'a serde_json::Value {
    json["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["region"] == region)
        .unwrap_or_else(|| panic!("no {region} in {json}"))
}

/// A copy of a directory tree (a lake, to reopen as another process would find it).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
