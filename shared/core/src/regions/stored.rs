//! The region tree as a Delta table, partitioned by level so that readers which do not need
//! 600,000 village-level units (the API) never read them.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::datafusion::prelude::{col, lit};
use deltalake::protocol::SaveMode;

use serde::Serialize;

use super::{Level, Prefix, Region, RegionTree};
use crate::lake::{Held, Lake, LakeError, Session, codec, names};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("prefix", DataType::Utf8, false),
        Field::new("code", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("communities", DataType::Int64, false),
        Field::new("level", DataType::Utf8, false),
    ]))
}

/// A stored unit: the region and, for SQL readers, the code as the API writes it.
#[derive(Serialize)]
struct Stored<'a> {
    prefix: &'a Prefix,
    code: String,
    name: &'a str,
    communities: u32,
    level: Level,
}

/// Replaces the stored tree with `tree`.
pub async fn save(lake: &Lake, tree: &RegionTree) -> Result<i64, LakeError> {
    let rows: Vec<Stored> = tree
        .iter()
        .map(|r| Stored {
            prefix: &r.prefix,
            code: r.code(),
            name: &r.name,
            communities: r.communities,
            level: r.level,
        })
        .collect();
    let batch = codec::encode(&schema(), &rows)?;
    let table = match lake.load(names::REGIONS).await? {
        Some(table) => table,
        None => lake.handle(names::REGIONS)?,
    };
    let table = table
        .write(vec![batch])
        .with_save_mode(SaveMode::Overwrite)
        .with_partition_columns(["level"])
        .await?;
    Ok(table.version().unwrap_or_default() as i64)
}

/// Which part of the tree to load.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Country down to streets: what indicators and the API need.
    Published,
    /// The published levels plus the village-level units inside one region (for checking
    /// the community codes of a submission).
    WithVillagesIn(&'a Prefix),
}

/// The published levels of the stored tree with the regions table version, held in memory
/// per lake: read again only when the table moved (a stat, or a HEAD on S3), so the several
/// readers of one ingest — and every ingest and request of a warm process — share one read
/// of 45,000 regions instead of each decoding them.
pub async fn published(lake: &Lake) -> Result<Option<(Arc<RegionTree>, i64)>, LakeError> {
    type Trees = HashMap<String, Arc<Held<RegionTree>>>;
    static HELD: LazyLock<Mutex<Trees>> = LazyLock::new(Mutex::default);
    let held = HELD
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(lake.root().to_string())
        .or_insert_with(|| Arc::new(Held::new(names::REGIONS)))
        .clone();
    let tree = held.get(lake, || load(lake, Scope::Published)).await?;
    Ok(tree.map(|(version, tree)| (tree, version)))
}

/// Loads the stored tree, or `None` when no regions were imported yet. Returns the
/// regions table version too, so caches can tell when to reload.
pub async fn load(lake: &Lake, scope: Scope<'_>) -> Result<Option<(RegionTree, i64)>, LakeError> {
    let Session { ctx, versions, .. } = lake.session(&[names::REGIONS]).await?;
    let Some(version) = versions.get(names::REGIONS).copied() else {
        return Ok(None);
    };
    let published = col("level").not_eq(lit(Level::Village.as_str()));
    let filter = match scope {
        Scope::Published => published,
        Scope::WithVillagesIn(prefix) => published.or(col("level")
            .eq(lit(Level::Village.as_str()))
            .and(col("prefix").like(lit(prefix.like())))),
    };
    let batches = ctx
        .table("regions")
        .await?
        .filter(filter)?
        .select_columns(&["prefix", "name", "level", "communities"])?
        .collect()
        .await?;
    let regions: Vec<Region> = codec::decode(&batches)?;
    Ok(Some((RegionTree::from_regions(regions), version)))
}
