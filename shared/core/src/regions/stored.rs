//! The region tree as a Delta table, partitioned by level so that readers which do not need
//! 600,000 village-level units (the API) never read them.

use std::sync::Arc;

use deltalake::arrow::array::{Int64Array, RecordBatch, StringArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::datafusion::prelude::{col, lit};
use deltalake::protocol::SaveMode;

use super::{Level, Region, RegionTree};
use crate::lake::{Lake, LakeError, names, read};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("prefix", DataType::Utf8, false),
        Field::new("code", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("communities", DataType::Int64, false),
        Field::new("level", DataType::Utf8, false),
    ]))
}

/// Replaces the stored tree with `tree`.
pub async fn save(lake: &Lake, tree: &RegionTree) -> Result<i64, LakeError> {
    let regions: Vec<&Region> = tree.iter().collect();
    let batch = RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from_iter_values(
                regions.iter().map(|r| &r.prefix),
            )),
            Arc::new(StringArray::from_iter_values(
                regions.iter().map(|r| r.code()),
            )),
            Arc::new(StringArray::from_iter_values(
                regions.iter().map(|r| &r.name),
            )),
            Arc::new(Int64Array::from_iter_values(
                regions.iter().map(|r| i64::from(r.communities)),
            )),
            Arc::new(StringArray::from_iter_values(
                regions.iter().map(|r| r.level.as_str()),
            )),
        ],
    )?;
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
    WithVillagesIn(&'a str),
}

/// Loads the stored tree, or `None` when no regions were imported yet. Returns the
/// regions table version too, so caches can tell when to reload.
pub async fn load(lake: &Lake, scope: Scope<'_>) -> Result<Option<(RegionTree, i64)>, LakeError> {
    let (ctx, versions) = lake.session(&[names::REGIONS]).await?;
    let Some(version) = versions.get(names::REGIONS).copied() else {
        return Ok(None);
    };
    let published = col("level").not_eq(lit(Level::Village.as_str()));
    let filter = match scope {
        Scope::Published => published,
        Scope::WithVillagesIn(prefix) => published.or(col("level")
            .eq(lit(Level::Village.as_str()))
            .and(col("prefix").like(lit(format!("{prefix}%"))))),
    };
    let batches = ctx
        .table("regions")
        .await?
        .filter(filter)?
        .select_columns(&["prefix", "name", "level", "communities"])?
        .collect()
        .await?;
    let mut regions = Vec::new();
    for batch in &batches {
        let prefix = read::text(batch, 0)?;
        let name = read::text(batch, 1)?;
        let level = read::text(batch, 2)?;
        let communities = read::int(batch, 3)?;
        for i in 0..batch.num_rows() {
            let Some(level) = Level::parse(level.value(i)) else {
                continue;
            };
            regions.push(Region {
                prefix: prefix.value(i).to_string(),
                name: name.value(i).to_string(),
                level,
                communities: u32::try_from(communities.value(i)).unwrap_or(0),
            });
        }
    }
    Ok(Some((RegionTree::from_regions(regions), version)))
}
