//! What a reader derives from one table (the region tree, the published snapshot, the
//! submission log), held in memory at the table version it was read at. A server or a warm
//! Lambda instance keeps it between requests; [`Lake::latest_version`] (a HEAD per commit
//! since) decides when to read it again, so a request that finds nothing new touches no
//! Parquet and builds no DataFusion session. On an object store, concurrent requests share
//! that HEAD in [`Rounds`]: each still sees every commit made before it arrived, and under
//! load the HEAD runs about once per round trip instead of once per request.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use deltalake::ObjectStoreError;
use deltalake::logstore::object_store::{ObjectStoreExt, path::Path};

use super::{Lake, LakeError, TableVersions};
use crate::rounds::Rounds;

/// Probes of a table's latest version: cheaper than a load, which lists and reads the log.
impl Lake {
    /// The latest version of a table known to be at `known` or later: one HEAD per commit
    /// since (a commit is visible exactly when its log entry exists), where a load would list
    /// and read the whole log.
    pub async fn latest_version(&self, name: &str, known: i64) -> Result<i64, LakeError> {
        // On a local lake one stat costs less than object_store's hop to a blocking thread
        // (which would be most of the cost of a revalidated read).
        let local = self.local_root();
        let mut version = known;
        loop {
            let next = format!("{name}/_delta_log/{:020}.json", version + 1);
            let exists = match &local {
                Some(root) => {
                    root.join(&next)
                        .try_exists()
                        .map_err(|e| ObjectStoreError::Generic {
                            store: "LocalFileSystem",
                            source: Box::new(e),
                        })?
                }
                None => match self.store.head(&Path::from(next)).await {
                    Ok(_) => true,
                    Err(ObjectStoreError::NotFound { .. }) => false,
                    Err(e) => return Err(e.into()),
                },
            };
            if !exists {
                return Ok(version);
            }
            version += 1;
        }
    }

    /// Whether none of `tables` has moved from `versions` (one missing there must still not
    /// exist): a probe of each table's next log entry, where [`Lake::versions`] loads every log.
    pub async fn unchanged(
        &self,
        tables: &[&str],
        versions: &TableVersions,
    ) -> Result<bool, LakeError> {
        for name in tables {
            let moved = match versions.get(*name) {
                Some(&version) => self.latest_version(name, version).await? != version,
                None => self.exists(name).await?,
            };
            if moved {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// One table's derived value and the version it was read at.
#[derive(Debug)]
pub struct Held<T> {
    table: &'static str,
    slot: Mutex<Option<(i64, Arc<T>)>>,
    /// One reload at a time: requests that find the value stale wait for the one reading it
    /// instead of each reading the table.
    loading: tokio::sync::Mutex<()>,
    /// The latest version of the table, probed once per round of requests.
    probes: Rounds<(), i64>,
}

impl<T> Held<T> {
    pub fn new(table: &'static str) -> Held<T> {
        Held {
            table,
            slot: Mutex::new(None),
            loading: tokio::sync::Mutex::new(()),
            probes: Rounds::default(),
        }
    }

    /// The value at the table's latest version, read with `load` (which returns it with the
    /// version it read) only when the held one is missing or stale; `None` while the table
    /// does not exist.
    pub async fn get<F, Fut, E>(&self, lake: &Lake, load: F) -> Result<Option<(i64, Arc<T>)>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<(T, i64)>, E>>,
        E: From<LakeError>,
    {
        if let Some(current) = self.current(lake).await? {
            return Ok(Some(current));
        }
        let _one = self.loading.lock().await;
        // Whoever held the lock before may have read it already.
        if let Some(current) = self.current(lake).await? {
            return Ok(Some(current));
        }
        let Some((value, version)) = load().await? else {
            return Ok(None);
        };
        let value = Arc::new(value);
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some((version, value.clone()));
        Ok(Some((version, value)))
    }

    /// The held value if the table has not moved on since it was read.
    async fn current(&self, lake: &Lake) -> Result<Option<(i64, Arc<T>)>, LakeError> {
        let held = self
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some((version, value)) = held else {
            return Ok(None);
        };
        // A local stat is over before another request could share it.
        let latest = match lake.local_root() {
            Some(_) => lake.latest_version(self.table, version).await?,
            None => {
                let probe = || lake.latest_version(self.table, version);
                self.probes.run(&(), probe).await?
            }
        };
        Ok((latest == version).then_some((version, value)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use deltalake::arrow::array::Int64Array;
    use deltalake::arrow::datatypes::{DataType, Field, Schema};
    use deltalake::arrow::record_batch::RecordBatch;

    use super::*;

    async fn append(lake: &Lake, n: i64) {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![n]))]).unwrap();
        let table = match lake.load("tables/t").await.unwrap() {
            Some(t) => t,
            None => lake.handle("tables/t").unwrap(),
        };
        table.write(vec![batch]).await.unwrap();
    }

    #[tokio::test]
    async fn reads_again_only_when_a_commit_lands() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let held: Held<i64> = Held::new("tables/t");
        let loads = AtomicUsize::new(0);
        let get = || async {
            held.get(&lake, || async {
                loads.fetch_add(1, Ordering::SeqCst);
                let version = lake.versions(&["tables/t"]).await?;
                Ok::<_, LakeError>(version.get("tables/t").map(|v| (*v * 10, *v)))
            })
            .await
            .unwrap()
            .map(|(v, value)| (v, *value))
        };
        assert_eq!(get().await, None, "no table, nothing held");
        append(&lake, 1).await;
        assert_eq!(get().await, Some((0, 0)));
        assert_eq!(get().await, Some((0, 0)));
        assert_eq!(loads.load(Ordering::SeqCst), 2, "the second read was held");
        append(&lake, 2).await;
        append(&lake, 3).await;
        assert_eq!(lake.latest_version("tables/t", 0).await.unwrap(), 2);
        assert_eq!(get().await, Some((2, 20)));
        assert_eq!(loads.load(Ordering::SeqCst), 3);
    }
}
