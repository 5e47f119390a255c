//! jiazheng: the library every binary of the project is a thin shell over.
//!
//! Files go in through [`ingest`], are read by [`sheets`], checked by [`validate`] against the
//! declarations in [`datasets`], stored in the Delta tables of [`lake`], turned into the
//! policy's [`indicators`] with DataFusion, and served by [`api`].

pub mod api;
pub mod datasets;
pub mod failpoints;
pub mod identifiers;
pub mod indicators;
pub mod ingest;
pub mod keys;
pub mod lake;
pub mod periods;
pub mod privacy;
pub mod regions;
pub mod repair;
pub mod report;
pub mod reporting;
pub mod runtime;
pub mod samples;
pub mod sheets;
pub mod sql;
pub mod submissions;
pub mod templates;
pub mod uploads;
pub mod validate;

/// Property tests run this many cases unless `PROPTEST_CASES` says otherwise (a longer run:
/// `PROPTEST_CASES=100000 cargo test -p shared --lib fuzz`).
#[cfg(test)]
pub(crate) fn fuzz_config(cases: u32) -> proptest::test_runner::Config {
    let mut config = proptest::test_runner::Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}
