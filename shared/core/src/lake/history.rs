//! A table's commits as its log records them: who made each one (our `jiazheng.*` commit
//! metadata names the submission, its raw file and pinned version) and which files it added
//! and removed. Reconciliation reads them to find a commit no decision owns, and to undo one
//! whose submission can no longer be completed.

use std::collections::{HashMap, HashSet};

use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, Remove};
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::logstore::object_store::path::Path;
use deltalake::protocol::DeltaOperation;
use futures::TryStreamExt;
use serde_json::{Map, Value};

use super::{Lake, LakeError};

/// Commit metadata keys: the submission that made a data commit, and what completing it needs.
pub mod keys {
    pub const SUBMISSION: &str = "jiazheng.submission";
    pub const RAW_KEY: &str = "jiazheng.raw_key";
    pub const RAW_VERSION: &str = "jiazheng.raw_version";
    pub const FILE_NAME: &str = "jiazheng.file_name";
    pub const REVERTS: &str = "jiazheng.reverts";
}

/// One commit of a table.
#[derive(Debug, Clone)]
pub struct Commit {
    pub version: i64,
    /// Milliseconds since the epoch, from the commit info.
    pub timestamp: i64,
    /// The commit info's fields (ours are under `jiazheng.`).
    pub info: Map<String, Value>,
    pub adds: Vec<Add>,
    pub removes: Vec<Remove>,
}

impl Commit {
    /// A text field of our commit metadata.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.info.get(key).and_then(Value::as_str)
    }

    /// The partitions (column → value) the commit wrote or cleared.
    fn partitions(&self) -> HashSet<Vec<(String, Option<String>)>> {
        let sorted = |values: &HashMap<String, Option<String>>| {
            let mut v: Vec<_> = values.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            v.sort();
            v
        };
        self.adds
            .iter()
            .map(|a| sorted(&a.partition_values))
            .chain(
                self.removes
                    .iter()
                    .filter_map(|r| r.partition_values.as_ref().map(sorted)),
            )
            .collect()
    }
}

/// `_delta_log/00000000000000000012.json` → 12.
fn version_of(path: &Path) -> Option<i64> {
    let name = path.filename()?;
    let digits = name.strip_suffix(".json")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

impl Lake {
    /// The commits of a table after `after` (all when `None`), oldest first; nothing for a
    /// table never written.
    pub async fn commits_after(
        &self,
        table: &str,
        after: Option<i64>,
    ) -> Result<Vec<Commit>, LakeError> {
        let log = Path::from(format!("{table}/_delta_log"));
        // Commit files sort by version, so a listing can start after the last one seen.
        let listing: Vec<_> = match after {
            Some(after) => {
                let offset = Path::from(format!("{table}/_delta_log/{after:020}.json"));
                self.store
                    .list_with_offset(Some(&log), &offset)
                    .try_collect()
                    .await?
            }
            None => self.store.list(Some(&log)).try_collect().await?,
        };
        let mut versions: Vec<(i64, Path)> = listing
            .into_iter()
            .filter_map(|meta| Some((version_of(&meta.location)?, meta.location)))
            .filter(|(v, _)| after.is_none_or(|a| *v > a))
            .collect();
        versions.sort_by_key(|(v, _)| *v);
        let mut commits = Vec::with_capacity(versions.len());
        for (version, path) in versions {
            let bytes = self.store.get(&path).await?.bytes().await?;
            commits.push(parse(version, &bytes)?);
        }
        Ok(commits)
    }

    /// Undoes a data commit no decision owns and none can be made for (its raw file is gone):
    /// its files that are still current are removed, and the files it removed come back
    /// unless a later commit has rewritten the same partitions since. Returns the new
    /// version, or `None` when nothing of it was left to undo.
    pub async fn revert(&self, table: &str, commit: &Commit) -> Result<Option<i64>, LakeError> {
        let Some(mut loaded) = self.load(table).await? else {
            return Ok(None);
        };
        loaded.update_state().await?;
        let snapshot = loaded.snapshot()?;
        let current: HashSet<String> = snapshot
            .log_data()
            .iter()
            .map(|f| f.path().to_string())
            .collect();
        let later = self.commits_after(table, Some(commit.version)).await?;
        let ours = commit.partitions();
        let superseded = later.iter().any(|c| !c.partitions().is_disjoint(&ours));
        let now = chrono::Utc::now().timestamp_millis();
        let mut actions: Vec<Action> = commit
            .adds
            .iter()
            .filter(|a| current.contains(&a.path))
            .map(|a| {
                Action::Remove(Remove {
                    path: a.path.clone(),
                    data_change: true,
                    deletion_timestamp: Some(now),
                    extended_file_metadata: Some(true),
                    partition_values: Some(a.partition_values.clone()),
                    size: Some(a.size),
                    tags: None,
                    deletion_vector: None,
                    base_row_id: None,
                    default_row_commit_version: None,
                })
            })
            .collect();
        if !superseded {
            actions.extend(
                commit
                    .removes
                    .iter()
                    .filter(|r| !current.contains(&r.path))
                    .map(|r| {
                        Action::Add(Add {
                            path: r.path.clone(),
                            partition_values: r.partition_values.clone().unwrap_or_default(),
                            size: r.size.unwrap_or(0),
                            modification_time: now,
                            data_change: true,
                            stats: None,
                            tags: None,
                            deletion_vector: None,
                            base_row_id: None,
                            default_row_commit_version: None,
                            clustering_provider: None,
                        })
                    }),
            );
        }
        if actions.is_empty() {
            return Ok(None);
        }
        let mut metadata = Map::new();
        metadata.insert(keys::REVERTS.into(), commit.version.into());
        let operation = DeltaOperation::Delete {
            predicate: Some(format!("reverting version {}", commit.version)),
        };
        let done = CommitBuilder::from(CommitProperties::default().with_metadata(metadata))
            .with_actions(actions)
            .build(Some(snapshot), loaded.log_store(), operation)
            .await?;
        Ok(Some(done.version() as i64))
    }
}

/// A commit file: one action per line.
fn parse(version: i64, bytes: &[u8]) -> Result<Commit, LakeError> {
    let mut commit = Commit {
        version,
        timestamp: 0,
        info: Map::new(),
        adds: Vec::new(),
        removes: Vec::new(),
    };
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let action: Map<String, Value> = serde_json::from_slice(line)?;
        if let Some(Value::Object(info)) = action.get("commitInfo") {
            commit.timestamp = info.get("timestamp").and_then(Value::as_i64).unwrap_or(0);
            commit.info = info.clone();
        } else if let Some(add) = action.get("add") {
            commit.adds.push(serde_json::from_value(add.clone())?);
        } else if let Some(remove) = action.get("remove") {
            commit.removes.push(serde_json::from_value(remove.clone())?);
        }
    }
    Ok(commit)
}

/// When a table's current version was committed (`None` if the log no longer says).
pub fn committed_at(table: &deltalake::DeltaTable) -> Option<chrono::DateTime<chrono::Utc>> {
    let snapshot = table.snapshot().ok()?;
    snapshot
        .version_timestamp(snapshot.version())
        .and_then(chrono::DateTime::from_timestamp_millis)
}
