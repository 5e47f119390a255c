//! The integration tests, one binary: each module is one area of the product, all of them
//! against the real command, router, lake and tools. One binary links DataFusion and deltalake
//! once instead of once per file, and its tests share the two cores instead of queueing file by
//! file. Run one area with `scripts/test --test it crash::`.

mod support;

mod api;
mod bad_files;
mod browse;
mod build;
mod catalog;
mod cli;
mod confirmations;
mod crash;
mod downloads;
mod formats;
mod half_year;
mod hostile;
mod independent;
mod indicators;
mod infra;
mod openapi;
mod pages;
mod pipeline;
mod plausibility;
mod privacy;
mod reporting;
mod s3;
