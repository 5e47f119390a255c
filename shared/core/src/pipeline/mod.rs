//! The pipeline: what happens to a file, in order. It arrives and is kept raw ([`receive`]),
//! is decided on in named steps over the [`ingest`](crate::ingest) job (check and stage,
//! commit, report, log), and its period's indicators are refreshed
//! ([`indicators::refresh`]); [`repair`] finishes what a crash left between two steps. The one
//! module that joins the write path to the read model: neither `ingest` nor `indicators`
//! imports the other.
//!
//! Every path in goes through here: the HTTP upload, `jiazheng submit`, and the S3 event of
//! the ingest Lambda. A crash at any step leaves the lake consistent: staged files are
//! invisible until the commit, the commit is atomic, and a retry of the same upload replaces
//! the rows of its own earlier attempt.

mod process;
mod receive;
pub mod repair;

use crate::indicators;
use crate::ingest::{IngestError, Ingestor};
use crate::periods::Period;

impl Ingestor {
    /// Recomputes and publishes a period's indicators (after a bulk load).
    pub async fn refresh(&self, period: Period) -> Result<indicators::Refreshed, IngestError> {
        Ok(indicators::refresh(&self.lake, period).await?)
    }
}
