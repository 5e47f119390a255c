//! jiazheng's core: the domain and everything that needs no web server.
//!
//! Files go in through the [`pipeline`]: read by [`sheets`], checked by [`validate`] against
//! the declarations in [`datasets`] in an [`ingest`] job, stored in the Delta tables of
//! [`lake`] and turned into the policy's [`indicators`] with DataFusion. The HTTP API and pages (`jiazheng-web`) sit on top;
//! the ingest function needs this crate alone.

pub mod compliance;
pub mod datasets;
pub mod failpoints;
pub mod findings;
pub mod half_year;
pub mod identifiers;
pub mod indicators;
pub mod ingest;
pub mod keys;
pub mod lake;
pub mod periods;
pub mod pipeline;
pub mod plausibility;
pub mod privacy;
pub mod regions;
pub mod rounds;
pub mod runtime;
pub mod samples;
pub mod sheets;
pub mod sql;
pub mod submissions;
pub mod templates;
pub mod validate;

/// Property tests run this many cases unless `PROPTEST_CASES` says otherwise (a longer run:
/// `PROPTEST_CASES=100000 scripts/test --lib fuzz`).
#[cfg(test)]
pub(crate) fn fuzz_config(cases: u32) -> proptest::test_runner::Config {
    let mut config = proptest::test_runner::Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}
