//! Presigned uploads that S3 itself holds to their promise: the URL signs the object's exact
//! size (`content-length`) and `if-none-match: *`, so S3 refuses a body of any other size and
//! a second PUT to the same key (412), and the URL cannot be used to replace the evidence
//! behind a decision. object_store's signer signs only the host, hence aws-sigv4 here, with
//! the credentials object_store resolves from the same AWS environment as the lake.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use deltalake::logstore::object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use url::Url;

use super::{Lake, LakeError};

/// The headers a presigned upload must be sent with, exactly as signed.
pub const SIGNED_HEADERS: [&str; 2] = ["Content-Length", "If-None-Match"];

/// Characters S3 keeps as they are in a key's path (RFC 3986 unreserved, and `/`).
const KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// A presigned PUT and the headers its sender must set.
#[derive(Debug, Clone)]
pub struct PresignedPut {
    pub url: Url,
    pub headers: Vec<(&'static str, String)>,
}

impl Lake {
    /// A URL that lets its holder PUT one object of exactly `size` bytes, once, within
    /// `expires`. `None` for a lake that is not on S3 (files go through the API instead).
    pub async fn presigned_put(
        &self,
        key: &str,
        size: u64,
        expires: Duration,
    ) -> Result<Option<PresignedPut>, LakeError> {
        if self.root.scheme() != "s3" {
            return Ok(None);
        }
        let bucket = self.root.host_str().unwrap_or_default();
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (name, value) in &self.options {
            if let Ok(config) = name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(config, value);
            }
        }
        let endpoint = builder.get_config_value(&AmazonS3ConfigKey::Endpoint);
        let region = builder
            .get_config_value(&AmazonS3ConfigKey::Region)
            .unwrap_or_else(|| "us-east-1".into());
        let credential = builder.build()?.credentials().get_credential().await?;

        let full = format!("{}{key}", self.root.path().trim_start_matches('/'));
        let path = utf8_percent_encode(&full, KEEP);
        let base = match endpoint {
            Some(endpoint) => format!("{}/{bucket}/{path}", endpoint.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{region}.amazonaws.com/{path}"),
        };
        let mut url = Url::parse(&base).map_err(|_| LakeError::Location(base.clone()))?;

        let identity = aws_credential_types::Credentials::new(
            &credential.key_id,
            &credential.secret_key,
            credential.token.clone(),
            None,
            "jiazheng",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires);
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| LakeError::Signing(e.to_string()))?
            .into();
        let size = size.to_string();
        let headers = vec![
            (SIGNED_HEADERS[0], size),
            (SIGNED_HEADERS[1], "*".to_string()),
        ];
        let signable = SignableRequest::new(
            "PUT",
            url.as_str(),
            headers.iter().map(|(name, value)| (*name, value.as_str())),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| LakeError::Signing(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| LakeError::Signing(e.to_string()))?
            .into_parts();
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in instructions.params() {
                query.append_pair(name, value);
            }
        }
        Ok(Some(PresignedPut { url, headers }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_url_signs_the_size_and_single_use() {
        let lake = Lake::open_with(
            "s3://bucket/lake",
            [
                ("aws_endpoint", "http://127.0.0.1:9"),
                ("aws_access_key_id", "AKIDEXAMPLE"),
                ("aws_secret_access_key", "secret"),
                ("aws_region", "eu-west-1"),
                ("aws_allow_http", "true"),
            ],
        )
        .unwrap();
        let put = lake
            .presigned_put("uploads/a b.csv", 1234, Duration::from_secs(900))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(put.url.path(), "/bucket/lake/uploads/a%20b.csv");
        let query: std::collections::HashMap<_, _> = put.url.query_pairs().collect();
        assert_eq!(
            query["X-Amz-SignedHeaders"],
            "content-length;host;if-none-match"
        );
        assert_eq!(query["X-Amz-Expires"], "900");
        assert!(query["X-Amz-Credential"].starts_with("AKIDEXAMPLE/"));
        assert!(query["X-Amz-Credential"].contains("/eu-west-1/s3/"));
        assert_eq!(
            put.headers,
            [
                ("Content-Length", "1234".into()),
                ("If-None-Match", "*".into())
            ]
        );
        let local = Lake::open(tempfile::tempdir().unwrap().path().to_str().unwrap()).unwrap();
        assert!(
            local
                .presigned_put("k", 1, Duration::from_secs(1))
                .await
                .unwrap()
                .is_none()
        );
    }
}
