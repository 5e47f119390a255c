//! Receiving a file into the raw store. Whether it arrives whole (a small HTTP body), as a file
//! on this machine or as a stream (a large HTTP body), it is hashed on the way in — its
//! submission id is derived from dataset, period, region and content — and kept under
//! `uploads/…` before it is processed; a stream is spooled to an anonymous temporary file and
//! cut off as soon as it passes the dataset's size limit, never held in memory.

use std::io::Read;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::ingest::{IngestError, Ingestor, Outcome, Upload, UploadKey, submitting_region};
use crate::periods::Period;
use crate::regions::stored;
use crate::sheets;

/// Bytes of a file kept to tell its format.
const HEAD: usize = 8;

/// The hash of a received file and its first bytes.
struct Received {
    content: Sha256,
    head: Vec<u8>,
}

impl Received {
    fn new() -> Received {
        Received {
            content: Sha256::new(),
            head: Vec::with_capacity(HEAD),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        let room = HEAD.saturating_sub(self.head.len()).min(bytes.len());
        self.head.extend_from_slice(&bytes[..room]);
        self.content.update(bytes);
    }
}

impl Ingestor {
    /// Stores and processes a file received whole. Its id is derived from its content, so the
    /// same bytes for the same dataset, period and region are always the same submission.
    pub async fn submit_bytes(
        &self,
        upload: &Upload,
        bytes: Bytes,
    ) -> Result<Outcome, IngestError> {
        let dataset = upload.dataset;
        let max = dataset.limits().max_file_bytes;
        if bytes.len() as u64 > max {
            return Err(IngestError::TooLarge {
                dataset: dataset.name,
                max,
            });
        }
        let mut received = Received::new();
        received.update(&bytes);
        let key = key_for(upload, self.target(upload).await?, received);
        if let Some(outcome) = self.already_decided(&key).await? {
            return Ok(outcome);
        }
        self.lake.put_object(&key.to_string(), bytes).await?;
        crate::failpoints::hit(crate::failpoints::RAW_KEPT);
        self.process(&key, &upload.file_name).await
    }

    /// The same for a file on this machine: read once to hash it, once to store it, never
    /// held in memory whole. A file over the dataset's limit is still kept and decided on (it
    /// is rejected with `file_too_large`), as an S3 upload would be.
    pub async fn submit_file(
        &self,
        upload: &Upload,
        path: &std::path::Path,
    ) -> Result<Outcome, IngestError> {
        let io = |e: std::io::Error| IngestError::File(path.display().to_string(), e.to_string());
        let hashing = {
            let path = path.to_path_buf();
            tokio::task::spawn_blocking(move || -> std::io::Result<Received> {
                let mut file = std::fs::File::open(path)?;
                let mut received = Received::new();
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = file.read(&mut buf)?;
                    if n == 0 {
                        return Ok(received);
                    }
                    received.update(&buf[..n]);
                }
            })
        };
        // The region tree loads while the file is hashed.
        let (received, target) = tokio::join!(hashing, self.target(upload));
        let received = received
            .map_err(|e| IngestError::Worker(e.to_string()))?
            .map_err(io)?;
        let key = key_for(upload, target?, received);
        if let Some(outcome) = self.already_decided(&key).await? {
            return Ok(outcome);
        }
        let mut file = tokio::fs::File::open(path).await.map_err(io)?;
        self.lake.put_stream(&key.to_string(), &mut file).await?;
        crate::failpoints::hit(crate::failpoints::RAW_KEPT);
        self.process(&key, &upload.file_name).await
    }

    /// The same for a body arriving in chunks. The upload's names are resolved before the
    /// first chunk is read, and reading stops with [`IngestError::TooLarge`] as soon as the
    /// body passes `max_bytes` (or the dataset's own limit, if lower).
    pub async fn submit_stream<E: std::fmt::Display>(
        &self,
        upload: &Upload,
        mut body: impl Stream<Item = Result<Bytes, E>> + Unpin,
        max_bytes: u64,
    ) -> Result<Outcome, IngestError> {
        let dataset = upload.dataset;
        let target = self.target(upload).await?;
        let max = dataset.limits().max_file_bytes.min(max_bytes);
        let spool_error = |e: std::io::Error| IngestError::Body(format!("spooling: {e}"));
        let mut spool = tokio::fs::File::from_std(tempfile::tempfile().map_err(spool_error)?);
        let mut received = Received::new();
        let mut size: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| IngestError::Body(e.to_string()))?;
            size += chunk.len() as u64;
            if size > max {
                return Err(IngestError::TooLarge {
                    dataset: dataset.name,
                    max,
                });
            }
            received.update(&chunk);
            spool.write_all(&chunk).await.map_err(spool_error)?;
        }
        spool.flush().await.map_err(spool_error)?;
        spool
            .seek(std::io::SeekFrom::Start(0))
            .await
            .map_err(spool_error)?;
        let key = key_for(upload, target, received);
        if let Some(outcome) = self.already_decided(&key).await? {
            return Ok(outcome);
        }
        self.lake.put_stream(&key.to_string(), &mut spool).await?;
        crate::failpoints::hit(crate::failpoints::RAW_KEPT);
        self.process(&key, &upload.file_name).await
    }

    /// The upload's period and submitting region, checked against the calendar and the tree.
    async fn target(&self, upload: &Upload) -> Result<(Period, String), IngestError> {
        let period = upload.period;
        let (tree, _) = stored::published(&self.lake)
            .await?
            .ok_or(IngestError::NoRegions)?;
        let region = submitting_region(&tree, &upload.region)?;
        Ok((period, region.code()))
    }
}

/// An upload's key: its resolved period and region, and a content id from the hash of its
/// bytes.
fn key_for(upload: &Upload, (period, region): (Period, String), received: Received) -> UploadKey {
    let dataset = upload.dataset;
    let mut id = Sha256::new();
    id.update(format!("{}\n{}\n{}\n", dataset.name, period, region));
    id.update(received.content.finalize());
    UploadKey {
        dataset,
        period,
        region,
        id: hex::encode(&id.finalize()[..10]),
        extension: sheets::Format::sniff(&received.head)
            .extension()
            .to_string(),
    }
}
