//! Publishing a period: each province's values in files of their own, tagged with a digest of
//! what they hold, so that a refresh rewrites only the provinces whose values changed — after
//! one county's file, its province and the country — and leaves the rest of the period's
//! files in place. The country's values carry the period's lineage (the table versions it
//! was computed from) and are rewritten whenever it moves; a province left in place keeps the
//! lineage it was written with, which its values still agree with.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use sha2::{Digest as _, Sha256};

use super::{CHUNK, Row, to_batch};
use crate::indicators::compute::Computed;
use crate::lake::{Lake, LakeError, StoredFile, names};

/// File tags: the part of the period a file holds and the digest of its values.
const PART: &str = "jiazheng.part";
const DIGEST: &str = "jiazheng.digest";

/// How often a publication is planned again when another writer changed the period between
/// planning and committing (only a refresh whose lease expired can).
const PLAN_ATTEMPTS: usize = 4;

/// The part of the snapshot a value is written in: its province's code, `""` for the country.
fn part_of(row: &Row) -> &str {
    row.prefix().get(..2).unwrap_or("")
}

/// One part's values and their digest.
struct Part<'a> {
    rows: Vec<&'a Row>,
    digest: String,
}

type Parts<'a> = BTreeMap<&'a str, Part<'a>>;

fn parts<'a>(values: &'a [Row], sources: &str) -> Parts<'a> {
    let mut grouped: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for row in values {
        grouped.entry(part_of(row)).or_default().push(row);
    }
    grouped
        .into_iter()
        .map(|(name, rows)| {
            // The country's files carry the lineage, so a new lineage rewrites them.
            let lineage = name.is_empty().then_some(sources);
            let digest = digest(&rows, lineage);
            (name, Part { rows, digest })
        })
        .collect()
}

/// Replaces the period's values in the snapshot; returns the snapshot's new version.
pub async fn publish(lake: &Lake, computed: &Computed) -> Result<i64, LakeError> {
    let period = computed.period.to_string();
    let sources = serde_json::to_string(&computed.sources)?;
    let parts = parts(&computed.values, &sources);
    let scope = [("period", vec![period.clone()])];
    for _ in 0..PLAN_ATTEMPTS {
        let stored = lake.files(names::INDICATOR_VALUES, &scope).await?;
        let kept = kept(&stored, &parts);
        let partitions = vec!["period".to_string()];
        let mut staged = lake
            .stage(names::INDICATOR_VALUES, &Row::stored_schema(), &partitions)?
            .failing_at(crate::failpoints::SNAPSHOT_WRITING);
        for (name, part) in parts.iter().filter(|(name, _)| !kept.contains(*name)) {
            for chunk in part.rows.chunks(CHUNK) {
                staged.write(to_batch(&sources, chunk)?).await?;
            }
            staged.seal(&[(PART, name), (DIGEST, &part.digest)]).await?;
        }
        let mut metadata = serde_json::Map::new();
        metadata.insert("jiazheng.period".into(), period.clone().into());
        metadata.insert(
            "jiazheng.sources".into(),
            serde_json::to_value(&computed.sources)?,
        );
        let plan = |files: &[StoredFile]| {
            // What was kept must still be there as it was planned against.
            if !kept.is_subset(&self::kept(files, &parts)) {
                return Err(LakeError::Moved {
                    table: names::INDICATOR_VALUES.to_string(),
                });
            }
            Ok(files
                .iter()
                .map(|file| !file.tag(PART).is_some_and(|p| kept.contains(p.as_str())))
                .collect())
        };
        match staged.commit_planned(&scope, plan, metadata).await {
            Err(LakeError::Moved { .. }) => {
                tracing::info!(%period, "snapshot moved; planning again")
            }
            done => return done,
        }
    }
    Err(LakeError::Contended {
        table: names::INDICATOR_VALUES.to_string(),
        attempts: PLAN_ATTEMPTS,
    })
}

/// The parts whose stored file already holds exactly these values: one file, tagged with
/// the same digest. None when the period has a file without a part (written before the
/// snapshot was published by part): it holds every part, so all are written again.
fn kept<'a>(files: &[StoredFile], parts: &Parts<'a>) -> BTreeSet<&'a str> {
    let tagged: Option<Vec<(String, Option<String>)>> = files
        .iter()
        .map(|f| f.tag(PART).map(|part| (part, f.tag(DIGEST))))
        .collect();
    let Some(tagged) = tagged else {
        return BTreeSet::new();
    };
    parts
        .iter()
        .filter(|(name, part)| {
            let mut stored = tagged.iter().filter(|(p, _)| p == *name);
            matches!(
                (stored.next(), stored.next()),
                (Some((_, Some(digest))), None) if *digest == part.digest
            )
        })
        .map(|(name, _)| *name)
        .collect()
}

/// What a part's values are, as 128 bits of SHA-256 over every stored field of every row in
/// order (and the lineage, for the country's part). Each field is listed by destructuring, so
/// a field added to [`Row`] does not compile until it is digested too.
fn digest(rows: &[&Row], lineage: Option<&str>) -> String {
    let mut hash = Sha256::new();
    let mut buf: Vec<u8> = Vec::with_capacity(512);
    let text = |buf: &mut Vec<u8>, s: &str| {
        buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
        buf.extend_from_slice(s.as_bytes());
    };
    let option = |buf: &mut Vec<u8>, s: Option<&str>| match s {
        Some(s) => {
            buf.push(1);
            text(buf, s);
        }
        None => buf.push(0),
    };
    let number = |buf: &mut Vec<u8>, n: Option<f64>| match n {
        Some(n) => {
            buf.push(1);
            buf.extend_from_slice(&n.to_bits().to_le_bytes());
        }
        None => buf.push(0),
    };
    option(&mut buf, lineage);
    hash.update(&buf);
    for row in rows {
        let Row {
            indicator,
            period,
            region,
            name,
            level,
            breakdown,
            status,
            counties_reported,
            counties_due,
            value,
            numerator,
            denominator,
            target,
            target_deadline,
            met,
            gap,
            change,
            suppressed,
            quality,
            submissions,
            people: _,
        } = row;
        buf.clear();
        text(&mut buf, indicator.id);
        // Writing into a Vec cannot fail.
        let _ = write!(buf, "{period}|");
        text(&mut buf, region);
        text(&mut buf, name);
        text(&mut buf, level.as_str());
        option(&mut buf, breakdown.as_deref());
        text(&mut buf, status.as_str());
        buf.extend_from_slice(&counties_reported.to_le_bytes());
        buf.extend_from_slice(&counties_due.to_le_bytes());
        for n in [value, numerator, denominator, target, gap, change] {
            number(&mut buf, *n);
        }
        match target_deadline {
            Some(deadline) => {
                let _ = write!(buf, "1{deadline}|");
            }
            None => buf.push(0),
        }
        buf.push(match met {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        });
        buf.push(u8::from(*suppressed));
        option(&mut buf, quality.map(|q| q.as_str()));
        buf.extend_from_slice(&(submissions.len() as u64).to_le_bytes());
        for submission in submissions {
            text(&mut buf, submission);
        }
        hash.update(&buf);
    }
    let digest = hash.finalize();
    hex::encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::indicators::snapshot::{Snapshot, not_reported, sources_of};
    use crate::indicators::{ReportingState, by_id};
    use crate::lake::TableVersions;
    use crate::periods::Period;
    use crate::regions::RegionTree;

    fn tree() -> RegionTree {
        RegionTree::from_units(
            [
                ("11", "北京市"),
                ("1101", "市辖区"),
                ("110101", "东城区"),
                ("15", "内蒙古自治区"),
                ("1522", "兴安盟"),
                ("152201", "乌兰浩特市"),
            ]
            .map(|(code, name)| (code.to_string(), name.to_string())),
        )
    }

    /// Report rates for the country and every region, `value` for those under `changed`.
    fn computed(tree: &RegionTree, version: i64, changed: &str, value: f64) -> Computed {
        let period: Period = "2023H2".parse().unwrap();
        let indicator = by_id("report_rate").unwrap();
        let values = tree
            .iter()
            .map(|region| {
                let mut row = not_reported(tree, indicator, period, region, None);
                row.status = ReportingState::Reported;
                row.value = Some(match region.prefix.starts_with(changed) {
                    true => value,
                    false => 50.0,
                });
                row
            })
            .collect();
        let sources = TableVersions::from([("tables/outlets".to_string(), version)]);
        Computed {
            period,
            values,
            sources,
        }
    }

    /// Each part's file and digest as the log has them.
    async fn stored(lake: &Lake) -> BTreeMap<String, (String, String)> {
        let scope = [("period", vec!["2023H2".to_string()])];
        let files = lake.files(names::INDICATOR_VALUES, &scope).await.unwrap();
        let mut out = BTreeMap::new();
        for file in &files {
            let part = file.tag(PART).expect("every file has its part");
            let entry = (file.path(), file.tag(DIGEST).unwrap());
            assert!(out.insert(part, entry).is_none(), "one file per part");
        }
        out
    }

    async fn read_back(lake: &Lake) -> Vec<(String, Option<f64>)> {
        let (snapshot, _) = Snapshot::load(lake).await.unwrap().unwrap();
        let mut values: Vec<(String, Option<f64>)> = snapshot
            .values("2023H2".parse().unwrap())
            .into_values()
            .map(|row| (row.region, row.value))
            .collect();
        values.sort_by(|a, b| a.0.cmp(&b.0));
        values
    }

    #[tokio::test]
    async fn a_refresh_rewrites_only_the_provinces_whose_values_changed() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let tree = tree();
        publish(&lake, &computed(&tree, 1, "15", 10.0))
            .await
            .unwrap();
        let first = stored(&lake).await;
        assert_eq!(first.keys().collect::<Vec<_>>(), ["", "11", "15"]);

        // A county of Inner Mongolia reported: its province and the country are rewritten,
        // Beijing's file stays as it was.
        let second = computed(&tree, 2, "15", 20.0);
        publish(&lake, &second).await.unwrap();
        let now = stored(&lake).await;
        assert_eq!(now["11"], first["11"]);
        assert_ne!(now["15"], first["15"]);
        assert_ne!(now[""], first[""]);
        let expected: Vec<(String, Option<f64>)> = {
            let mut v: Vec<_> = second
                .values
                .iter()
                .map(|r| (r.region.clone(), r.value))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        assert_eq!(read_back(&lake).await, expected);
        let period = "2023H2".parse().unwrap();
        assert_eq!(
            sources_of(&lake, period).await.unwrap(),
            Some(second.sources)
        );

        // The same values from the same tables: nothing is written; a new lineage alone
        // rewrites only the country's file, which carries it.
        publish(&lake, &computed(&tree, 2, "15", 20.0))
            .await
            .unwrap();
        assert_eq!(stored(&lake).await, now);
        let third = computed(&tree, 3, "15", 20.0);
        publish(&lake, &third).await.unwrap();
        let after = stored(&lake).await;
        assert_eq!((&after["11"], &after["15"]), (&now["11"], &now["15"]));
        assert_ne!(after[""], now[""]);
        assert_eq!(
            sources_of(&lake, period).await.unwrap(),
            Some(third.sources)
        );
        assert_eq!(read_back(&lake).await, expected);
    }

    #[tokio::test]
    async fn tags_survive_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let tree = tree();
        // More commits than between two checkpoints, each changing Beijing only.
        for version in 1..=12 {
            publish(&lake, &computed(&tree, 1, "11", version as f64))
                .await
                .unwrap();
        }
        assert!(
            std::fs::read_dir(dir.path().join("published/indicator_values/_delta_log"))
                .unwrap()
                .any(|e| e
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains("checkpoint"))
        );
        let before = stored(&lake).await;
        publish(&lake, &computed(&tree, 1, "11", 13.0))
            .await
            .unwrap();
        let after = stored(&lake).await;
        assert_eq!((&after[""], &after["15"]), (&before[""], &before["15"]));
        assert_ne!(after["11"], before["11"]);
    }

    #[tokio::test]
    async fn a_period_written_whole_before_is_rewritten_by_part() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let tree = tree();
        let old = computed(&tree, 1, "15", 10.0);
        let rows: Vec<&Row> = old.values.iter().collect();
        let mut staged = lake
            .stage(
                names::INDICATOR_VALUES,
                &Row::stored_schema(),
                &["period".to_string()],
            )
            .unwrap();
        staged.write(to_batch("{}", &rows).unwrap()).await.unwrap();
        let scope = [("period", vec!["2023H2".to_string()])];
        staged
            .commit_replacing(&scope, Default::default())
            .await
            .unwrap();

        let new = computed(&tree, 1, "15", 10.0);
        publish(&lake, &new).await.unwrap();
        assert_eq!(stored(&lake).await.len(), 3, "the untagged file is gone");
        assert_eq!(read_back(&lake).await.len(), new.values.len());
    }

    #[test]
    fn a_digest_sees_every_stored_field() {
        let tree = tree();
        let base = computed(&tree, 1, "15", 10.0).values;
        let rows: Vec<&Row> = base.iter().collect();
        let digest_of = |change: &dyn Fn(&mut Row)| {
            let mut rows: Vec<Row> = base.clone();
            change(&mut rows[0]);
            let refs: Vec<&Row> = rows.iter().collect();
            super::digest(&refs, None)
        };
        let same = super::digest(&rows, None);
        assert_eq!(digest_of(&|_| {}), same);
        assert_ne!(digest_of(&|r| r.submissions.push("s".into())), same);
        assert_ne!(digest_of(&|r| r.suppressed = true), same);
        assert_ne!(digest_of(&|r| r.met = Some(false)), same);
        assert_ne!(digest_of(&|r| r.numerator = Some(-0.0)), same);
        assert_ne!(super::digest(&rows, Some("{}")), same);
        // Distinct people are never stored: they do not move a digest.
        assert_eq!(digest_of(&|r| r.people = 7.0), same);
    }
}
