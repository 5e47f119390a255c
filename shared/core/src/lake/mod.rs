//! The lake: Delta tables and plain objects under one root, on the local filesystem or S3,
//! always through `object_store` (nothing here assumes a local path).
//!
//! Layout under the root:
//! - `uploads/{dataset}/{period}/{region}/{id}.{ext}`: raw files, kept as received, never served
//! - `reports/{id}.json`: validation reports
//! - `tables/{dataset}`: one Delta table per dataset, partitioned by period and county
//! - `tables/regions`, `tables/submissions`: the region tree and the submission log
//! - `published/indicator_values`: the small snapshot the API serves

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::logstore::object_store::{ObjectStore, ObjectStoreExt, PutPayload, path::Path};
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError, ObjectStoreError, TableProperty};
use futures::StreamExt;
use url::Url;

pub mod codec;
mod compact;
mod evolve;
mod held;
mod history;
mod lease;
mod presign;
mod staged;
pub use held::Held;
pub use history::{Commit, committed_at, keys as commit_keys};
pub use lease::Lease;
pub use presign::{PresignedPut, SIGNED_HEADERS};
use staged::CHECKPOINT_INTERVAL;
pub use staged::{Scope, StagedWrite, StoredFile, commit_retries};

/// Names of the lake's tables, relative to the root.
pub mod names {
    pub const REGIONS: &str = "tables/regions";
    pub const SUBMISSIONS: &str = "tables/submissions";
    pub const CONFIRMATIONS: &str = "tables/confirmations";
    pub const INDICATOR_VALUES: &str = "published/indicator_values";

    pub fn dataset(name: &str) -> String {
        format!("tables/{name}")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("lake location {0:?} is neither a path nor a URL such as s3://bucket/prefix")]
    Location(String),
    #[error("cannot create the local lake directory {path}: {source}")]
    LocalDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("delta: {0}")]
    Delta(#[from] DeltaTableError),
    #[error("storage: {0}")]
    Store(#[from] ObjectStoreError),
    #[error("query: {0}")]
    Query(#[from] deltalake::datafusion::error::DataFusionError),
    #[error("arrow: {0}")]
    Arrow(#[from] deltalake::arrow::error::ArrowError),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot sign an upload URL: {0}")]
    Signing(String),
    #[error("{table}: a concurrent writer kept winning; gave up after {attempts} attempts")]
    Contended { table: String, attempts: usize },
    #[error("{table} changed under a planned commit; nothing was committed")]
    Moved { table: String },
}

/// A handle on the lake; cheap to clone.
#[derive(Clone)]
pub struct Lake {
    root: Url,
    options: HashMap<String, String>,
    store: Arc<dyn ObjectStore>,
    /// The same store from the bucket's (or filesystem's) root, as Delta tables take it.
    root_store: Arc<dyn ObjectStore>,
    /// Tables seen to exist (shared by the clones of this handle).
    existing: Arc<Mutex<HashSet<String>>>,
    /// The schema a write to each existing table uses, once asked ([`Lake::schema_to_write`]).
    write_schemas: Arc<Mutex<HashMap<String, SchemaRef>>>,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lake({})", self.root)
    }
}

impl Lake {
    /// Opens the lake at a local path (created if missing) or a URL (`s3://bucket/prefix`,
    /// `memory://`). S3 is configured by the standard AWS environment.
    pub fn open(location: &str) -> Result<Lake, LakeError> {
        Lake::open_with(location, std::iter::empty::<(&str, &str)>())
    }

    /// The same with storage options (object_store's names, e.g. `aws_endpoint`) that take
    /// precedence over the environment: for a process that talks to two stores.
    pub fn open_with<K: Into<String>, V: Into<String>>(
        location: &str,
        options: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Lake, LakeError> {
        let root = if location.contains("://") {
            let mut url =
                Url::parse(location).map_err(|_| LakeError::Location(location.to_string()))?;
            if !url.path().ends_with('/') {
                url.set_path(&format!("{}/", url.path()));
            }
            url
        } else {
            std::fs::create_dir_all(location).map_err(|source| LakeError::LocalDir {
                path: location.to_string(),
                source,
            })?;
            let path = std::fs::canonicalize(location).map_err(|source| LakeError::LocalDir {
                path: location.to_string(),
                source,
            })?;
            Url::from_directory_path(&path)
                .map_err(|_| LakeError::Location(location.to_string()))?
        };
        let options: HashMap<String, String> = options
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let storage = DeltaTableBuilder::from_url(root.clone())?
            .with_storage_options(options.clone())
            .build_storage()?;
        Ok(Lake {
            root,
            options,
            store: storage.object_store(None),
            root_store: storage.root_object_store(None),
            existing: Arc::default(),
            write_schemas: Arc::default(),
        })
    }

    pub fn root(&self) -> &Url {
        &self.root
    }

    /// Whether the lake lives on this machine's filesystem.
    pub fn is_local(&self) -> bool {
        self.root.scheme() == "file"
    }

    /// The key of an object of this lake as S3 names it in an event (bucket and full key),
    /// relative to the lake root; `None` for objects outside the lake. For a lake on this
    /// machine, event keys are taken as relative already (tests and local replays).
    pub fn relative_key(&self, bucket: &str, key: &str) -> Option<String> {
        if self.root.scheme() != "s3" {
            return Some(key.to_string());
        }
        if self.root.host_str() != Some(bucket) {
            return None;
        }
        let prefix = self.root.path().trim_start_matches('/');
        key.strip_prefix(prefix).map(str::to_string)
    }

    pub fn table_url(&self, name: &str) -> Url {
        self.root
            .join(&format!("{name}/"))
            .expect("table names are relative paths")
    }

    /// Every table of the lake is read through the one store built when the lake was opened:
    /// left to itself, each load would build an S3 client and connection pool of its own.
    fn builder(&self, name: &str) -> Result<DeltaTableBuilder, LakeError> {
        let url = self.table_url(name);
        Ok(DeltaTableBuilder::from_url(url.clone())?
            .with_storage_options(self.options.clone())
            .with_storage_backend(self.root_store.clone(), url))
    }

    /// The schema a write of `declared` into table `name` uses: the declared one, but with
    /// the column types of a table created by an older release ([`evolve::as_stored`]). A
    /// column's stored type never changes once the table exists (releases only add columns),
    /// so a process asks each table once: on S3, a table load is a dozen requests, and a
    /// deadline day's ingests are slowed by one more per file.
    pub async fn schema_to_write(
        &self,
        name: &str,
        declared: &SchemaRef,
    ) -> Result<SchemaRef, LakeError> {
        let known = self
            .write_schemas
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned();
        if let Some(schema) = known {
            return Ok(schema);
        }
        let Some(table) = self.load(name).await? else {
            return Ok(declared.clone());
        };
        let schema = evolve::as_stored(declared, &table.snapshot()?.schema());
        self.write_schemas
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string(), schema.clone());
        Ok(schema)
    }

    /// Loads the latest version of a table, or `None` when it has never been written.
    pub async fn load(&self, name: &str) -> Result<Option<DeltaTable>, LakeError> {
        // Tables are never deleted, so the listing that tells whether one exists is needed
        // only until it does: a listing per load is what a deadline day's ingests would
        // otherwise spend most of their S3 requests on.
        let known = self
            .existing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(name);
        if !known {
            if !self.exists(name).await? {
                return Ok(None);
            }
            self.existing
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(name.to_string());
        }
        Ok(Some(self.builder(name)?.load().await?))
    }

    /// Whether a table has a transaction log: one listing, the same on a disk and on S3.
    async fn exists(&self, name: &str) -> Result<bool, LakeError> {
        let log = Path::from(format!("{name}/_delta_log"));
        let mut listing = self.store.list(Some(&log));
        Ok(listing.next().await.transpose()?.is_some())
    }

    /// A table as it was at `version` (Delta time travel), or `None` if it was never written.
    pub async fn load_version(
        &self,
        name: &str,
        version: i64,
    ) -> Result<Option<DeltaTable>, LakeError> {
        if !self.exists(name).await? {
            return Ok(None);
        }
        let version = u64::try_from(version).unwrap_or_default();
        Ok(Some(
            self.builder(name)?.with_version(version).load().await?,
        ))
    }

    /// An unloaded handle, for the first write of a table.
    pub fn handle(&self, name: &str) -> Result<DeltaTable, LakeError> {
        Ok(self.builder(name)?.build()?)
    }

    /// Loads a table, creating it empty with `schema` first if needed. Safe when several
    /// writers create it at once: the loser of the race loads the winner's table.
    pub async fn ensure(
        &self,
        name: &str,
        schema: &SchemaRef,
        partitions: &[String],
    ) -> Result<DeltaTable, LakeError> {
        if let Some(table) = self.load(name).await? {
            return Ok(table);
        }
        let columns: deltalake::kernel::StructType =
            deltalake::kernel::engine::arrow_conversion::TryIntoKernel::try_into_kernel(
                schema.as_ref(),
            )?;
        let created = self
            .handle(name)?
            .create()
            .with_columns(columns.fields().cloned())
            .with_partition_columns(partitions.to_vec())
            .with_table_name(name.rsplit('/').next().unwrap_or(name))
            .with_configuration_property(
                TableProperty::CheckpointInterval,
                Some(CHECKPOINT_INTERVAL.to_string()),
            )
            .with_save_mode(SaveMode::Ignore)
            // The loser of a creation race must not commit a second metadata version.
            .with_commit_properties(CommitProperties::default().with_max_retries(0))
            .await;
        match created {
            Ok(table) => Ok(table),
            Err(_) => self.load(name).await?.ok_or_else(|| LakeError::Contended {
                table: name.to_string(),
                attempts: 1,
            }),
        }
    }

    pub fn object_path(key: &str) -> Path {
        Path::from(key)
    }

    pub async fn put_object(&self, key: &str, bytes: Bytes) -> Result<(), LakeError> {
        self.store
            .put(&Path::from(key), PutPayload::from_bytes(bytes))
            .await?;
        Ok(())
    }

    /// Stores an object from a stream in parts, never holding it whole.
    pub async fn put_stream(
        &self,
        key: &str,
        reader: &mut (impl tokio::io::AsyncRead + Unpin),
    ) -> Result<(), LakeError> {
        use tokio::io::AsyncReadExt;
        let upload = self.store.put_multipart(&Path::from(key)).await?;
        let mut writer = deltalake::logstore::object_store::WriteMultipart::new(upload);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader.read(&mut buf).await.map_err(|e| {
                LakeError::Store(ObjectStoreError::Generic {
                    store: "upload",
                    source: Box::new(e),
                })
            })?;
            if n == 0 {
                break;
            }
            writer.write(&buf[..n]);
        }
        writer.finish().await?;
        Ok(())
    }

    /// Deletes an object; one that is already gone is no error.
    pub async fn delete_object(&self, key: &str) -> Result<(), LakeError> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(ObjectStoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether an object exists.
    pub async fn has_object(&self, key: &str) -> Result<bool, LakeError> {
        match self.store.head(&Path::from(key)).await {
            Ok(_) => Ok(true),
            Err(ObjectStoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_object(&self, key: &str) -> Result<Option<Bytes>, LakeError> {
        match self.store.get(&Path::from(key)).await {
            Ok(result) => Ok(Some(result.bytes().await?)),
            Err(ObjectStoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The object store rooted at the lake, for streaming reads of raw uploads.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// A DataFusion session with the named tables registered under their last path
    /// segment; tables not written yet are left out.
    pub async fn session(&self, tables: &[&str]) -> Result<Session, LakeError> {
        let ctx = SessionContext::new();
        let mut versions = TableVersions::new();
        let mut loaded = HashMap::new();
        for name in tables {
            let Some(table) = self.load(name).await? else {
                continue;
            };
            register(&ctx, name, &table).await?;
            if let Some(v) = table.version() {
                versions.insert(name.to_string(), v as i64);
            }
            loaded.insert(name.to_string(), table);
        }
        Ok(Session {
            ctx,
            versions,
            tables: loaded,
        })
    }

    /// The latest version of each named table that exists.
    pub async fn versions(&self, tables: &[&str]) -> Result<TableVersions, LakeError> {
        let mut versions = TableVersions::new();
        for name in tables {
            if let Some(version) = self.load(name).await?.and_then(|t| t.version()) {
                versions.insert(name.to_string(), version as i64);
            }
        }
        Ok(versions)
    }

    /// The directory of a lake on the local filesystem; `None` for an object store.
    pub fn local_root(&self) -> Option<std::path::PathBuf> {
        match self.root.scheme() {
            "file" => self.root.to_file_path().ok(),
            _ => None,
        }
    }
}

/// Columns of query results, whatever physical type DataFusion chose for them (strings may
/// come back as views or dictionaries, partition columns as dictionaries).
pub mod read {
    use deltalake::arrow::array::{AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
    use deltalake::arrow::compute::cast;
    use deltalake::arrow::datatypes::{DataType, Float64Type, Int64Type};

    use super::LakeError;

    pub fn text(batch: &RecordBatch, column: usize) -> Result<StringArray, LakeError> {
        Ok(cast(batch.column(column), &DataType::Utf8)?
            .as_string::<i32>()
            .clone())
    }

    pub fn float(batch: &RecordBatch, column: usize) -> Result<Float64Array, LakeError> {
        Ok(cast(batch.column(column), &DataType::Float64)?
            .as_primitive::<Float64Type>()
            .clone())
    }

    pub fn int(batch: &RecordBatch, column: usize) -> Result<Int64Array, LakeError> {
        Ok(cast(batch.column(column), &DataType::Int64)?
            .as_primitive::<Int64Type>()
            .clone())
    }
}

/// A DataFusion session over tables as loaded at one version each.
pub struct Session {
    pub ctx: SessionContext,
    /// The version of each registered table.
    pub versions: TableVersions,
    tables: HashMap<String, DeltaTable>,
}

impl Session {
    /// The files of a registered table inside `scope`, at the version the session reads:
    /// from the log already loaded, no I/O.
    pub fn files(&self, name: &str, scope: &Scope<'_>) -> Result<Vec<StoredFile>, LakeError> {
        match self.tables.get(name) {
            Some(table) => Ok(staged::in_scope(table.snapshot()?, scope)),
            None => Ok(Vec::new()),
        }
    }
}

/// The Delta version of each table a computation read.
pub type TableVersions = std::collections::BTreeMap<String, i64>;

/// Registers a loaded table with a session under the last segment of its name.
pub async fn register(
    ctx: &SessionContext,
    name: &str,
    table: &DeltaTable,
) -> Result<(), LakeError> {
    table.update_datafusion_session(&ctx.state())?;
    let provider = table.table_provider().await?;
    let short = name.rsplit('/').next().unwrap_or(name);
    ctx.register_table(short, provider)?;
    Ok(())
}
