//! What every binary does at start: find its lake and key in the environment, and log in the
//! form its host reads (JSON lines under Lambda, readable text in a terminal).

use crate::ingest::Ingestor;
use crate::lake::{Lake, LakeError};
use crate::privacy::{self, LocalKeyError};

/// The environment variable naming the lake (`s3://bucket/prefix` or a directory).
pub const LAKE_ENV: &str = "JIAZHENG_LAKE";

/// Lambda (and its local emulator) sets this for the function process.
pub fn under_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// Logs to standard error, JSON lines under Lambda, every line through the ID-number mask.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        "warn,jiazheng_core=info,jiazheng_web=info,ingest=info,api=info,jiazheng=info".into()
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(|| Masked(std::io::stderr()));
    if under_lambda() {
        builder
            .json()
            .with_current_span(false)
            .without_time()
            .init();
    } else {
        builder.init();
    }
}

/// A log writer that masks ID numbers in what it is given. The formatter hands it one whole
/// event at a time, so a number is never split between two writes.
pub struct Masked<W>(pub W);

impl<W: std::io::Write> std::io::Write for Masked<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0
            .write_all(crate::identifiers::mask_id_numbers(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{LAKE_ENV} is not set: point it at the lake, e.g. s3://bucket/prefix")]
    NoLake,
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Key(#[from] LocalKeyError),
}

/// The ingest pipeline over the lake named by [`LAKE_ENV`] (or `default` when given), with
/// the pseudonymisation key. Opening touches no network: clients connect on first use.
pub async fn ingestor_from_env(default: Option<&str>) -> Result<Ingestor, StartError> {
    let location = std::env::var(LAKE_ENV)
        .ok()
        .or(default.map(str::to_string))
        .ok_or(StartError::NoLake)?;
    ingestor_at(&location).await
}

/// The ingest pipeline over the lake at `location`, with the pseudonymisation key.
pub async fn ingestor_at(location: &str) -> Result<Ingestor, StartError> {
    let lake = Lake::open(location)?;
    let key = privacy::for_lake(&lake).await?;
    Ok(Ingestor::new(lake, Some(key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn log_lines_are_masked() {
        let mut out = Masked(Vec::new());
        write!(
            out,
            "rejected file 11010519491231002X.csv of 110105491231002"
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out.0).unwrap(),
            "rejected file 110105************.csv of 110105*********"
        );
    }
}
