//! Named points between the steps of ingest and refresh where a test can make the process die,
//! as a crash, a killed Lambda or a pulled plug would: `JIAZHENG_FAILPOINT=data-committed`
//! aborts the process there. Compiled in only with the `failpoints` feature, which the test
//! command turns on; in every other build [`hit`] is nothing.

/// The step boundaries, in the order an ingest passes them.
pub const ALL: [&str; 6] = [
    RAW_KEPT,
    ROWS_STAGED,
    DATA_COMMITTED,
    REPORT_WRITTEN,
    LOG_WRITTEN,
    SNAPSHOT_WRITING,
];
/// The raw file is stored; nothing is decided.
pub const RAW_KEPT: &str = "raw-kept";
/// The rows are written as Parquet files no table references yet.
pub const ROWS_STAGED: &str = "rows-staged";
/// The rows are committed; no report, no decision in the log.
pub const DATA_COMMITTED: &str = "data-committed";
/// The report is stored; the log has no decision.
pub const REPORT_WRITTEN: &str = "report-written";
/// The decision is logged; the indicators are not refreshed.
pub const LOG_WRITTEN: &str = "log-written";
/// The new snapshot's files are written but not committed.
pub const SNAPSHOT_WRITING: &str = "snapshot-writing";

/// The environment variable naming the point to die at.
pub const ENV: &str = "JIAZHENG_FAILPOINT";

/// Dies here if this is the point the environment names (failpoints builds only).
#[inline]
pub fn hit(point: &'static str) {
    #[cfg(feature = "failpoints")]
    if std::env::var(ENV).is_ok_and(|named| named == point) {
        eprintln!("failpoint {point}: aborting");
        std::process::abort();
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = point;
}
