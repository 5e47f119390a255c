//! The region tree as a Delta table, partitioned by level so that readers which do not need
//! 600,000 village-level units (the API) never read them.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::datafusion::prelude::{Expr, col, lit};
use deltalake::parquet::basic::Compression;
use deltalake::parquet::file::properties::WriterProperties;
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
    // Rows go in tree order (by prefix) and in small row groups, so a reader of the villages
    // inside one region decodes only the groups whose prefix range holds it.
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let table = table
        .write(vec![batch])
        .with_save_mode(SaveMode::Overwrite)
        .with_partition_columns(["level"])
        .with_writer_properties(properties)
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
    let tree = held.get(lake, || read(lake, published_levels())).await?;
    Ok(tree.map(|(version, tree)| (tree, version)))
}

/// Village-level units per row group of the stored table: a county's few hundred fall in one
/// or two groups of 620,000.
const ROW_GROUP_ROWS: usize = 8 * 1024;

/// Loads the stored tree, or `None` when no regions were imported yet. Returns the
/// regions table version too, so caches can tell when to reload.
pub async fn load(lake: &Lake, scope: Scope<'_>) -> Result<Option<(RegionTree, i64)>, LakeError> {
    let Scope::WithVillagesIn(prefix) = scope else {
        return read(lake, published_levels()).await;
    };
    let villages = col("level")
        .eq(lit(Level::Village.as_str()))
        .and(col("prefix").like(lit(prefix.like())));
    // The published levels as held in memory; only the villages are read.
    let Some((tree, version)) = published(lake).await? else {
        return Ok(None);
    };
    match read(lake, villages.clone()).await? {
        Some((inside, read_at)) if read_at == version => {
            let all = tree.iter().cloned().chain(inside.iter().cloned());
            Ok(Some((RegionTree::from_regions(all), version)))
        }
        // The table moved between the two reads: both levels from one version.
        Some(_) => read(lake, published_levels().or(villages)).await,
        None => Ok(None),
    }
}

fn published_levels() -> Expr {
    col("level").not_eq(lit(Level::Village.as_str()))
}

/// The stored regions `filter` keeps, as a tree, with the table version read.
async fn read(lake: &Lake, filter: Expr) -> Result<Option<(RegionTree, i64)>, LakeError> {
    let Session { ctx, versions, .. } = lake.session(&[names::REGIONS]).await?;
    let Some(version) = versions.get(names::REGIONS).copied() else {
        return Ok(None);
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

#[cfg(test)]
mod tests {
    use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    /// Two counties of 12 streets of 1,000 villages each.
    fn tree() -> RegionTree {
        let mut units = vec![
            ("15".to_string(), "省".to_string()),
            ("1522".to_string(), "市".to_string()),
        ];
        for county in ["152201", "152202"] {
            units.push((county.to_string(), format!("县{county}")));
            for street in 1..=12 {
                let street = format!("{county}{street:03}");
                units.push((street.clone(), "街道".to_string()));
                for village in 0..1_000 {
                    units.push((format!("{street}{village:03}"), format!("村{village}")));
                }
            }
        }
        RegionTree::from_units(units)
    }

    /// A submission's tree holds every published region and the villages of its own region
    /// only, read from small row groups of the villages' partition.
    #[tokio::test]
    async fn villages_are_read_for_one_region_only() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let whole = tree();
        let version = save(&lake, &whole).await.unwrap();
        let county = Prefix::parse("152201").unwrap();
        let (loaded, at) = load(&lake, Scope::WithVillagesIn(&county))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(at, version);
        let expected: Vec<&Prefix> = whole
            .iter()
            .filter(|r| r.level != Level::Village || r.prefix.starts_with("152201"))
            .map(|r| &r.prefix)
            .collect();
        let got: Vec<&Prefix> = loaded.iter().map(|r| &r.prefix).collect();
        assert_eq!(got, expected);
        // The country, the province, the city, 2 counties and 24 streets; 12,000 villages.
        assert_eq!(got.len(), 29 + 12_000);

        let villages = lake
            .files(names::REGIONS, &[("level", vec!["village".to_string()])])
            .await
            .unwrap();
        let [file] = villages.as_slice() else {
            panic!("one file of villages: {}", villages.len())
        };
        let path = dir.path().join(names::REGIONS).join(file.path());
        let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
        assert_eq!(
            reader.metadata().num_row_groups(),
            24_000usize.div_ceil(ROW_GROUP_ROWS)
        );
        // Compressed as deltalake's own default writes them.
        for group in reader.metadata().row_groups() {
            assert!(
                group
                    .columns()
                    .iter()
                    .all(|c| c.compression() == Compression::SNAPPY)
            );
        }
    }
}
